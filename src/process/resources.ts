import { clockTicksPerSecond, pageSizeBytes, readAllStats, type ProcStat } from './proc-fs.js';

export interface GroupUsage {
  cpuTicks: number;
  rssBytes: number;
  processCount: number;
}

/** Sums CPU ticks and RSS per process group, from one pass over /proc. */
export function usageByGroup(groups: ReadonlySet<number>, stats: ProcStat[] = readAllStats()): Map<number, GroupUsage> {
  const page = pageSizeBytes();
  const usage = new Map<number, GroupUsage>();
  for (const stat of stats) {
    if (!groups.has(stat.pgrp) || stat.state === 'Z') continue;
    const entry = usage.get(stat.pgrp) ?? { cpuTicks: 0, rssBytes: 0, processCount: 0 };
    entry.cpuTicks += stat.utimeTicks + stat.stimeTicks;
    entry.rssBytes += stat.rssPages * page;
    entry.processCount += 1;
    usage.set(stat.pgrp, entry);
  }
  return usage;
}

/** CPU % between two samples of a group (100 = one core busy). */
export function cpuPercent(previous: { cpuTicks: number; at: number } | undefined, current: { cpuTicks: number; at: number }): number {
  if (!previous || current.at <= previous.at) return 0;
  const seconds = (current.at - previous.at) / 1000;
  const ticks = Math.max(0, current.cpuTicks - previous.cpuTicks);
  return Math.round((ticks / clockTicksPerSecond() / seconds) * 1000) / 10;
}

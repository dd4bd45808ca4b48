import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** The fields of /proc/<pid>/stat that Chorus uses. */
export interface ProcStat {
  pid: number;
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  utimeTicks: number;
  stimeTicks: number;
  /** Field 22: start time in clock ticks after boot; with the boot id, it tells two processes with one pid apart. */
  startTicks: number;
  rssPages: number;
}

export function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  return parseStat(pid, text);
}

export function parseStat(pid: number, text: string): ProcStat | undefined {
  // comm (field 2) may hold spaces and parentheses; everything after the last ')' is fixed.
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = text.slice(close + 2).split(' ');
  // fields[0] is field 3 (state), so field N is fields[N - 3].
  const field = (n: number) => Number(fields[n - 3]);
  return {
    pid,
    state: fields[0] ?? '?',
    ppid: field(4),
    pgrp: field(5),
    session: field(6),
    utimeTicks: field(14),
    stimeTicks: field(15),
    startTicks: field(22),
    rssPages: field(24),
  };
}

let bootId: string | undefined;

export function readBootId(): string {
  bootId ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  return bootId;
}

export function listPids(): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    const code = name.charCodeAt(0);
    if (code >= 48 && code <= 57) pids.push(Number(name));
  }
  return pids;
}

/** Every process on the machine, read once. */
export function readAllStats(): ProcStat[] {
  const stats: ProcStat[] = [];
  for (const pid of listPids()) {
    const stat = readStat(pid);
    if (stat) stats.push(stat);
  }
  return stats;
}

/**
 * The `NAME=value` entry for `name` in a process's environment: null when it has none, undefined when the environment
 * cannot be read or is empty (a process in the middle of exec).
 */
export function readEnvironEntry(pid: number, name: string): string | null | undefined {
  let environ: string;
  try {
    environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
  } catch {
    return undefined;
  }
  if (!environ.length) return undefined;
  const prefix = `${name}=`;
  const at = environ.startsWith(prefix) ? 0 : environ.indexOf(`\0${prefix}`) + 1;
  if (at === 0 && !environ.startsWith(prefix)) return null;
  const end = environ.indexOf('\0', at);
  return environ.slice(at, end < 0 ? environ.length : end);
}

/** True when the process's environment holds exactly `entry` (NAME=value). Unreadable means no. */
export function environHas(pid: number, entry: string): boolean {
  return readEnvironEntry(pid, entry.slice(0, entry.indexOf('='))) === entry;
}

function getconf(name: string, fallback: number): number {
  try {
    const value = Number(execFileSync('getconf', [name], { encoding: 'utf8' }).trim());
    return Number.isFinite(value) && value > 0 ? value : fallback;
  } catch {
    return fallback;
  }
}

let clockTicks: number | undefined;
let pageSize: number | undefined;

export function clockTicksPerSecond(): number {
  clockTicks ??= getconf('CLK_TCK', 100);
  return clockTicks;
}

export function pageSizeBytes(): number {
  pageSize ??= getconf('PAGESIZE', 4096);
  return pageSize;
}

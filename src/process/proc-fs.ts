import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, readSync } from 'node:fs';

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

/** One buffer for every stat read: a read is parsed completely before the next, so sharing is safe. */
const statBuffer = Buffer.allocUnsafe(2048);

/** Reads /proc/<pid>/stat with one open, one read and one close (no fstat, no allocation per read). */
function readStatText(pid: number): string | undefined {
  let fd: number;
  try {
    fd = openSync(`/proc/${pid}/stat`, 'r');
  } catch {
    return undefined;
  }
  try {
    return statBuffer.toString('latin1', 0, readSync(fd, statBuffer, 0, statBuffer.length, 0));
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

export function readStat(pid: number): ProcStat | undefined {
  const text = readStatText(pid);
  return text === undefined ? undefined : parseStat(pid, text);
}

/** Fields 3.. of a stat line by number, read by walking the spaces (no split: a /proc pass reads thousands). */
export function parseStat(pid: number, text: string): ProcStat | undefined {
  // comm (field 2) may hold spaces and parentheses; everything after the last ')' is fixed.
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const stat: ProcStat = { pid, state: '?', ppid: NaN, pgrp: NaN, session: NaN, utimeTicks: NaN, stimeTicks: NaN, startTicks: NaN, rssPages: NaN };
  let start = close + 2;
  for (let field = 3; field <= 24 && start <= text.length; field += 1) {
    let end = text.indexOf(' ', start);
    if (end < 0) end = text.length;
    switch (field) {
      case 3: stat.state = text.slice(start, end) || '?'; break;
      case 4: stat.ppid = Number(text.slice(start, end)); break;
      case 5: stat.pgrp = Number(text.slice(start, end)); break;
      case 6: stat.session = Number(text.slice(start, end)); break;
      case 14: stat.utimeTicks = Number(text.slice(start, end)); break;
      case 15: stat.stimeTicks = Number(text.slice(start, end)); break;
      case 22: stat.startTicks = Number(text.slice(start, end)); break;
      case 24: stat.rssPages = Number(text.slice(start, end)); break;
      default: break;
    }
    start = end + 1;
  }
  return stat;
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

/** Time since boot, from /proc/uptime (what start times in clock ticks count from). */
export function readUptimeMs(): number {
  return Number(readFileSync('/proc/uptime', 'latin1').split(' ')[0]) * 1000;
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

/** Whether any process (a zombie included) has the pid: one syscall, no identity; a safety net's first look. */
export function isPidPresent(pid: number): boolean {
  // 0 and negative pids would address process groups.
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
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

/** What a process's descriptor `fd` is open on (a path, or `pipe:[…]` and the like); undefined when unreadable. */
export function descriptorTarget(pid: number, fd: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/fd/${fd}`);
  } catch {
    return undefined;
  }
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

import { readFileSync } from 'node:fs';
import { afterAll, afterEach } from 'vitest';

const pids = new Set<number>();
const groups = new Set<number>();
const filePids = new Set<number>();
const fileGroups = new Set<number>();

/**
 * Registers a pid (and optionally its process group) to be SIGKILLed after the test, whatever happens; with
 * `untilEndOfFile`, after the last test of the file (for fixtures shared by a table of cases).
 */
export function trackPid(pid: number, options: { group?: boolean; untilEndOfFile?: boolean } = {}): number {
  (options.untilEndOfFile ? filePids : pids).add(pid);
  if (options.group) (options.untilEndOfFile ? fileGroups : groups).add(pid);
  return pid;
}

/** True while the pid exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

function killAll(pidSet: Set<number>, groupSet: Set<number>): void {
  for (const group of groupSet) {
    try { process.kill(-group, 'SIGKILL'); } catch { /* already gone */ }
  }
  for (const pid of pidSet) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  pidSet.clear();
  groupSet.clear();
}

afterEach(() => killAll(pids, groups));
afterAll(() => killAll(filePids, fileGroups));

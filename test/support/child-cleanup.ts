import { readFileSync } from 'node:fs';
import { afterEach } from 'vitest';

const pids = new Set<number>();
const groups = new Set<number>();

/** Registers a pid (and optionally its process group) to be SIGKILLed after the test, whatever happens. */
export function trackPid(pid: number, options: { group?: boolean } = {}): number {
  pids.add(pid);
  if (options.group) groups.add(pid);
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

afterEach(() => {
  for (const group of groups) {
    try { process.kill(-group, 'SIGKILL'); } catch { /* already gone */ }
  }
  for (const pid of pids) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  pids.clear();
  groups.clear();
});

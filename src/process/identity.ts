import { readBootId, readStat } from './proc-fs.js';

/** What proves that a pid is still the process Chorus started: a pid alone is not an identity. */
export interface ProcessIdentity {
  pid: number;
  pgid: number;
  startTicks: number;
  bootId: string;
}

export type IdentityState = 'alive' | 'gone' | 'mismatch';

export function captureIdentity(pid: number): ProcessIdentity | undefined {
  const stat = readStat(pid);
  if (!stat) return undefined;
  return { pid, pgid: stat.pgrp, startTicks: stat.startTicks, bootId: readBootId() };
}

/**
 * `alive`: the same process still runs. `gone`: nothing (or only a zombie) has the pid.
 * `mismatch`: another process now has the pid, or the machine rebooted: never signal it.
 */
export function checkIdentity(identity: ProcessIdentity, options: { checkGroup?: boolean } = {}): IdentityState {
  if (identity.bootId !== readBootId()) return 'mismatch';
  const stat = readStat(identity.pid);
  if (!stat) return 'gone';
  if (stat.startTicks !== identity.startTicks) return 'mismatch';
  // A shim leads its own session, so its group never changes; another group means another process.
  if ((options.checkGroup ?? true) && stat.pgrp !== identity.pgid) return 'mismatch';
  if (stat.state === 'Z' || stat.state === 'X') return 'gone';
  return 'alive';
}

/** Pids that no request may ever signal: init, the kernel's, the bot itself and its parent. */
export function isForbiddenPid(pid: number): boolean {
  return !Number.isInteger(pid) || pid <= 1 || pid === process.pid || pid === process.ppid;
}

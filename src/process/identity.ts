import { readBootId, readStat, type ProcStat } from './proc-fs.js';

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

/** The lease identity of a process: what proves a spawner is still the process that inserted a starting row. */
export interface LeaseIdentity {
  pid: number;
  startTicks: number;
  bootId: string;
}

let self: LeaseIdentity | undefined;

/**
 * This process as a lease. Its pid, start time and boot never change while it runs, so /proc/self is read once; the
 * pid is checked on every call, so a forked copy (another pid) reads its own.
 */
export function selfLease(): LeaseIdentity | undefined {
  if (self?.pid === process.pid) return self;
  const identity = captureIdentity(process.pid);
  if (!identity) return undefined;
  self = Object.freeze({ pid: identity.pid, startTicks: identity.startTicks, bootId: identity.bootId });
  return self;
}

/**
 * `alive`: the same process still runs. `gone`: nothing (or only a zombie) has the pid.
 * `mismatch`: another process now has the pid, or the machine rebooted: never signal it.
 */
export function checkIdentity(identity: ProcessIdentity, options: { checkGroup?: boolean } = {}): IdentityState {
  return judge(identity, readStat(identity.pid), options);
}

/** checkIdentity's answer, with the /proc stat it was read from when the process is alive (one read for both). */
export function inspectIdentity(identity: ProcessIdentity): { state: IdentityState; stat: ProcStat | undefined } {
  const stat = readStat(identity.pid);
  const state = judge(identity, stat);
  return { state, stat: state === 'alive' ? stat : undefined };
}

function judge(identity: ProcessIdentity, stat: ProcStat | undefined, options: { checkGroup?: boolean } = {}): IdentityState {
  if (identity.bootId !== readBootId()) return 'mismatch';
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

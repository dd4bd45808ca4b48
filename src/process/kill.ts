import { setTimeout as sleep } from 'node:timers/promises';
import { AppError } from '../errors.js';
import { checkIdentity, isForbiddenPid, type ProcessIdentity } from './identity.js';
import { readAllStats, readEnvironEntry, readStat, type ProcStat } from './proc-fs.js';

export const DEFAULT_GRACE_MS = 5_000;
/**
 * How often a stop looks whether the tree is gone: every 5 ms for its first 100 ms (most trees that honour SIGTERM
 * are gone within tens of ms, and a 20 ms step made the stop's answer wait up to 20 ms longer than the tree), every
 * 20 ms after. A look reads /proc/<pid>/stat of each known process.
 */
const FAST_POLL_MS = 5;
const FAST_POLLS_FOR_MS = 100;
const POLL_MS = 20;
/** Rescanning /proc is costlier than checking known pids, so the tree is re-read at most this often. */
const RESCAN_MS = 100;
/** How long SIGKILLed processes get to disappear before the kill is reported as failed. */
const CONFIRM_MS = 3_000;

export interface KillTarget {
  pid: number;
  startTicks: number;
}

export interface KillOutcome {
  /** The last signal that was needed: SIGTERM when everything left within the grace period. */
  signal: 'SIGTERM' | 'SIGKILL';
  /** Every process that was signalled. */
  targets: KillTarget[];
}

let turnStats: ProcStat[] | undefined;

/** Stops that run together (kill_all, 200 at once) share one /proc scan per turn of the event loop, not one each. */
function sharedStats(isFresh = false): ProcStat[] {
  if (!turnStats || isFresh) {
    if (!turnStats) setImmediate(() => { turnStats = undefined; });
    turnStats = readAllStats();
  }
  return turnStats;
}

/**
 * The marker entry of each process, by pid and start time (one process). It is set before the process's exec, so each
 * environ is read once, not once per stop (kill_all of 200 read every process's environ 200 times).
 */
const markerEntries = new Map<string, string | null>();

function carriesMarker(stat: ProcStat, marker: string): boolean {
  const key = `${stat.pid}:${stat.startTicks}`;
  let entry = markerEntries.get(key);
  if (entry === undefined) {
    entry = readEnvironEntry(stat.pid, marker.slice(0, marker.indexOf('=')));
    // Unreadable, or empty in the middle of an exec: read it again next time.
    if (entry === undefined) return false;
    markerEntries.set(key, entry);
  }
  return entry === marker;
}

function forgetGone(stats: ProcStat[]): void {
  if (markerEntries.size < 2 * stats.length) return;
  const live = new Set(stats.map((s) => `${s.pid}:${s.startTicks}`));
  for (const key of markerEntries.keys()) if (!live.has(key)) markerEntries.delete(key);
}

/**
 * Everything that belongs to the process: its group, its descendants (also those that left the group with
 * setsid) and any process that still carries the run's environment marker (descendants whose parent died).
 * Each is recorded with its start time, so a pid reused meanwhile is never signalled.
 */
export function snapshotTree(identity: ProcessIdentity, marker: string | null, given?: ProcStat[]): KillTarget[] {
  let stats = given ?? sharedStats();
  // The turn's shared scan may predate the process (spawned later in the same turn): without its leader it would find
  // nothing to stop and report the stop done at once.
  const isLeaderMissing = !stats.some((s) => s.pid === identity.pid && s.startTicks === identity.startTicks);
  if (!given && isLeaderMissing && isTargetAlive(identity)) stats = sharedStats(true);
  const children = new Map<number, ProcStat[]>();
  for (const stat of stats) {
    const list = children.get(stat.ppid);
    if (list) list.push(stat);
    else children.set(stat.ppid, [stat]);
  }
  const found = new Map<number, ProcStat>();
  const add = (stat: ProcStat) => {
    if (found.has(stat.pid) || isForbiddenPid(stat.pid) || stat.state === 'Z') return;
    found.set(stat.pid, stat);
    for (const child of children.get(stat.pid) ?? []) add(child);
  };
  const leader = stats.find((s) => s.pid === identity.pid);
  if (leader && leader.startTicks === identity.startTicks) add(leader);
  for (const stat of stats) {
    if (stat.pgrp === identity.pgid && stat.session === identity.pgid) add(stat);
  }
  if (marker) {
    forgetGone(stats);
    for (const stat of stats) {
      if (!found.has(stat.pid) && stat.state !== 'Z' && carriesMarker(stat, marker) && !isForbiddenPid(stat.pid)) add(stat);
    }
  }
  return [...found.values()].map((s) => ({ pid: s.pid, startTicks: s.startTicks }));
}

function isTargetAlive(target: KillTarget): boolean {
  const stat = readStat(target.pid);
  return stat !== undefined && stat.startTicks === target.startTicks && stat.state !== 'Z' && stat.state !== 'X';
}

/** Signals a target only if it is still the same process. */
function signalTarget(target: KillTarget, signal: NodeJS.Signals): void {
  if (isForbiddenPid(target.pid) || !isTargetAlive(target)) return;
  try {
    process.kill(target.pid, signal);
  } catch {
    // It ended between the check and the signal.
  }
}

function signalGroup(identity: ProcessIdentity, signal: NodeJS.Signals): void {
  // A group can only be signalled while its leader is proven to be ours; members are signalled one by one anyway.
  if (isForbiddenPid(identity.pgid) || identity.pgid !== identity.pid || checkIdentity(identity) !== 'alive') return;
  try {
    process.kill(-identity.pgid, signal);
  } catch {
    // The group emptied meanwhile.
  }
}

function merge(into: Map<number, KillTarget>, targets: KillTarget[]): void {
  for (const t of targets) if (!into.has(t.pid) || into.get(t.pid)!.startTicks !== t.startTicks) into.set(t.pid, t);
}

async function waitGone(targets: Map<number, KillTarget>, deadline: number, refresh: () => KillTarget[]): Promise<boolean> {
  const started = Date.now();
  let rescannedAt = -Infinity;
  for (;;) {
    if (Date.now() - rescannedAt >= RESCAN_MS) {
      merge(targets, refresh());
      rescannedAt = Date.now();
    }
    if ([...targets.values()].every((t) => !isTargetAlive(t))) return true;
    if (Date.now() >= deadline) return false;
    await sleep(Date.now() - started < FAST_POLLS_FOR_MS ? FAST_POLL_MS : POLL_MS);
  }
}

/**
 * SIGTERM the group and every process of the tree, wait up to `graceMs`, SIGKILL what is left, then confirm that
 * all are gone. The caller has already checked the leader's identity; every signal re-checks it per process.
 */
export async function killTree(identity: ProcessIdentity, marker: string | null, options: { graceMs: number; force: boolean }): Promise<KillOutcome> {
  if (isForbiddenPid(identity.pid)) throw new AppError('PID_FORBIDDEN', `pid ${identity.pid}`);
  const targets = new Map<number, KillTarget>();
  // The environment scan reads every process's environ, so it runs at the start and before SIGKILL only.
  const refresh = () => snapshotTree(identity, null);
  merge(targets, snapshotTree(identity, marker));
  let signal: KillOutcome['signal'] = 'SIGKILL';
  if (!options.force) {
    signal = 'SIGTERM';
    signalGroup(identity, 'SIGTERM');
    for (const t of targets.values()) signalTarget(t, 'SIGTERM');
    const termDeadline = Date.now() + options.graceMs;
    // New descendants forked during the grace period get SIGTERM too.
    const isGone = await waitGone(targets, termDeadline, () => {
      const fresh = refresh().filter((t) => !targets.has(t.pid));
      for (const t of fresh) signalTarget(t, 'SIGTERM');
      return fresh;
    });
    if (isGone) return { signal, targets: [...targets.values()] };
    signal = 'SIGKILL';
    merge(targets, snapshotTree(identity, marker));
  }
  signalGroup(identity, 'SIGKILL');
  for (const t of targets.values()) signalTarget(t, 'SIGKILL');
  const isGone = await waitGone(targets, Date.now() + CONFIRM_MS, () => {
    const fresh = refresh().filter((t) => !targets.has(t.pid));
    for (const t of fresh) signalTarget(t, 'SIGKILL');
    return fresh;
  });
  if (!isGone) {
    const survivors = [...targets.values()].filter(isTargetAlive).map((t) => t.pid);
    throw new AppError('KILL_FAILED', `still alive after SIGKILL: ${survivors.join(', ')}`, { userFacing: true });
  }
  return { signal, targets: [...targets.values()] };
}

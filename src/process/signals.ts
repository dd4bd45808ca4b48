import { AppError } from '../errors.js';
import { checkIdentity, isForbiddenPid, type ProcessIdentity } from './identity.js';
import { snapshotTree } from './kill.js';
import { readStat } from './proc-fs.js';

/** The signals a person or an agent may send; a requested stop goes through stop_process. */
export const SENDABLE_SIGNALS = ['INT', 'HUP', 'QUIT', 'TERM', 'KILL', 'USR1', 'USR2', 'STOP', 'CONT', 'WINCH'] as const;
export type SendableSignal = (typeof SENDABLE_SIGNALS)[number];

/** Signals that reach every process of a run, wrappers included; the others are meant for the command only. */
const WHOLE_RUN = new Set<SendableSignal>(['STOP', 'CONT', 'KILL']);

export function parseSignal(value: unknown, field = 'signal'): SendableSignal {
  const text = typeof value === 'string' ? value.trim().toUpperCase().replace(/^SIG/, '') : value;
  if (typeof text !== 'string' || !(SENDABLE_SIGNALS as readonly string[]).includes(text)) {
    throw new AppError('INVALID_INPUT', `${field} must be one of ${SENDABLE_SIGNALS.join(', ')} (got ${JSON.stringify(value)}); to stop a process use stop/kill`);
  }
  return text as SendableSignal;
}

function send(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // It ended between the check and the signal.
  }
}

/**
 * Sends a signal to a proven process group, and one by one to its descendants in other groups (a command under a
 * terminal leads its own session). Under a terminal the `script` wrapper turns INT, TERM and QUIT into a TERM for its
 * child, so signals meant for the command skip the wrappers and reach the terminal's processes directly.
 */
export function signalProcess(identity: ProcessIdentity, marker: string | null, signal: SendableSignal, options: { isTty: boolean }): void {
  if (isForbiddenPid(identity.pgid) || identity.pgid !== identity.pid || checkIdentity(identity) !== 'alive') {
    throw new AppError('PROCESS_NOT_RUNNING', `pid ${identity.pid} is not running (or is no longer the process Chorus started); nothing was signalled`);
  }
  const name = `SIG${signal}` as NodeJS.Signals;
  const outside = snapshotTree(identity, marker).flatMap((target) => {
    const stat = readStat(target.pid);
    return stat && stat.startTicks === target.startTicks && stat.pgrp !== identity.pgid ? [target.pid] : [];
  });
  const isCommandOnly = options.isTty && !WHOLE_RUN.has(signal) && outside.length > 0;
  if (!isCommandOnly) send(-identity.pgid, name);
  for (const pid of outside) if (!isForbiddenPid(pid)) send(pid, name);
}

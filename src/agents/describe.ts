import { describeReady, describeRestartPolicy, readySpecOf, restartPolicyOf } from '../process/supervision-spec.js';
import type { ProcessRecord } from '../store/process-repo.js';

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

/** One line, at most `max` characters. */
export function cutLine(text: string, max: number): string {
  const oneLine = text.replace(/\s*\n\s*/g, ' ⏎ ');
  return oneLine.length > max ? `${oneLine.slice(0, max - 1)}…` : oneLine;
}

/**
 * One line, at most `max` characters, keeping the start and the end with the middle elided: two commands that differ
 * only after a long common prefix (a test filter, a port) stay told apart.
 */
export function elideMiddle(text: string, max: number): string {
  const oneLine = text.replace(/\s*\n\s*/g, ' ⏎ ');
  if (oneLine.length <= max) return oneLine;
  if (max < 8) return cutLine(oneLine, max);
  const tail = Math.floor((max - 1) * 0.4);
  return `${oneLine.slice(0, max - 1 - tail)}…${oneLine.slice(oneLine.length - tail)}`;
}

/** Widths a command column is tried at, widest first: the whole command when the reply has room. */
export const COMMAND_WIDTHS = [Infinity, 160, 120, 90, 60, 40] as const;

/** Running time of a live process, total run time of an ended one. */
export function runTime(record: ProcessRecord, now = Date.now()): string {
  const end = record.endedAt ? Date.parse(record.endedAt) : now;
  return formatDuration(end - Date.parse(record.startedAt));
}

/** `starting` → `ready` (or `not ready`) for a running process with a readiness probe; undefined without one. */
export function readinessState(record: Pick<ProcessRecord, 'readyJson' | 'readyAt' | 'readyError'>): 'starting' | 'ready' | 'not ready' | undefined {
  if (record.readyJson === null) return undefined;
  if (record.readyAt) return 'ready';
  if (record.readyError) return 'not ready';
  return 'starting';
}

/** `running`, `ready`, `exit 0`, `SIGTERM`, `restarting`, `crash_loop ↻5`: the short state of a row, with its restarts. */
export function shortOutcome(record: ProcessRecord): string {
  const restarts = record.restartCount > 0 ? ` ↻${record.restartCount}` : '';
  if (record.status === 'exited') return `exit ${record.exitCode}${restarts}`;
  if (record.status === 'killed') return `${record.signal ?? 'killed'}${restarts}`;
  if (record.status === 'running' && record.pausedAt) return `paused${restarts}`;
  if (record.status === 'running') return `${readinessState(record) ?? 'running'}${restarts}`;
  return `${record.status}${restarts}`;
}

/** Readiness and restart lines for status displays (/process status, chorus status, get_process_status). */
export function supervisionLines(record: ProcessRecord, now = Date.now()): Array<[label: string, text: string]> {
  const lines: Array<[string, string]> = [];
  const ready = record.readyJson === null ? undefined : safely(() => readySpecOf(record.readyJson));
  if (ready) {
    const outcome = record.readyAt ? `ready since ${record.readyAt}` : record.readyError ? `not ready: ${record.readyError}` : 'starting (not ready yet)';
    lines.push(['readiness', `${outcome}; probe: ${describeReady(ready)}`]);
  }
  const policy = record.restartJson === null ? undefined : safely(() => restartPolicyOf(record.restartJson));
  if (policy || record.restartCount > 0) {
    const count = `restarted ${record.restartCount} time${record.restartCount === 1 ? '' : 's'} (${record.restartStreak} in a row)`;
    lines.push(['restarts', policy ? `${count}; policy: ${describeRestartPolicy(policy)}` : count]);
  }
  if (record.status === 'restarting' && record.restartDueAt) {
    lines.push(['next run', `due ${record.restartDueAt} (in ${formatDuration(Date.parse(record.restartDueAt) - now)})`]);
  }
  if (record.status === 'crash_loop') lines.push(['crash loop', `kept crashing; the restart policy gave up${record.lostReason ? ` (${record.lostReason})` : ''}`]);
  return lines;
}

function safely<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

/** `interactive, tty, paused 12s, last output 3s ago`: how a running process can be talked to, or '' for none of it. */
export function interactionTraits(record: ProcessRecord, now = Date.now()): string {
  const traits: string[] = [];
  if (record.isTty) traits.push('tty (interactive)');
  else if (record.isInteractive) traits.push('interactive');
  if (record.status === 'running' && record.pausedAt) traits.push(`paused ${formatDuration(now - Date.parse(record.pausedAt))} (CONT resumes)`);
  if (record.lastOutputAt) traits.push(`last output ${formatDuration(now - Date.parse(record.lastOutputAt))} ago`);
  return traits.join(', ');
}

/** How a row ran: confined by bubblewrap, or not. */
export function describeSandbox(sandbox: ProcessRecord['sandbox']): string {
  return sandbox === 'bwrap' ? 'bwrap (own pid namespace; writes only in its workspace and /tmp)' : 'none (unconfined: it could reach everything the bot\'s user can)';
}

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

/** `running`, `exit 0`, `SIGTERM`, `lost`: the short state of a row. */
export function shortOutcome(record: ProcessRecord): string {
  if (record.status === 'exited') return `exit ${record.exitCode}`;
  if (record.status === 'killed') return record.signal ?? 'killed';
  if (record.status === 'running' && record.pausedAt) return 'paused';
  return record.status;
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

import type { HookEngine } from '../hooks/hook-engine.js';
import { logPath, readLastLines } from '../process/log-reader.js';
import type { ProcessManager } from '../process/process-manager.js';
import type { ProcessRecord } from '../store/process-repo.js';
import { cutLine, formatDuration, interactionTraits, readinessState, shortOutcome } from './describe.js';

export const PREAMBLE_BUDGET = 2_000;
const RECENT_ENDED = 5;
const COMMAND_SHOWN = 80;
const LAST_LINE_SHOWN = 80;
const HOOK_SHOWN = 70;

export interface PreambleSource {
  manager: ProcessManager;
  hooks: Pick<HookEngine, 'hooksFor'>;
}

function lastLine(source: PreambleSource, record: ProcessRecord): string | undefined {
  const tail = source.manager.tail(record.id, 1);
  if (tail) return tail[0]?.text;
  const out = readLastLines(logPath(record, 'stdout'), 1, 16 * 1024)[0];
  return out ?? readLastLines(logPath(record, 'stderr'), 1, 16 * 1024)[0];
}

function liveHooks(source: PreambleSource, record: ProcessRecord): string[] {
  return source.hooks.hooksFor(record.id)
    .filter((h) => h.row.fireCount < h.row.maxFires)
    .map((h) => cutLine(h.description, HOOK_SHOWN));
}

function runningLine(source: PreambleSource, record: ProcessRecord, now: number): string {
  const label = record.name ? ` "${cutLine(record.name, 30)}"` : '';
  const readiness = readinessState(record);
  const restarts = record.restartCount > 0 ? `, restarted ${record.restartCount}×` : '';
  const traits = interactionTraits(record, now);
  const unconfined = record.sandbox === 'none' ? ' [unconfined]' : '';
  if (record.status === 'restarting') {
    const due = record.restartDueAt ? ` in ${formatDuration(Date.parse(record.restartDueAt) - now)}` : '';
    return `- pid ${record.pid} ${record.processType}${label}${unconfined}: ${cutLine(record.command, COMMAND_SHOWN)} (restarting${due} after ${shortOutcome({ ...record, status: 'exited', restartCount: 0 })}${restarts})`;
  }
  const parts = [`- pid ${record.pid} ${record.processType}${label}${unconfined}: ${cutLine(record.command, COMMAND_SHOWN)} (${readiness ? `${readiness}, ` : ''}up ${formatDuration(now - Date.parse(record.startedAt))}${restarts}${traits ? `; ${traits}` : ''})`];
  const last = lastLine(source, record);
  if (last !== undefined && last.trim()) parts.push(`  last: ${cutLine(last, LAST_LINE_SHOWN)}`);
  const hooks = liveHooks(source, record);
  if (hooks.length) parts.push(`  hooks: ${hooks.slice(0, 2).join('; ')}${hooks.length > 2 ? `; +${hooks.length - 2} more` : ''}`);
  return parts.join('\n');
}

function endedLine(record: ProcessRecord, now: number): string {
  const ago = record.endedAt ? ` ${formatDuration(now - Date.parse(record.endedAt))} ago` : '';
  const by = record.stoppedBy ? ` by ${cutLine(record.stoppedBy, 30)}` : '';
  return `- pid ${record.pid} ${record.processType}: ${cutLine(record.command, COMMAND_SHOWN)} → ${shortOutcome(record)}${by}${ago}`;
}

/**
 * What the model is told about its agent's processes in every request: the running ones (pid, type, command, uptime,
 * last output line, live hooks) and the last few that ended, within `budget` characters.
 */
export function buildPreamble(source: PreambleSource, agentName: string, options: { budget?: number; now?: number } = {}): string {
  const sandbox = sandboxLine(source.manager);
  return `${buildProcessLines(source, agentName, { ...options, budget: (options.budget ?? PREAMBLE_BUDGET) - sandbox.length - 1 })}\n${sandbox}`;
}

/** Where the agent's commands run, so it neither tries what the sandbox forbids nor assumes it is confined when it is not. */
function sandboxLine(manager: ProcessManager): string {
  return manager.sandbox.kind() === 'bwrap'
    ? 'Sandbox: bwrap. Your commands see only your workspace and /tmp as writable, not other processes nor Chorus\'s files.'
    : 'Sandbox: none. Your commands run unconfined, as the bot\'s user.';
}

function buildProcessLines(source: PreambleSource, agentName: string, options: { budget?: number; now?: number }): string {
  const budget = options.budget ?? PREAMBLE_BUDGET;
  const now = options.now ?? Date.now();
  // A process waiting for its policy restart is still one of the live ones.
  const running = [...source.manager.list({ agentName, status: 'running', limit: 500 }), ...source.manager.list({ agentName, status: 'restarting', limit: 100 })];
  const ended = source.manager.list({ agentName, status: 'all', limit: RECENT_ENDED + running.length + 5 })
    .filter((r) => r.status !== 'running' && r.status !== 'restarting')
    .slice(0, RECENT_ENDED);
  const header = running.length ? `Your running processes (${running.length}):` : 'You have no running processes.';
  const lines: string[] = [header];
  let used = header.length;
  // Reserve room for the summary line and the ended section, so neither is crowded out entirely.
  const endedLines = ended.map((r) => endedLine(r, now));
  const endedBlock = endedLines.length ? `Recently ended:\n${endedLines.join('\n')}` : '';
  const endedReserve = Math.min(endedBlock.length + 1, Math.floor(budget / 3));
  const summaryReserve = 80;
  let shown = 0;
  for (const record of running) {
    const line = runningLine(source, record, now);
    if (used + line.length + 1 > budget - endedReserve - summaryReserve) break;
    lines.push(line);
    used += line.length + 1;
    shown += 1;
  }
  if (shown < running.length) {
    const more = `… and ${running.length - shown} more running (list_processes shows all)`;
    lines.push(more);
    used += more.length + 1;
  }
  if (endedLines.length) {
    const head = 'Recently ended:';
    if (used + head.length + 1 < budget) {
      lines.push(head);
      used += head.length + 1;
      for (const line of endedLines) {
        if (used + line.length + 1 > budget) break;
        lines.push(line);
        used += line.length + 1;
      }
    }
  }
  const text = lines.join('\n');
  return text.length > budget ? `${text.slice(0, budget - 1)}…` : text;
}

import type { FiringCause } from '../store/hook-repo.js';
import type { HookAction } from './hook-spec.js';

/** Everything an action gets about the firing; `text` is the bounded message a model reads. */
export interface HookContext {
  hookId: number;
  firingId: number;
  processId: number;
  pid: number | null;
  agentName: string;
  command: string;
  processName: string | null;
  /** The branch that started the process (concurrent and background alike), if any. */
  branchId: string | null;
  action: HookAction;
  message: string;
  trigger: string;
  cause: FiringCause;
  /** Why a watchdog or readiness hook fired (the held port's holder, the memory seen, the silence). */
  reason?: string | undefined;
  /** For a crash loop: the last runs, newest first, with their exit codes and output tails. */
  runs?: Array<{ pid: number | null; status: string; exitCode: number | null; tail: string[] }> | undefined;
  matchedLines: string[];
  mergedCount: number;
  exitCode: number | null;
  signal: string | null;
  status: string;
  outputTail: string[];
  modelForHooks: string | null;
  /** The recursion depth a branch started by this firing gets. */
  depth: number;
  text: string;
}

/** A branch started by a hook: `finished` settles when it has answered, so concurrency can be limited. */
export interface SpawnedBranch {
  branchId: string;
  finished: Promise<void>;
}

/** What the agents layer implements for hook actions (stop_process goes through the process core). */
export interface HookPort {
  /** Adds the context to the branch and wakes it if idle; false when that branch no longer exists. */
  injectContext(context: HookContext): Promise<boolean>;
  spawnBranch(context: HookContext): Promise<SpawnedBranch>;
  /** Stops the branch and its concurrent processes. */
  stopBranch(context: HookContext): Promise<void>;
  notifyChannel(context: HookContext, text: string): Promise<void>;
}

export const CONTEXT_TEXT_LIMIT = 6_000;
const LINE_LIMIT = 400;
const MATCHED_LINES_SHOWN = 40;
export const TAIL_LINES_FOR_HOOKS = 30;

function cut(line: string, max = LINE_LIMIT): string {
  return line.length > max ? `${line.slice(0, max)}… [cut]` : line;
}

/** The message a model or channel sees for a firing, bounded in size. */
export function renderContextText(c: Omit<HookContext, 'text'>): string {
  const parts: string[] = [];
  parts.push(`[hook ${c.trigger}] on pid ${c.pid ?? '?'}${c.processName ? ` (${c.processName})` : ''}: ${cut(c.command, 200)}`);
  parts.push(c.message);
  if (c.cause === 'exit') {
    if (c.status === 'crash_loop') {
      parts.push(`The process kept crashing and its restart policy gave up (crash loop); it is not running. Last exit code: ${c.exitCode ?? 'none'}.`);
    } else {
      parts.push(c.status === 'lost' ? 'The process was lost (no exit status).' : `The process exited with code ${c.exitCode}.`);
    }
  }
  if (c.cause === 'timeout') parts.push('The process is still running past its timeout.');
  if (c.cause === 'ready') parts.push('The process is ready.');
  if (c.cause === 'ready_timeout') parts.push(`The process did not become ready: ${c.reason ?? 'timed out'}.`);
  if (c.cause === 'idle') parts.push(`The process printed nothing ${c.reason ?? 'for a while'} and is still running.`);
  if (c.cause === 'resource') parts.push(`The process is over its resource bound: ${c.reason ?? ''}.`);
  if (c.runs?.length) {
    const runs = c.runs.map((r) => `- pid ${r.pid ?? '?'}: ${r.exitCode === null ? r.status : `exit ${r.exitCode}`}${r.tail.length ? `\n${r.tail.map((l) => `    ${cut(l, 200)}`).join('\n')}` : ''}`);
    parts.push(`Earlier runs (newest first):\n${runs.join('\n')}`);
  }
  if (c.matchedLines.length) {
    const shown = c.matchedLines.slice(0, MATCHED_LINES_SHOWN).map((l) => cut(l));
    const more = c.matchedLines.length - shown.length;
    parts.push(`Matched output${c.mergedCount > 1 ? ` (${c.mergedCount} matches merged into this firing)` : ''}:\n${shown.join('\n')}${more > 0 ? `\n… ${more} more lines` : ''}`);
  }
  if (c.outputTail.length) parts.push(`Last ${c.outputTail.length} lines of output:\n${c.outputTail.map((l) => cut(l, 300)).join('\n')}`);
  let text = parts.join('\n\n');
  if (text.length > CONTEXT_TEXT_LIMIT) text = `${text.slice(0, CONTEXT_TEXT_LIMIT - 20)}\n… [context cut]`;
  return text;
}

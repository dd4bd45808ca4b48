import { isAppError } from '../errors.js';
import type { HookEngine } from '../hooks/hook-engine.js';
import type { Logger } from '../logger.js';
import type { ProcessManager } from '../process/process-manager.js';
import type { BranchMessageRow, BranchRepo } from '../store/branch-repo.js';
import type { AgentConfig } from './agent-config.js';
import { enforceInvariants } from './history.js';
import type { ChatMessage, LlmClient, ToolCall } from './llm-client.js';
import { LLM_ERRORS, type LlmErrorCase } from './llm-errors.js';
import { buildPreamble } from './preamble.js';
import { concurrencyKey, runToolCall, TOOL_DEFINITIONS, type ToolContext, type ToolResult } from './tools.js';

export const DEFAULT_MAX_STEPS = 20;
const MAX_HISTORY_MESSAGES = 120;
const MAX_HISTORY_CHARS = 150_000;
/** Asked once when an answer was cut at the model's output limit (finish_reason "length"). */
export const CONTINUE_PROMPT = '(Your answer was cut off at your output limit. Continue exactly where it stopped, without repeating it.)';
export const CUT_NOTE = '(The answer was cut: the model reached its output limit twice.)';

export interface BranchRef {
  id: string;
  agent: AgentConfig;
  depth: number;
  /** The branch's own model (a hook's model_for_hooks), else the agent's, else the client's default. */
  model: string | null;
}

export type TurnOutcome =
  | { kind: 'answer'; text: string; steps: number }
  | { kind: 'step_limit'; steps: number }
  | { kind: 'error'; error: unknown; steps: number };

export interface BranchRunnerOptions {
  llm: LlmClient;
  repo: BranchRepo;
  manager: ProcessManager;
  hooks: () => HookEngine;
  log: Logger;
  maxSteps?: number;
  env?: NodeJS.ProcessEnv;
}

/** One turn of a branch's tool loop: history → model → tools → results → again, until a text answer or the step limit. */
export class BranchRunner {
  readonly maxSteps: number;

  constructor(private readonly options: BranchRunnerOptions) {
    this.maxSteps = options.maxSteps ?? DEFAULT_MAX_STEPS;
  }

  /** Never rejects except with the abort reason when `signal` aborts (the branch was stopped). */
  async run(branch: BranchRef, signal: AbortSignal): Promise<TurnOutcome> {
    const { repo, llm } = this.options;
    let steps = 0;
    /** The text of an answer cut at the output limit, to which its continuation is added. */
    let cutText: string | undefined;
    try {
      for (;;) {
        signal.throwIfAborted();
        // Messages that arrived during the last step (injected context, a reply) join the history here, between steps.
        repo.takeQueued(branch.id);
        if (steps >= this.maxSteps) {
          this.note(branch, `(I stopped here: the step limit of ${this.maxSteps} steps.)`);
          return { kind: 'step_limit', steps };
        }
        const completion = await llm.complete({
          messages: this.buildMessages(branch),
          tools: TOOL_DEFINITIONS,
          ...(branch.model ?? branch.agent.model ? { model: (branch.model ?? branch.agent.model)! } : {}),
          signal,
        });
        steps += 1;
        signal.throwIfAborted();
        const { content, tool_calls: calls, extra, endpoint } = completion.message;
        repo.appendMessage(branch.id, {
          role: 'assistant', content, toolCallsJson: calls.length ? JSON.stringify(calls) : null, toolCallId: null,
          extraJson: extra ? JSON.stringify(extra) : null, endpoint: endpoint ?? null,
        });
        if (!calls.length) {
          const text = (cutText ?? '') + (content ?? '');
          if (completion.finishReason === 'length') {
            if (cutText === undefined) {
              cutText = text;
              repo.appendMessage(branch.id, { role: 'user', content: CONTINUE_PROMPT, toolCallsJson: null, toolCallId: null });
              continue;
            }
            return { kind: 'answer', text: `${text.trim()}\n\n${CUT_NOTE}`, steps };
          }
          return { kind: 'answer', text: text.trim() || '(the model returned an empty answer)', steps };
        }
        const results = await this.runTools(branch, calls, signal);
        calls.forEach((call, i) => {
          repo.appendMessage(branch.id, { role: 'tool', content: results[i]!.content, toolCallsJson: null, toolCallId: call.id });
        });
      }
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      this.note(branch, `(My last step failed: ${isAppError(error) ? error.message : 'an internal error'}.)`);
      return { kind: 'error', error, steps };
    }
  }

  /** Records how a turn ended, so the history does not end in tool results and the model knows on the next turn. */
  private note(branch: BranchRef, content: string): void {
    try {
      this.options.repo.appendMessage(branch.id, { role: 'assistant', content, toolCallsJson: null, toolCallId: null });
    } catch (error) {
      this.options.log.warn({ err: error, branchId: branch.id }, 'could not record how a turn ended');
    }
  }

  /** The request's messages: one system message (prompt, facts, process preamble), then the stored history. */
  buildMessages(branch: BranchRef): ChatMessage[] {
    const preamble = buildPreamble({ manager: this.options.manager, hooks: this.options.hooks() }, branch.agent.name);
    const system = [
      branch.agent.systemPrompt,
      `You are the agent "${branch.agent.name}". Your workspace is ${branch.agent.workspace}. The time is ${new Date().toISOString()}.`,
      `## Your processes\n${preamble}`,
    ].join('\n\n');
    return [{ role: 'system', content: system }, ...trimHistory(enforceInvariants(this.options.repo.messages(branch.id).map(toChatMessage)))];
  }

  private async runTools(branch: BranchRef, calls: ToolCall[], signal: AbortSignal): Promise<ToolResult[]> {
    const ctx: ToolContext = {
      agent: branch.agent, branchId: branch.id, depth: branch.depth, manager: this.options.manager, hooks: this.options.hooks(),
      log: this.options.log, signal, env: this.options.env,
    };
    // Calls on the same pid keep their order (stop after status, say); independent ones run at once.
    const chains = new Map<string, Promise<ToolResult>>();
    return Promise.all(calls.map((call, index) => {
      const key = concurrencyKey(call, index);
      const result = (chains.get(key) ?? Promise.resolve(undefined)).then(() => runToolCall(ctx, call));
      chains.set(key, result);
      return result;
    }));
  }
}

export function toChatMessage(row: BranchMessageRow): ChatMessage {
  switch (row.role) {
    case 'user':
      return { role: 'user', content: row.content ?? '' };
    case 'tool':
      return { role: 'tool', tool_call_id: row.toolCallId ?? '', content: row.content ?? '' };
    case 'assistant':
      return {
        role: 'assistant',
        content: row.toolCallsJson ? row.content : row.content ?? '',
        ...(row.toolCallsJson && { tool_calls: JSON.parse(row.toolCallsJson) as ToolCall[] }),
        ...(row.extraJson && { extra: JSON.parse(row.extraJson) as Record<string, unknown> }),
        ...(row.endpoint && { endpoint: row.endpoint }),
      };
  }
}

/** Keeps the newest messages within a count and size, starting at a user message so no call loses its result. */
export function trimHistory(messages: ChatMessage[]): ChatMessage[] {
  let chars = 0;
  let start = messages.length;
  while (start > 0) {
    const message = messages[start - 1]!;
    const size = (message.content?.length ?? 0) + ('tool_calls' in message && message.tool_calls ? JSON.stringify(message.tool_calls).length : 0);
    if (messages.length - start >= MAX_HISTORY_MESSAGES || chars + size > MAX_HISTORY_CHARS) break;
    chars += size;
    start -= 1;
  }
  if (start === 0) return messages;
  let cut = start;
  while (cut < messages.length && messages[cut]!.role !== 'user') cut += 1;
  if (cut === messages.length) {
    // One turn larger than the budget: keep it from its user message.
    cut = messages.map((m) => m.role).lastIndexOf('user');
    if (cut < 0) cut = 0;
  }
  return messages.slice(cut);
}

/** The line a branch posts when its turn failed: what happened, in the endpoint's words, and what to do (LLM_ERRORS). */
export function describeTurnError(error: unknown): string {
  if (isAppError(error)) {
    const errorCase = error.details?.case as LlmErrorCase | undefined;
    const advice = errorCase && LLM_ERRORS[errorCase] ? LLM_ERRORS[errorCase].advice : 'Reply to this message to try again.';
    return `⚠️ I could not finish: ${error.message}. ${advice}`;
  }
  return '⚠️ I could not finish because of an internal error (the log has the details). Reply to this message to try again.';
}

import { AppError, isAppError } from '../errors.js';
import type { HookEngine } from '../hooks/hook-engine.js';
import type { Logger } from '../logger.js';
import type { ProcessManager } from '../process/process-manager.js';
import type { BranchMessageRow, BranchRepo } from '../store/branch-repo.js';
import type { AgentConfig } from './agent-config.js';
import type { ChatMessage, LlmClient, ToolCall } from './llm-client.js';
import { buildPreamble } from './preamble.js';
import { concurrencyKey, runToolCall, TOOL_DEFINITIONS, type ToolContext, type ToolResult } from './tools.js';

export const DEFAULT_MAX_STEPS = 20;
const MAX_HISTORY_MESSAGES = 120;
const MAX_HISTORY_CHARS = 150_000;

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
    try {
      for (;;) {
        signal.throwIfAborted();
        // Messages that arrived during the last step (injected context, a reply) join the history here, between steps.
        repo.takeQueued(branch.id);
        if (steps >= this.maxSteps) return { kind: 'step_limit', steps };
        const completion = await llm.complete({
          messages: this.buildMessages(branch),
          tools: TOOL_DEFINITIONS,
          ...(branch.model ?? branch.agent.model ? { model: (branch.model ?? branch.agent.model)! } : {}),
          signal,
        });
        steps += 1;
        signal.throwIfAborted();
        const { content, tool_calls: calls } = completion.message;
        repo.appendMessage(branch.id, {
          role: 'assistant', content, toolCallsJson: calls.length ? JSON.stringify(calls) : null, toolCallId: null,
        });
        if (!calls.length) return { kind: 'answer', text: content?.trim() || '(the model returned an empty answer)', steps };
        const results = await this.runTools(branch, calls, signal);
        calls.forEach((call, i) => {
          repo.appendMessage(branch.id, { role: 'tool', content: results[i]!.content, toolCallsJson: null, toolCallId: call.id });
        });
      }
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      return { kind: 'error', error, steps };
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
    return [{ role: 'system', content: system }, ...trimHistory(repairHistory(this.options.repo.messages(branch.id).map(toChatMessage)))];
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
      return row.toolCallsJson
        ? { role: 'assistant', content: row.content, tool_calls: JSON.parse(row.toolCallsJson) as ToolCall[] }
        : { role: 'assistant', content: row.content ?? '' };
  }
}

/**
 * Every tool call gets its result right after its assistant message, as the protocol requires: a turn cut short by
 * a stop or a crash left calls without results, which get a result saying so.
 */
export function repairHistory(messages: ChatMessage[]): ChatMessage[] {
  const out: ChatMessage[] = [];
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i]!;
    if (message.role === 'tool') continue; // placed with its call below, or an orphan
    out.push(message);
    if (message.role !== 'assistant' || !message.tool_calls?.length) continue;
    const results = new Map<string, ChatMessage>();
    let j = i + 1;
    for (; j < messages.length && messages[j]!.role === 'tool'; j++) {
      const result = messages[j] as Extract<ChatMessage, { role: 'tool' }>;
      results.set(result.tool_call_id, result);
    }
    for (const call of message.tool_calls) {
      out.push(results.get(call.id) ?? {
        role: 'tool', tool_call_id: call.id,
        content: JSON.stringify({ ok: false, error: 'this call was interrupted (the branch was stopped or Chorus restarted) before it returned' }),
      });
    }
    i = j - 1;
  }
  return out;
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

/** The line a branch posts when its turn failed: what happened and what to do. */
export function describeTurnError(error: unknown): string {
  if (isAppError(error)) {
    const hints: Partial<Record<AppError['code'], string>> = {
      LLM_UNAUTHORIZED: 'Fix LLM_API_KEY (in .env or the environment) and restart Chorus, then reply to this message to try again.',
      LLM_MODEL_NOT_FOUND: 'Fix LLM_MODEL, or "model" in the agent\'s agent.json, then reply to this message to try again.',
      LLM_TIMEOUT: 'The model may be slow or overloaded: reply to this message to try again.',
      LLM_UNAVAILABLE: 'Check that LLM_BASE_URL is reachable, then reply to this message to try again.',
      LLM_BAD_RESPONSE: 'Check that LLM_BASE_URL points at an OpenAI-compatible /v1 API, then reply to this message to try again.',
      LLM_REQUEST_REJECTED: 'The conversation may be too long for the model: start a new conversation, or reply to try again.',
    };
    return `⚠️ I could not finish: ${error.message}. ${hints[error.code] ?? 'Reply to this message to try again.'}`;
  }
  return '⚠️ I could not finish because of an internal error (the log has the details). Reply to this message to try again.';
}

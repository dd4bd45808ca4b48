import { randomBytes } from 'node:crypto';
import { FakeLlmServer, type FakeCompletion, type FakeHttpReply, type FakeLlmRequest, type FakeLlmServerOptions } from '../fake-llm-server.js';

/**
 * A local endpoint that behaves like one provider's Chat Completions API, from the rules and sources in
 * ../shared/notes/llm-providers.md: it refuses what the provider refuses, with the provider's error body, and answers
 * in the provider's shape (ids, extra fields, finish reasons, parallel calls or not).
 */
export interface LlmEndpoint {
  name: string;
  /** The LLM_MODEL to use with it. */
  model: string;
  /** Whether its model makes several tool calls in one step (else the script's first call only is returned). */
  isParallel: boolean;
  /** A documented error that ends a step without a retry, and the words of it a person must see. */
  failure: FakeHttpReply;
  failureSays: RegExp;
  start(options?: FakeLlmServerOptions): Promise<FakeLlmServer>;
}

export type WireMessage = Record<string, any> & { role: string };
export type WireToolCall = { id: string; type: string; function: { name: string; arguments: string }; [key: string]: unknown };

export function messagesOf(request: FakeLlmRequest): WireMessage[] {
  return Array.isArray(request.body?.messages) ? request.body.messages : [];
}

export function toolCallsOf(message: WireMessage): WireToolCall[] {
  return message.role === 'assistant' && Array.isArray(message.tool_calls) ? message.tool_calls : [];
}

/** Index of the first message of the current turn: the last user message (Gemini 3 and DeepSeek check from there). */
export function currentTurnStart(messages: WireMessage[]): number {
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i]!.role === 'user') return i;
  return 0;
}

export interface ToolAnswerProblem {
  kind: 'unanswered' | 'orphan';
  index: number;
  ids: string[];
}

/** The OpenAI rule every provider shares: each tool call is answered by tool messages right after it, and no tool message without its call. */
export function findToolAnswerProblem(messages: WireMessage[]): ToolAnswerProblem | undefined {
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i]!;
    if (message.role === 'tool') {
      let j = i - 1;
      while (j >= 0 && messages[j]!.role === 'tool') j--;
      const owner = messages[j];
      if (!owner || !toolCallsOf(owner).some((call) => call.id === message.tool_call_id)) return { kind: 'orphan', index: i, ids: [String(message.tool_call_id)] };
      continue;
    }
    const calls = toolCallsOf(message);
    if (!calls.length) continue;
    const answered = new Set<string>();
    for (let j = i + 1; j < messages.length && messages[j]!.role === 'tool'; j++) answered.add(messages[j]!.tool_call_id);
    const missing = calls.map((call) => call.id).filter((id) => !answered.has(id));
    if (missing.length) return { kind: 'unanswered', index: i, ids: missing };
  }
  return undefined;
}

export function randomAlnum(length: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(length)].map((byte) => alphabet[byte % alphabet.length]).join('');
}

export function randomHex(length: number): string {
  return randomBytes(Math.ceil(length / 2)).toString('hex').slice(0, length);
}

/** `{error:{message,type,param,code}}`, the body OpenAI, Groq, DeepSeek, Ollama and vLLM share. */
export function openAiError(status: number, message: string, fields: { type?: string; param?: string | null; code?: string | number | null } = {}): FakeHttpReply {
  return { status, body: { error: { message, type: fields.type ?? 'invalid_request_error', param: fields.param ?? null, code: fields.code ?? null } } };
}

/** The script's choice, reshaped: tool calls rewritten by `reshapeCall`, only the first kept when the model is not parallel. */
export function reshapeMessage(
  completion: FakeCompletion,
  options: { isParallel: boolean; reshapeCall?: (call: WireToolCall, index: number) => WireToolCall; extra?: (message: Record<string, any>) => Record<string, unknown> },
): { message: Record<string, any>; choice: FakeCompletion['choices'][number] } {
  const choice = completion.choices[0]!;
  const message = choice.message;
  if (Array.isArray(message.tool_calls)) {
    const calls = (options.isParallel ? message.tool_calls : message.tool_calls.slice(0, 1)) as WireToolCall[];
    message.tool_calls = options.reshapeCall ? calls.map(options.reshapeCall) : calls;
  }
  if (options.extra) Object.assign(message, options.extra(message));
  return { message, choice };
}

export function hasToolCalls(message: Record<string, any>): boolean {
  return Array.isArray(message.tool_calls) && message.tool_calls.length > 0;
}

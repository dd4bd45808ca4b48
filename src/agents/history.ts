import { createHash, randomBytes } from 'node:crypto';
import type { AssistantMessage, ChatMessage, ToolCall, ToolMessage } from './llm-client.js';

/** A message as it goes on the wire. */
export type WireMessage = Record<string, unknown> & { role: string };

/** Mistral's rule (`^[a-zA-Z0-9]{9}$`), the strictest of all: an id of this form is accepted everywhere. */
export const PORTABLE_TOOL_CALL_ID = /^[a-zA-Z0-9]{9}$/;
const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export const INTERRUPTED_RESULT = JSON.stringify({ ok: false, error: 'this call was interrupted (the branch was stopped or Chorus restarted) before it returned' });
/** Stands between tool results and a message that arrived meanwhile: after a tool message only an assistant or tool one may come (Mistral). */
export const BRIDGE_CONTENT = '(The tool results above are in; a new message arrived.)';
/** Stands for an assistant answer that said nothing: such a message is refused by several endpoints. */
export const EMPTY_ANSWER_CONTENT = '(no answer)';

/** A fresh id of the portable form. */
export function newToolCallId(seed?: string): string {
  const bytes = seed === undefined ? randomBytes(16) : createHash('sha256').update(seed).digest();
  let id = '';
  for (let i = 0; id.length < 9; i++) id += ID_ALPHABET[bytes[i % bytes.length]! % ID_ALPHABET.length];
  return id;
}

/**
 * The history every endpoint accepts, enforced in one place before each request:
 * - every tool call is answered by its results right after it (a result missing after a stop or a crash is made up,
 *   a result without its call is dropped);
 * - no user or system message directly after a tool message (an assistant message bridges them);
 * - no assistant message with neither content nor tool calls, and no `content: null` without tool calls;
 * - no empty tool call id.
 */
export function enforceInvariants(messages: ChatMessage[]): ChatMessage[] {
  const out: ChatMessage[] = [];
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i]!;
    if (message.role === 'tool') continue; // placed with its call below, or an orphan
    const previous = out.at(-1);
    if (previous?.role === 'tool' && (message.role === 'user' || message.role === 'system')) out.push({ role: 'assistant', content: BRIDGE_CONTENT });
    if (message.role !== 'assistant') {
      out.push(message);
      continue;
    }
    const calls = message.tool_calls ?? [];
    if (!calls.length) {
      const { tool_calls: _dropped, ...rest } = message;
      out.push({ ...rest, content: message.content?.trim() ? message.content : EMPTY_ANSWER_CONTENT });
      continue;
    }
    let j = i + 1;
    const results: ToolMessage[] = [];
    for (; j < messages.length && messages[j]!.role === 'tool'; j++) results.push(messages[j] as ToolMessage);
    const answered = new Set<ToolMessage>();
    const fixedCalls = calls.map((call, index) => (call.id ? call : { ...call, id: newToolCallId(`${i}:${index}:${call.function.name}`) }));
    out.push({ ...message, tool_calls: fixedCalls });
    fixedCalls.forEach((call, index) => {
      // A result is found by its id; an empty id (a call that had none) by its position.
      const original = calls[index]!.id;
      const result = results.find((r) => !answered.has(r) && (original ? r.tool_call_id === original : !r.tool_call_id));
      if (result) answered.add(result);
      out.push({ role: 'tool', tool_call_id: call.id, content: result?.content ?? INTERRUPTED_RESULT });
    });
    i = j - 1;
  }
  return out;
}

/**
 * The wire form of a history for `endpoint`: an assistant message that endpoint wrote goes back verbatim, with every
 * field it added (DeepSeek's `reasoning_content`, OpenRouter's `reasoning_details`, Gemini 3's thought signatures on
 * tool calls); one written elsewhere goes with the portable fields only, one call per message (vLLM's Llama 3
 * template refuses two), content as a string (LM Studio refuses null) and ids of the portable form (Mistral), its
 * results renamed to match.
 */
export function toWireMessages(messages: ChatMessage[], endpoint: string): WireMessage[] {
  const valid = enforceInvariants(messages);
  const out: WireMessage[] = [];
  const usedIds = new Set<string>();
  for (let i = 0; i < valid.length; i++) {
    const message = valid[i]!;
    if (message.role !== 'assistant') {
      out.push({ ...message });
      continue;
    }
    const calls = message.tool_calls ?? [];
    if (message.endpoint === endpoint) {
      out.push(verbatim(message));
      continue;
    }
    if (!calls.length) {
      out.push({ role: 'assistant', content: message.content ?? '' });
      continue;
    }
    const results = valid.slice(i + 1, i + 1 + calls.length) as ToolMessage[];
    calls.forEach((call, index) => {
      const id = portableId(call.id, usedIds);
      out.push({
        role: 'assistant', content: index === 0 ? message.content ?? '' : '',
        tool_calls: [{ id, type: 'function', function: { name: call.function.name, arguments: call.function.arguments } }],
      });
      out.push({ role: 'tool', tool_call_id: id, content: results[index]!.content });
    });
    i += calls.length;
  }
  return out;
}

function portableId(id: string, used: Set<string>): string {
  let portable = PORTABLE_TOOL_CALL_ID.test(id) ? id : newToolCallId(id);
  for (let n = 1; used.has(portable); n++) portable = newToolCallId(`${id}#${n}`);
  used.add(portable);
  return portable;
}

function verbatim(message: AssistantMessage): WireMessage {
  const calls = message.tool_calls ?? [];
  return {
    ...message.extra,
    role: 'assistant',
    content: message.content,
    ...(calls.length && { tool_calls: calls.map(verbatimCall) }),
  };
}

function verbatimCall(call: ToolCall): Record<string, unknown> {
  return { ...call.extra, id: call.id, type: call.type, function: call.function };
}

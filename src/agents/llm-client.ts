import { AppError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { newToolCallId, toWireMessages } from './history.js';
import { classifyHttpError, extractEndpointError, LLM_ERRORS, saysModelIsMissing, type EndpointError, type LlmErrorCase } from './llm-errors.js';

export type JsonSchema = Record<string, unknown>;

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
  /** Every other field the endpoint put on the call (Gemini 3's `extra_content`), sent back only to that endpoint. */
  extra?: Record<string, unknown>;
}

export interface ToolDefinition {
  type: 'function';
  function: { name: string; description: string; parameters: JsonSchema };
}

export interface SystemMessage { role: 'system'; content: string }
export interface UserMessage { role: 'user'; content: string; name?: string }
export interface AssistantMessage {
  role: 'assistant';
  content: string | null;
  tool_calls?: ToolCall[];
  /** Every other field the endpoint put on the message (`reasoning_content`, `reasoning_details`, …). */
  extra?: Record<string, unknown>;
  /** The endpoint (base URL and model) that wrote it: only that endpoint gets `extra` back. */
  endpoint?: string;
}
export interface ToolMessage { role: 'tool'; tool_call_id: string; content: string }
export type ChatMessage = SystemMessage | UserMessage | AssistantMessage | ToolMessage;

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export interface Completion {
  /** `tool_calls` is always an array here (empty when the model answered in text). */
  message: AssistantMessage & { tool_calls: ToolCall[] };
  finishReason: string;
  usage?: Usage;
}

export interface CompletionRequest {
  messages: ChatMessage[];
  tools?: ToolDefinition[];
  model?: string;
  signal?: AbortSignal;
}

export interface LlmClientOptions {
  baseUrl: string;
  apiKey?: string;
  model: string;
  timeoutMs?: number;
  maxRetries?: number;
  retryBaseMs?: number;
  maxRetryDelayMs?: number;
  log: Logger;
  fetch?: typeof fetch;
}

export const DEFAULT_TIMEOUT_MS = 120_000;
export const DEFAULT_MAX_RETRIES = 4;
export const DEFAULT_RETRY_BASE_MS = 500;
export const DEFAULT_MAX_RETRY_DELAY_MS = 30_000;
const MAX_ENDPOINT_MESSAGE_CHARS = 300;

/** What one attempt ended with, when it did not end with a completion. */
interface Failure {
  case: LlmErrorCase;
  status?: number;
  /** The line naming what happened, with the endpoint's own words. */
  description: string;
  retryAfterMs?: number;
  endpointCode?: string;
}

/** An OpenAI-compatible Chat Completions client with tool calls, retries and a timeout on each wait for the endpoint. */
export class LlmClient {
  readonly model: string;
  private readonly url: string;
  private readonly shownUrl: string;
  private readonly apiKey: string | undefined;
  private readonly timeoutMs: number;
  private readonly maxRetries: number;
  private readonly retryBaseMs: number;
  private readonly maxRetryDelayMs: number;
  private readonly log: Logger;
  private readonly fetchImpl: typeof fetch;

  constructor(options: LlmClientOptions) {
    this.url = `${options.baseUrl.replace(/\/+$/, '')}/chat/completions`;
    this.shownUrl = hideUrlCredentials(this.url);
    this.apiKey = options.apiKey || undefined;
    this.model = options.model;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
    this.retryBaseMs = options.retryBaseMs ?? DEFAULT_RETRY_BASE_MS;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? DEFAULT_MAX_RETRY_DELAY_MS;
    this.log = options.log;
    // Looked up per call so a test can still replace the global.
    this.fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
  }

  /** Who writes an answer for `model`: the fields it adds to a message go back to it only. */
  endpointOf(model: string = this.model): string {
    return `${this.shownUrl} ${model}`;
  }

  /** Rejects with an AppError (LLM_*), or with the caller's abort reason when `signal` aborts. */
  async complete(request: CompletionRequest): Promise<Completion> {
    const model = request.model ?? this.model;
    const endpoint = this.endpointOf(model);
    const body = JSON.stringify(buildRequestBody(model, endpoint, request));
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    const seen = new Map<LlmErrorCase, number>();

    for (let attempt = 1; ; attempt++) {
      request.signal?.throwIfAborted();
      const outcome = await this.attempt(model, endpoint, body, headers, request.signal);
      if (!('case' in outcome)) return outcome;
      const entry = LLM_ERRORS[outcome.case];
      const times = (seen.get(outcome.case) ?? 0) + 1;
      seen.set(outcome.case, times);
      const details = { case: outcome.case, status: outcome.status, model, attempts: attempt, endpointCode: outcome.endpointCode };
      if (entry.retry === 'no') throw new AppError(entry.code, outcome.description, { details });
      if (entry.retry === 'once' && times > 1) throw new AppError(entry.code, `${outcome.description} (twice)`, { details });
      // A documented one-more-try is part of the case's handling, whatever maxRetries says.
      if (entry.retry === 'yes' && attempt > this.maxRetries) {
        throw new AppError(entry.code, `${this.shownUrl} failed ${attempt} attempts; last: ${outcome.description}`, { details });
      }
      const delayMs = this.retryDelayMs(attempt, outcome.retryAfterMs);
      this.log.warn(
        { case: outcome.case, status: outcome.status, attempt, delayMs, ...(outcome.status === undefined && { error: outcome.description }) },
        'LLM request retried',
      );
      await sleep(delayMs, request.signal);
    }
  }

  private async attempt(
    model: string,
    endpoint: string,
    body: string,
    headers: Record<string, string>,
    callerSignal: AbortSignal | undefined,
  ): Promise<Completion | Failure> {
    // The timeout is for each wait: for the first byte, then between chunks (DeepSeek sends blank lines while queued).
    const timeout = new AbortController();
    const signal = callerSignal ? AbortSignal.any([timeout.signal, callerSignal]) : timeout.signal;
    let timer = setTimeout(() => timeout.abort(), this.timeoutMs);
    const rearm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => timeout.abort(), this.timeoutMs);
    };
    let hasFirstByte = false;
    let response: Response;
    let text: string;
    try {
      response = await this.fetchImpl(this.url, { method: 'POST', headers, body, signal });
      hasFirstByte = true;
      rearm();
      text = await readBody(response, rearm);
    } catch (error) {
      if (callerSignal?.aborted) throw callerSignal.reason;
      if (timeout.signal.aborted) {
        const said = hasFirstByte
          ? `the answer from ${this.shownUrl} stopped arriving: nothing for ${this.timeoutMs} ms (model ${JSON.stringify(model)})`
          : `no answer from ${this.shownUrl} within ${this.timeoutMs} ms (model ${JSON.stringify(model)})`;
        return { case: hasFirstByte ? 'stalled' : 'no_first_byte', description: said };
      }
      return { case: 'network', description: this.redact(describeNetworkError(error)) };
    } finally {
      clearTimeout(timer);
    }

    if (response.ok) return this.parseCompletion(text, model, endpoint);
    return this.httpFailure(response.status, this.readEndpointError(text), model, parseRetryAfterMs(response.headers));
  }

  private httpFailure(status: number, error: EndpointError, model: string, retryAfterMs?: number, where = `HTTP ${status}`): Failure {
    const said = error.message ? `: ${error.message}` : '';
    const failureCase = classifyHttpError(status, error);
    let description = `${where}${said}`;
    if (failureCase === 'unauthorized') {
      description = `${this.apiKey ? 'check LLM_API_KEY' : 'no LLM_API_KEY is set; the endpoint needs one'} (${where}${said})`;
    } else if (failureCase === 'model_not_found') {
      const hint = saysModelIsMissing(error) ? '' : `; if the model name is right, check that LLM_BASE_URL points at the API (POST ${this.shownUrl})`;
      description = `${JSON.stringify(model)} (${where}${said}${hint})`;
    } else if (failureCase === 'billing') {
      description = `the account behind LLM_API_KEY cannot pay for this request (${where}${said})`;
    }
    return {
      case: failureCase, status, description,
      ...(retryAfterMs !== undefined && { retryAfterMs }),
      ...(error.codes[0] !== undefined && { endpointCode: error.codes[0] }),
    };
  }

  private parseCompletion(text: string, model: string, endpoint: string): Completion | Failure {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return this.badResponse(`the body is not JSON: ${JSON.stringify(this.truncate(text))}`, model);
    }
    if (!isRecord(parsed)) return this.badResponse('the body is not a JSON object', model);
    const choice = Array.isArray(parsed.choices) ? parsed.choices[0] : undefined;
    if (!isRecord(choice) || !isRecord(choice.message)) {
      const endpointError = this.cleanEndpointError(extractEndpointError(parsed));
      if (parsed.error !== undefined) {
        // OpenRouter: an error after the answer started comes inside an HTTP 200, with its own code.
        const code = endpointError.numericCode;
        if (code !== undefined && code >= 400 && code <= 599) return this.httpFailure(code, endpointError, model, undefined, `error ${code} inside an HTTP 200 answer`);
        return { case: 'error_in_body', description: `an error inside an HTTP 200 answer${endpointError.message ? `: ${endpointError.message}` : ''}` };
      }
      const said = endpointError.message ? ` (the endpoint said: ${endpointError.message})` : '';
      return this.badResponse(`no choices[0].message in the response${said}`, model);
    }
    const message = choice.message;
    if (choice.finish_reason === 'error') {
      const native = typeof choice.native_finish_reason === 'string' ? choice.native_finish_reason : undefined;
      const inner = this.cleanEndpointError(extractEndpointError(choice));
      const said = [native, inner.message].filter(Boolean).join(': ');
      return { case: 'finish_error', description: `the answer ended with finish_reason "error"${said ? ` (${said})` : ''}` };
    }
    const content = readContent(message.content);
    if (content === undefined) return this.badResponse('choices[0].message.content is neither a string nor null', model);
    const toolCalls = this.readToolCalls(message.tool_calls, model);
    if (!Array.isArray(toolCalls)) return toolCalls;
    const finishReason = typeof choice.finish_reason === 'string' ? choice.finish_reason : toolCalls.length > 0 ? 'tool_calls' : 'stop';
    const extra = otherFields(message, ['role', 'content', 'tool_calls']);
    const completion: Completion = {
      message: { role: 'assistant', content, tool_calls: toolCalls, ...(extra && { extra }), endpoint }, finishReason,
    };
    const usage = readUsage(parsed.usage);
    if (usage) completion.usage = usage;
    return completion;
  }

  private readToolCalls(raw: unknown, model: string): ToolCall[] | Failure {
    if (raw === undefined || raw === null) return [];
    if (!Array.isArray(raw)) return this.badResponse('choices[0].message.tool_calls is not an array', model);
    const calls: ToolCall[] = [];
    for (const [index, call] of raw.entries()) {
      const fn = isRecord(call) ? call.function : undefined;
      if (!isRecord(call) || !isRecord(fn) || typeof fn.name !== 'string' || fn.name === '') {
        return this.badResponse(`tool_calls[${index}] has no function name`, model);
      }
      // Some servers send arguments as an object, or empty ids (Gemini 2.x, LM Studio); the tool loop needs a string and an id.
      const args = typeof fn.arguments === 'string' ? fn.arguments : JSON.stringify(fn.arguments ?? {});
      const id = typeof call.id === 'string' && call.id !== '' ? call.id : newToolCallId();
      const extra = otherFields(call, ['id', 'type', 'function']);
      calls.push({ id, type: 'function', function: { name: fn.name, arguments: args }, ...(extra && { extra }) });
    }
    return calls;
  }

  private badResponse(detail: string, model: string): Failure {
    return { case: 'bad_response', description: `${detail} (from ${this.shownUrl}, model ${JSON.stringify(model)})` };
  }

  private readEndpointError(text: string): EndpointError {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      const trimmed = text.trim();
      // An HTML error page says nothing a person can use in one line.
      return trimmed && !trimmed.startsWith('<') ? { message: this.truncate(this.redact(trimmed)), codes: [] } : { codes: [] };
    }
    return this.cleanEndpointError(extractEndpointError(parsed));
  }

  private cleanEndpointError(found: EndpointError): EndpointError {
    return found.message === undefined ? found : { ...found, message: this.truncate(this.redact(found.message)) };
  }

  /** The endpoint may echo the key back (OpenAI shows part of it); remove it before anything is shown or logged. */
  private redact(text: string): string {
    return this.apiKey ? text.split(this.apiKey).join('[redacted]') : text;
  }

  private truncate(text: string): string {
    return text.length > MAX_ENDPOINT_MESSAGE_CHARS ? `${text.slice(0, MAX_ENDPOINT_MESSAGE_CHARS - 3)}...` : text;
  }

  private retryDelayMs(attempt: number, retryAfterMs: number | undefined): number {
    if (retryAfterMs !== undefined) return Math.min(retryAfterMs, this.maxRetryDelayMs);
    const exponential = this.retryBaseMs * 2 ** (attempt - 1);
    const jitter = Math.random() * exponential * 0.25;
    return Math.round(Math.min(exponential + jitter, this.maxRetryDelayMs));
  }
}

function buildRequestBody(model: string, endpoint: string, request: CompletionRequest): Record<string, unknown> {
  const body: Record<string, unknown> = { model, messages: toWireMessages(request.messages, endpoint) };
  if (request.tools && request.tools.length > 0) {
    body.tools = request.tools;
    body.tool_choice = 'auto';
  }
  return body;
}

/** Reads the body, calling `onChunk` as each piece arrives (the timeout is re-armed by it). */
async function readBody(response: Response, onChunk: () => void): Promise<string> {
  if (!response.body) return '';
  const decoder = new TextDecoder();
  let text = '';
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    onChunk();
    text += decoder.decode(chunk, { stream: true });
  }
  return text + decoder.decode();
}

/** The fields of `record` beyond `known`, or undefined when there are none. */
function otherFields(record: Record<string, unknown>, known: string[]): Record<string, unknown> | undefined {
  const entries = Object.entries(record).filter(([key, value]) => !known.includes(key) && value !== undefined);
  return entries.length ? Object.fromEntries(entries) : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readContent(content: unknown): string | null | undefined {
  if (content === undefined || content === null) return null;
  if (typeof content === 'string') return content;
  // Some servers send content parts even in chat completions.
  if (Array.isArray(content)) {
    return content.map((part: unknown) => (isRecord(part) && typeof part.text === 'string' ? part.text : '')).join('');
  }
  return undefined;
}

function readUsage(raw: unknown): Usage | undefined {
  if (!isRecord(raw)) return undefined;
  const prompt = typeof raw.prompt_tokens === 'number' ? raw.prompt_tokens : 0;
  const completion = typeof raw.completion_tokens === 'number' ? raw.completion_tokens : 0;
  const total = typeof raw.total_tokens === 'number' ? raw.total_tokens : prompt + completion;
  return { promptTokens: prompt, completionTokens: completion, totalTokens: total };
}

/** `Retry-After` in seconds or as an HTTP date, or OpenAI's `retry-after-ms`. */
export function parseRetryAfterMs(headers: Headers, now = Date.now()): number | undefined {
  const ms = headers.get('retry-after-ms');
  if (ms !== null && /^\d+(\.\d+)?$/.test(ms.trim())) return Math.ceil(Number(ms));
  const value = headers.get('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.ceil(Number(value) * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function describeNetworkError(error: unknown): string {
  const cause = error instanceof Error ? error.cause : undefined;
  const code = typeof cause === 'object' && cause !== null && 'code' in cause ? String(cause.code) : undefined;
  const detail = cause instanceof Error ? cause.message : errorMessage(error);
  return `network error${code && !detail.includes(code) ? ` ${code}` : ''}: ${detail}`;
}

function hideUrlCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.username && !parsed.password) return url;
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return url;
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

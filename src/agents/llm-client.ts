import { AppError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';

export type JsonSchema = Record<string, unknown>;

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ToolDefinition {
  type: 'function';
  function: { name: string; description: string; parameters: JsonSchema };
}

export interface SystemMessage { role: 'system'; content: string }
export interface UserMessage { role: 'user'; content: string; name?: string }
export interface AssistantMessage { role: 'assistant'; content: string | null; tool_calls?: ToolCall[] }
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

interface EndpointError {
  message?: string;
  code?: string;
}

/** What one attempt ended with, when it can be retried. */
interface RetryableFailure {
  status?: number;
  description: string;
  retryAfterMs?: number;
}

/** An OpenAI-compatible Chat Completions client with tool calls, retries and a per-attempt timeout. */
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

  /** Rejects with an AppError (LLM_*), or with the caller's abort reason when `signal` aborts. */
  async complete(request: CompletionRequest): Promise<Completion> {
    const model = request.model ?? this.model;
    const body = JSON.stringify(buildRequestBody(model, request));
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;

    for (let attempt = 1; ; attempt++) {
      request.signal?.throwIfAborted();
      const outcome = await this.attempt(model, body, headers, request.signal);
      if (!('retryable' in outcome)) return outcome;
      const failure = outcome.retryable;
      if (attempt > this.maxRetries) {
        throw new AppError(
          'LLM_UNAVAILABLE',
          `${this.shownUrl} failed ${attempt} attempts; last: ${failure.description}`,
          { details: { status: failure.status, attempts: attempt, model } },
        );
      }
      const delayMs = this.retryDelayMs(attempt, failure.retryAfterMs);
      this.log.warn(
        { status: failure.status, attempt, delayMs, ...(failure.status === undefined && { error: failure.description }) },
        'LLM request retried',
      );
      await sleep(delayMs, request.signal);
    }
  }

  private async attempt(
    model: string,
    body: string,
    headers: Record<string, string>,
    callerSignal: AbortSignal | undefined,
  ): Promise<Completion | { retryable: RetryableFailure }> {
    const timeoutSignal = AbortSignal.timeout(this.timeoutMs);
    const signal = callerSignal ? AbortSignal.any([timeoutSignal, callerSignal]) : timeoutSignal;
    let response: Response;
    let text: string;
    try {
      response = await this.fetchImpl(this.url, { method: 'POST', headers, body, signal });
      // The timeout covers the body too: a stream that stalls halfway is still a timeout.
      text = await response.text();
    } catch (error) {
      if (callerSignal?.aborted) throw callerSignal.reason;
      if (timeoutSignal.aborted) {
        throw new AppError(
          'LLM_TIMEOUT',
          `no answer from ${this.shownUrl} within ${this.timeoutMs} ms (model ${JSON.stringify(model)}); a slow model or a long prompt may need a longer timeout`,
          { details: { timeoutMs: this.timeoutMs, model } },
        );
      }
      return { retryable: { description: this.redact(describeNetworkError(error)) } };
    }

    if (response.ok) return this.parseCompletion(text, model);

    const status = response.status;
    const endpointError = this.readEndpointError(text);
    const said = endpointError.message ? `: ${endpointError.message}` : '';
    const details = { status, model, endpointCode: endpointError.code };

    if (status === 401 || status === 403) {
      const hint = this.apiKey ? 'check LLM_API_KEY' : 'no LLM_API_KEY is set; the endpoint needs one';
      throw new AppError('LLM_UNAUTHORIZED', `${hint} (HTTP ${status}${said})`, { details });
    }
    if (isModelNotFound(status, endpointError)) {
      const hint = saysModelIsMissing(endpointError) ? '' : `; if the model name is right, check that LLM_BASE_URL points at the API (POST ${this.shownUrl})`;
      throw new AppError('LLM_MODEL_NOT_FOUND', `${JSON.stringify(model)} (HTTP ${status}${said}${hint})`, { details });
    }
    if (status === 429 && endpointError.code === 'insufficient_quota') {
      throw new AppError('LLM_UNAVAILABLE', `the account behind LLM_API_KEY is out of quota (HTTP 429${said})`, { details });
    }
    if (status === 408 || status === 429 || status >= 500) {
      return { retryable: { status, description: `HTTP ${status}${said}`, retryAfterMs: parseRetryAfterMs(response.headers) } };
    }
    throw new AppError('LLM_REQUEST_REJECTED', `HTTP ${status}${said}`, { details });
  }

  private parseCompletion(text: string, model: string): Completion {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw this.badResponse(`the body is not JSON: ${JSON.stringify(this.truncate(text))}`, model);
    }
    if (!isRecord(parsed)) throw this.badResponse('the body is not a JSON object', model);
    const choice = Array.isArray(parsed.choices) ? parsed.choices[0] : undefined;
    if (!isRecord(choice) || !isRecord(choice.message)) {
      const endpointError = extractEndpointError(parsed);
      const said = endpointError.message ? ` (the endpoint said: ${this.truncate(this.redact(endpointError.message))})` : '';
      throw this.badResponse(`no choices[0].message in the response${said}`, model);
    }
    const message = choice.message;
    const content = readContent(message.content);
    if (content === undefined) throw this.badResponse('choices[0].message.content is neither a string nor null', model);
    const toolCalls = this.readToolCalls(message.tool_calls, model);
    const finishReason = typeof choice.finish_reason === 'string' ? choice.finish_reason : toolCalls.length > 0 ? 'tool_calls' : 'stop';
    const completion: Completion = { message: { role: 'assistant', content, tool_calls: toolCalls }, finishReason };
    const usage = readUsage(parsed.usage);
    if (usage) completion.usage = usage;
    return completion;
  }

  private readToolCalls(raw: unknown, model: string): ToolCall[] {
    if (raw === undefined || raw === null) return [];
    if (!Array.isArray(raw)) throw this.badResponse('choices[0].message.tool_calls is not an array', model);
    return raw.map((call: unknown, index) => {
      const fn = isRecord(call) ? call.function : undefined;
      if (!isRecord(call) || !isRecord(fn) || typeof fn.name !== 'string' || fn.name === '') {
        throw this.badResponse(`tool_calls[${index}] has no function name`, model);
      }
      // Some servers send arguments as an object, or omit ids; the tool loop needs a string and an id.
      const args = typeof fn.arguments === 'string' ? fn.arguments : JSON.stringify(fn.arguments ?? {});
      const id = typeof call.id === 'string' && call.id !== '' ? call.id : `call_${index}_${Date.now().toString(36)}`;
      return { id, type: 'function', function: { name: fn.name, arguments: args } };
    });
  }

  private badResponse(detail: string, model: string): AppError {
    return new AppError('LLM_BAD_RESPONSE', `${detail} (from ${this.shownUrl}, model ${JSON.stringify(model)})`, { details: { model } });
  }

  private readEndpointError(text: string): EndpointError {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      const trimmed = text.trim();
      // An HTML error page says nothing a person can use in one line.
      return trimmed && !trimmed.startsWith('<') ? { message: this.truncate(this.redact(trimmed)) } : {};
    }
    const found = extractEndpointError(parsed);
    return { ...found, ...(found.message !== undefined && { message: this.truncate(this.redact(found.message)) }) };
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

function buildRequestBody(model: string, request: CompletionRequest): Record<string, unknown> {
  // OpenAI rejects an empty tool_calls array, which Completion.message carries for text answers.
  const messages = request.messages.map((message) =>
    message.role === 'assistant' && message.tool_calls?.length === 0
      ? { role: message.role, content: message.content }
      : message,
  );
  const body: Record<string, unknown> = { model, messages };
  if (request.tools && request.tools.length > 0) {
    body.tools = request.tools;
    body.tool_choice = 'auto';
  }
  return body;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** OpenAI `{error:{message,code}}`, Ollama `{error:"..."}`, FastAPI/vLLM `{detail}`, or a bare `{message}`. */
function extractEndpointError(parsed: unknown): EndpointError {
  if (!isRecord(parsed)) return {};
  const error = parsed.error;
  if (typeof error === 'string') return { message: error };
  const source = isRecord(error) ? error : parsed;
  const message = typeof source.message === 'string' ? source.message
    : typeof source.detail === 'string' ? source.detail
    : undefined;
  const code = typeof source.code === 'string' ? source.code
    : typeof source.type === 'string' ? source.type
    : undefined;
  return { ...(message !== undefined && { message }), ...(code !== undefined && { code }) };
}

const MODEL_MISSING_PATTERN = /\bmodel\b.*\b(does not exist|not found|not exist|unknown|not supported)\b|\b(unknown|invalid|no such|not a valid) model\b/i;

function saysModelIsMissing(error: EndpointError): boolean {
  return error.code === 'model_not_found' || (error.message !== undefined && MODEL_MISSING_PATTERN.test(error.message));
}

function isModelNotFound(status: number, error: EndpointError): boolean {
  return status === 404 || ((status === 400 || status === 422) && saysModelIsMissing(error));
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

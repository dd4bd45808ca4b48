import type { ErrorCode } from '../errors.js';

/** What an endpoint said about a failure, from whichever shape its error body has. */
export interface EndpointError {
  message?: string;
  /** `code` and `type` when they are strings (OpenAI puts billing codes in either). */
  codes: string[];
  /** A numeric `code` in the body (OpenRouter: the HTTP status of an error sent inside a 200). */
  numericCode?: number;
  /** A moderation verdict (OpenRouter 403 `metadata.reasons` / `flagged_input`). */
  isFlagged?: boolean;
}

export type LlmErrorCase =
  | 'unauthorized' | 'moderation' | 'billing' | 'rate_limited' | 'model_not_found' | 'tool_use_failed'
  | 'server_needs_jinja' | 'no_tool_parser' | 'context_too_long' | 'request_rejected' | 'server_error'
  | 'error_in_body' | 'finish_error' | 'no_first_byte' | 'stalled' | 'network' | 'bad_response';

export interface LlmErrorEntry {
  code: ErrorCode;
  /** `once`: one more try (a malformed call, a cold model); `yes`: up to the client's retries, with backoff. */
  retry: 'no' | 'once' | 'yes';
  /** What the person should do, after the error's own line (which carries the endpoint's words). */
  advice: string;
}

const TRY_AGAIN = 'then reply to this message to try again.';

/** Every documented failure of an OpenAI-compatible endpoint (../shared/notes/llm-providers.md), with its handling. */
export const LLM_ERRORS: Record<LlmErrorCase, LlmErrorEntry> = {
  unauthorized: { code: 'LLM_UNAUTHORIZED', retry: 'no', advice: `Fix LLM_API_KEY (in .env or the environment) and restart Chorus, ${TRY_AGAIN}` },
  moderation: { code: 'LLM_MODERATION', retry: 'no', advice: 'The endpoint\'s moderation refused this conversation (the key is fine): rephrase the request, or start a new conversation.' },
  billing: { code: 'LLM_BILLING', retry: 'no', advice: `Add credit or raise the spending limit of the account behind LLM_API_KEY, ${TRY_AGAIN}` },
  rate_limited: { code: 'LLM_UNAVAILABLE', retry: 'yes', advice: `The endpoint is rate-limiting this key: wait a minute, ${TRY_AGAIN}` },
  model_not_found: { code: 'LLM_MODEL_NOT_FOUND', retry: 'no', advice: `Fix LLM_MODEL, or "model" in the agent's agent.json, ${TRY_AGAIN}` },
  tool_use_failed: { code: 'LLM_REQUEST_REJECTED', retry: 'once', advice: 'The model wrote a malformed tool call, twice: reply to this message to try again, or use a model that calls tools more reliably.' },
  server_needs_jinja: { code: 'LLM_SERVER_CONFIG', retry: 'no', advice: `Restart llama-server with --jinja (tool calls need its Jinja chat templates), ${TRY_AGAIN}` },
  no_tool_parser: { code: 'LLM_SERVER_CONFIG', retry: 'no', advice: `Restart vLLM with --enable-auto-tool-choice --tool-call-parser <the parser of your model, e.g. llama3_json, hermes, mistral>, ${TRY_AGAIN}` },
  context_too_long: { code: 'LLM_REQUEST_REJECTED', retry: 'no', advice: 'The conversation is too long for the model\'s context: start a new conversation, or give the server a larger context (Ollama: OLLAMA_CONTEXT_LENGTH; llama.cpp: --ctx-size).' },
  request_rejected: { code: 'LLM_REQUEST_REJECTED', retry: 'no', advice: 'Reply to this message to try again; if the same error comes back, start a new conversation.' },
  server_error: { code: 'LLM_UNAVAILABLE', retry: 'yes', advice: `Check that LLM_BASE_URL is reachable and its server healthy, ${TRY_AGAIN}` },
  error_in_body: { code: 'LLM_UNAVAILABLE', retry: 'once', advice: `The endpoint failed while generating the answer: ${TRY_AGAIN}` },
  finish_error: { code: 'LLM_GENERATION_FAILED', retry: 'once', advice: `The model's answer ended in an error, twice: ${TRY_AGAIN}` },
  no_first_byte: { code: 'LLM_TIMEOUT', retry: 'once', advice: `The model may be loading, queued or slow: raise LLM_TIMEOUT_MS if this repeats, ${TRY_AGAIN}` },
  stalled: { code: 'LLM_TIMEOUT', retry: 'no', advice: `The answer stopped arriving halfway: raise LLM_TIMEOUT_MS if this repeats, ${TRY_AGAIN}` },
  network: { code: 'LLM_UNAVAILABLE', retry: 'yes', advice: `Check that LLM_BASE_URL is reachable, ${TRY_AGAIN}` },
  bad_response: { code: 'LLM_BAD_RESPONSE', retry: 'no', advice: `Check that LLM_BASE_URL points at an OpenAI-compatible /v1 API, ${TRY_AGAIN}` },
};

/** OpenAI's billing codes (in `code` or `type`), besides HTTP 402 which means the same everywhere. */
const BILLING_CODES = new Set([
  'insufficient_quota', 'credit_balance_exhausted', 'organization_spend_limit_exceeded', 'project_spend_limit_exceeded',
  'organization_usage_limit_exceeded', 'billing_hard_limit_reached', 'billing_not_active',
]);
/** Gemini answers a bad key with 400 INVALID_ARGUMENT "API key not valid". */
const BAD_KEY = /\bAPI[_ ]key (not valid|is invalid)|API_KEY_INVALID/i;
const MODERATION = /moderation|flagged|guardrail|content policy|safety (system|filter)/i;
const MODEL_MISSING = /\bmodel\b.*\b(does not exist|not found|not exist|unknown|not supported)\b|\b(unknown|invalid|no such|not a valid) model\b/i;
const NEEDS_JINJA = /--jinja/;
const NO_TOOL_PARSER = /--enable-auto-tool-choice|--tool-call-parser/;
const TOO_LONG = /context[_ ](length|size|window)|maximum context|too many tokens|prompt is too long|exceeds the available context|request too large/i;

export function saysModelIsMissing(error: EndpointError): boolean {
  return error.codes.includes('model_not_found') || (error.message !== undefined && MODEL_MISSING.test(error.message));
}

/** The case of an HTTP error (or of an error sent inside a 200, with its own code as the status). */
export function classifyHttpError(status: number, error: EndpointError): LlmErrorCase {
  const said = error.message ?? '';
  if (status === 401 || (status === 400 && BAD_KEY.test(said))) return 'unauthorized';
  if (status === 402 || error.codes.some((code) => BILLING_CODES.has(code))) return 'billing';
  if (status === 403) return error.isFlagged || MODERATION.test(said) ? 'moderation' : 'unauthorized';
  if (status === 404 || ((status === 400 || status === 422) && saysModelIsMissing(error))) return 'model_not_found';
  if (error.codes.includes('tool_use_failed')) return 'tool_use_failed';
  if (NEEDS_JINJA.test(said)) return 'server_needs_jinja';
  if (NO_TOOL_PARSER.test(said)) return 'no_tool_parser';
  if (status === 413 || error.codes.includes('context_length_exceeded') || TOO_LONG.test(said)) return 'context_too_long';
  if (status === 429) return 'rate_limited';
  if (status === 408 || status >= 500) return 'server_error';
  return 'request_rejected';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * OpenAI `{error:{message,code,type}}`, Gemini `[{error:{code,message,status}}]`, OpenRouter `{error:{code,message,
 * metadata:{raw,provider_name,reasons}}}`, Ollama/LM Studio `{error:"..."}`, Mistral `{object:"error",message,code}`,
 * FastAPI `{detail}`, or a bare `{message}`.
 */
export function extractEndpointError(parsed: unknown): EndpointError {
  if (Array.isArray(parsed)) return extractEndpointError(parsed[0]);
  if (!isRecord(parsed)) return { codes: [] };
  const error = parsed.error;
  if (typeof error === 'string') return { message: error, codes: [] };
  const source = isRecord(error) ? error : parsed;
  let message = typeof source.message === 'string' ? source.message
    : typeof source.detail === 'string' ? source.detail
    : typeof source.status === 'string' && typeof source.code === 'number' ? source.status
    : undefined;
  const codes = [source.code, source.type, source.status].filter((c): c is string => typeof c === 'string' && c !== '');
  const result: EndpointError = { codes };
  if (typeof source.code === 'number') result.numericCode = source.code;
  const metadata = isRecord(source.metadata) ? source.metadata : undefined;
  if (metadata) {
    // OpenRouter: "Provider returned error" says nothing; the upstream's own words are in metadata.raw.
    const raw = readRaw(metadata.raw);
    const provider = typeof metadata.provider_name === 'string' ? metadata.provider_name : undefined;
    if (raw) {
      const inner = parseMaybeJson(raw);
      const innerError = inner === undefined ? undefined : extractEndpointError(inner);
      const upstream = innerError?.message ?? raw;
      message = `${message ?? 'Provider returned error'}${provider ? ` (${provider})` : ''}: ${upstream}`;
      if (innerError) result.codes.push(...innerError.codes);
    }
    if (Array.isArray(metadata.reasons) && metadata.reasons.length) {
      result.isFlagged = true;
      message = `${message ?? 'flagged'} (${metadata.reasons.map(String).join(', ')})`;
    } else if (metadata.flagged_input !== undefined) {
      result.isFlagged = true;
    }
  }
  if (message !== undefined) result.message = message;
  return result;
}

function readRaw(raw: unknown): string | undefined {
  if (typeof raw === 'string' && raw.trim()) return raw.trim();
  if (raw !== undefined && raw !== null && typeof raw === 'object') return JSON.stringify(raw);
  return undefined;
}

function parseMaybeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// One table (LLM_ERRORS) maps each documented failure to a code, a retry policy and advice; every entry is exercised here
// with the endpoint's own error, through the real LlmClient, and the line a person sees carries the endpoint's words.
import { afterEach, describe, expect, it } from 'vitest';
import { describeTurnError } from '../../src/agents/branch-runner.js';
import { LlmClient } from '../../src/agents/llm-client.js';
import { classifyHttpError, extractEndpointError, LLM_ERRORS, type LlmErrorCase } from '../../src/agents/llm-errors.js';
import { AppError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { FakeLlmServer, type FakeLlmResponse } from '../support/fake-llm-server.js';
import { groq } from '../support/llm-endpoints/groq.js';
import { llamaCppEndpoint } from '../support/llm-endpoints/llama-cpp.js';
import { deepseek } from '../support/llm-endpoints/deepseek.js';
import { geminiError } from '../support/llm-endpoints/gemini.js';
import { openRouterError } from '../support/llm-endpoints/openrouter.js';
import { vllmEndpoint } from '../support/llm-endpoints/vllm.js';
import type { LlmEndpoint } from '../support/llm-endpoints/index.js';

const MAX_RETRIES = 2;
const servers: FakeLlmServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

interface Sample {
  name: string;
  /** What the endpoint answers, every time. */
  reply?: FakeLlmResponse;
  /** An endpoint that refuses the request by itself (a server started without a flag). */
  endpoint?: LlmEndpoint;
  /** The endpoint's words that the line must carry. */
  says: RegExp;
  /** How many requests the case is worth: 1 (no retry), 2 (once), MAX_RETRIES + 1 (with backoff). */
  requests: number;
  timeoutMs?: number;
  isServerClosed?: boolean;
}

const openAi = (status: number, message: string, code: string | null = null, type = 'invalid_request_error'): FakeLlmResponse => ({
  status, body: { error: { message, type, param: null, code } },
});

const SAMPLES: Record<LlmErrorCase, Sample[]> = {
  unauthorized: [
    { name: 'OpenAI 401', reply: openAi(401, 'Incorrect API key provided: sk-abc***xyz.', 'invalid_api_key'), says: /Incorrect API key provided/, requests: 1 },
    { name: 'Gemini 400 for a bad key', reply: geminiError(400, 'API key not valid. Please pass a valid API key.'), says: /API key not valid/, requests: 1 },
    { name: 'OpenRouter 403 without a moderation verdict', reply: openRouterError(403, 'Key is disabled'), says: /Key is disabled/, requests: 1 },
  ],
  moderation: [{
    name: 'OpenRouter 403 guardrail',
    reply: openRouterError(403, 'Input was flagged by moderation', { reasons: ['violence'], flagged_input: 'kill the process...', provider_name: 'OpenAI', model_slug: 'openai/gpt-4o' }),
    says: /Input was flagged by moderation \(violence\)/, requests: 1,
  }],
  billing: [
    { name: 'OpenAI insufficient_quota', reply: openAi(429, 'You exceeded your current quota, please check your plan and billing details.', 'insufficient_quota', 'insufficient_quota'), says: /You exceeded your current quota/, requests: 1 },
    { name: 'OpenAI project_spend_limit_exceeded', reply: openAi(429, 'You have exceeded your project spend limit.', 'project_spend_limit_exceeded', 'insufficient_quota'), says: /project spend limit/, requests: 1 },
    { name: 'OpenAI credit_balance_exhausted', reply: openAi(429, 'Your credit balance is too low.', 'credit_balance_exhausted', 'requests'), says: /credit balance is too low/, requests: 1 },
    { name: 'OpenRouter 402', reply: openRouterError(402, 'Insufficient credits. Add more using https://openrouter.ai/settings/credits'), says: /Insufficient credits/, requests: 1 },
    { name: 'DeepSeek 402', reply: deepseek.failure, says: /Insufficient Balance/, requests: 1 },
  ],
  rate_limited: [{
    name: 'Groq 429', reply: { ...openAi(429, 'Rate limit reached for model `openai/gpt-oss-120b` on tokens per minute (TPM).', 'rate_limit_exceeded', 'tokens'), headers: { 'retry-after': '0' } },
    says: /Rate limit reached for model/, requests: MAX_RETRIES + 1,
  }],
  model_not_found: [
    { name: 'vLLM 404', reply: openAi(404, 'The model `llama-4` does not exist.', '404', 'NotFoundError'), says: /The model `llama-4` does not exist/, requests: 1 },
    { name: 'Ollama 404', reply: openAi(404, 'model "qwen3:8b" not found, try pulling it first', null, 'api_error'), says: /try pulling it first/, requests: 1 },
  ],
  tool_use_failed: [{ name: 'Groq tool_use_failed', reply: groq.failure, says: /Failed to call a function/, requests: 2 }],
  server_needs_jinja: [{ name: 'llama.cpp without --jinja', endpoint: llamaCppEndpoint(false), says: /tools param requires --jinja flag/, requests: 1 }],
  no_tool_parser: [{ name: 'vLLM without a tool-call parser', endpoint: vllmEndpoint(false), says: /"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser/, requests: 1 }],
  context_too_long: [
    { name: 'OpenAI context_length_exceeded', reply: openAi(400, "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.", 'context_length_exceeded'), says: /maximum context length is 128000/, requests: 1 },
    { name: 'Groq 413', reply: openAi(413, 'Request too large for model `openai/gpt-oss-120b` on tokens per minute (TPM): Limit 8000, Requested 9000.', 'rate_limit_exceeded', 'tokens'), says: /Request too large/, requests: 1 },
    { name: 'llama.cpp context size', reply: llamaCppEndpoint().failure, says: /exceeds the available context size/, requests: 1 },
  ],
  request_rejected: [
    { name: 'Gemini array body', reply: geminiError(400, 'Request contains an invalid argument.'), says: /Request contains an invalid argument/, requests: 1 },
    {
      name: 'OpenRouter upstream reason in metadata.raw',
      reply: openRouterError(400, 'Provider returned error', { raw: JSON.stringify([{ error: { code: 400, message: 'Function call is missing a thought_signature in functionCall parts.', status: 'INVALID_ARGUMENT' } }]), provider_name: 'Google AI Studio' }),
      says: /Provider returned error \(Google AI Studio\): Function call is missing a thought_signature/, requests: 1,
    },
    { name: 'Mistral message order', reply: { status: 400, body: { object: 'error', message: "Unexpected role 'user' after role 'tool'", type: 'invalid_request_message_order', param: null, code: '3230' } }, says: /Unexpected role 'user' after role 'tool'/, requests: 1 },
    { name: 'LM Studio string error', reply: { status: 400, body: { error: "Invalid 'messages' in payload" } }, says: /Invalid 'messages' in payload/, requests: 1 },
  ],
  server_error: [
    { name: 'DeepSeek 503', reply: openAi(503, 'Server overloaded, please try again later.', null, 'server_error'), says: /Server overloaded/, requests: MAX_RETRIES + 1 },
    { name: 'OpenRouter 502 inside a 200', reply: { status: 200, body: { error: { code: 502, message: 'Provider disconnected' } } }, says: /error 502 inside an HTTP 200 answer: Provider disconnected/, requests: MAX_RETRIES + 1 },
  ],
  error_in_body: [{ name: 'an error body in a 200 without a code', reply: { status: 200, body: { error: { message: 'Stream ended unexpectedly' } } }, says: /Stream ended unexpectedly/, requests: 2 }],
  finish_error: [{
    name: 'OpenRouter finish_reason error',
    reply: { status: 200, body: { choices: [{ index: 0, finish_reason: 'error', native_finish_reason: 'MALFORMED_FUNCTION_CALL', message: { role: 'assistant', content: null } }] } },
    says: /finish_reason "error" \(MALFORMED_FUNCTION_CALL\)/, requests: 2,
  }],
  no_first_byte: [{ name: 'a model loading or queued past the timeout', reply: { hang: true }, says: /no answer from .* within 200 ms/, requests: 2, timeoutMs: 200 }],
  stalled: [{ name: 'a body that stops halfway', reply: { status: 200, trickle: { chunks: ['{"choices": ['], everyMs: 0, thenHang: true } }, says: /stopped arriving: nothing for 200 ms/, requests: 1, timeoutMs: 200 }],
  network: [{ name: 'connection refused', isServerClosed: true, says: /ECONNREFUSED/, requests: 0 }],
  bad_response: [{ name: 'a body that is not JSON', reply: { status: 200, body: '<html>proxy</html>' }, says: /the body is not JSON/, requests: 1 }],
};

const tools = [{ type: 'function' as const, function: { name: 'list_processes', description: 'List', parameters: { type: 'object', properties: {} } } }];

describe('the LLM error table', () => {
  it('has samples for every entry', () => {
    expect(Object.keys(SAMPLES).sort()).toEqual(Object.keys(LLM_ERRORS).sort());
  });

  const cases = Object.entries(SAMPLES).flatMap(([errorCase, samples]) => samples.map((sample) => ({ errorCase: errorCase as LlmErrorCase, sample, label: `${errorCase}: ${sample.name}` })));
  it.for(cases)('$label', async ({ errorCase, sample }) => {
    const server = sample.endpoint ? await sample.endpoint.start() : await FakeLlmServer.start();
    servers.push(server);
    if (sample.reply) server.setDefault(() => sample.reply!);
    if (sample.isServerClosed) await server.close();
    const client = new LlmClient({
      baseUrl: server.baseUrl, model: sample.endpoint?.model ?? 'some-model', apiKey: 'sk-secret-1', log: silentLogger(),
      maxRetries: MAX_RETRIES, retryBaseMs: 1, ...(sample.timeoutMs && { timeoutMs: sample.timeoutMs }),
    });

    const error = await client.complete({ messages: [{ role: 'user', content: 'hi' }], tools }).then(() => undefined, (e: unknown) => e);

    expect(error).toBeInstanceOf(AppError);
    const appError = error as AppError;
    expect(appError.details?.case, appError.message).toBe(errorCase);
    expect(appError.code).toBe(LLM_ERRORS[errorCase].code);
    expect(server.requests).toHaveLength(sample.requests);
    const line = describeTurnError(appError);
    expect(line).toMatch(sample.says);
    expect(line.endsWith(LLM_ERRORS[errorCase].advice), line).toBe(true);
    expect(line).not.toContain('sk-secret-1');
  });

  it('every entry has advice that says what to do, and no two cases of one code share it', () => {
    for (const [errorCase, entry] of Object.entries(LLM_ERRORS)) {
      expect(entry.advice, errorCase).toMatch(/^[A-Z].*\.$/);
    }
    expect(new Set(Object.values(LLM_ERRORS).map((e) => e.advice)).size).toBe(Object.keys(LLM_ERRORS).length);
  });

  it('reads Gemini array bodies and OpenRouter metadata', () => {
    expect(extractEndpointError([{ error: { code: 400, message: 'Bad', status: 'INVALID_ARGUMENT' } }])).toEqual({ message: 'Bad', codes: ['INVALID_ARGUMENT'], numericCode: 400 });
    const raw = { error: { code: 400, message: 'Provider returned error', metadata: { raw: 'upstream said no', provider_name: 'X' } } };
    expect(extractEndpointError(raw).message).toBe('Provider returned error (X): upstream said no');
    expect(classifyHttpError(403, extractEndpointError({ error: { code: 403, message: 'nope', metadata: { reasons: ['hate'] } } }))).toBe('moderation');
  });
});

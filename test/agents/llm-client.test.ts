import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { LlmClient, parseRetryAfterMs, type ChatMessage, type LlmClientOptions, type ToolDefinition } from '../../src/agents/llm-client.js';
import { AppError, type ErrorCode } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import { waitFor } from '../support/wait-for.js';
import { FakeLlmServer, type FakeLlmServerOptions } from '../support/fake-llm-server.js';

const API_KEY = 'sk-test-do-not-leak-4f1c2a9e';
const MODEL = 'fake-model-1';

const servers: FakeLlmServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function startServer(options: FakeLlmServerOptions = {}): Promise<FakeLlmServer> {
  const server = await FakeLlmServer.start(options);
  servers.push(server);
  return server;
}

/** A client against `server` whose log lines are captured as parsed JSON. */
function makeClient(server: FakeLlmServer, options: Partial<LlmClientOptions> = {}) {
  const logLines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      logLines.push(String(chunk));
      callback();
    },
  });
  const client = new LlmClient({
    baseUrl: server.baseUrl,
    apiKey: API_KEY,
    model: MODEL,
    retryBaseMs: 5,
    log: createLogger({ level: 'debug', destination }),
    ...options,
  });
  const logs = () => logLines.map((line) => JSON.parse(line) as Record<string, unknown>);
  return { client, logs, logText: () => logLines.join('') };
}

async function expectAppError(promise: Promise<unknown>, code: ErrorCode): Promise<AppError> {
  const error = await promise.then(
    () => { throw new Error(`expected ${code}, but the call succeeded`); },
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(AppError);
  expect((error as AppError).code, (error as AppError).message).toBe(code);
  expect((error as AppError).message).not.toContain(API_KEY);
  return error as AppError;
}

const userAsks: ChatMessage[] = [
  { role: 'system', content: 'You are a test.' },
  { role: 'user', content: 'Say hello.' },
];

const listProcessesTool: ToolDefinition = {
  type: 'function',
  function: {
    name: 'list_processes',
    description: 'List the processes of this agent',
    parameters: { type: 'object', properties: { filter: { type: 'string', enum: ['all', 'running'] } }, additionalProperties: false },
  },
};

describe('LlmClient', () => {
  it('returns a text answer and sends model, messages and the key', async () => {
    const server = await startServer({ expectedKey: API_KEY });
    server.enqueue({ content: 'Hello there.' });
    const { client } = makeClient(server);

    const completion = await client.complete({ messages: userAsks });

    expect(completion.message).toEqual({
      role: 'assistant', content: 'Hello there.', tool_calls: [], endpoint: `${server.baseUrl}/chat/completions ${MODEL}`,
    });
    expect(completion.finishReason).toBe('stop');
    expect(completion.usage?.totalTokens).toBeGreaterThan(0);
    const [request] = server.requests;
    expect(request?.path).toBe('/v1/chat/completions');
    expect(request?.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(request?.body).toEqual({ model: MODEL, messages: userAsks });
  });

  it('tolerates a trailing slash, omits Authorization without a key and honours a per-request model', async () => {
    const server = await startServer();
    server.enqueue({ content: 'ok' });
    const { client } = makeClient(server, { baseUrl: `${server.baseUrl}/`, apiKey: undefined });

    await client.complete({ messages: userAsks, model: 'other-model' });

    expect(server.requests[0]?.path).toBe('/v1/chat/completions');
    expect(server.requests[0]?.headers.authorization).toBeUndefined();
    expect(server.requests[0]?.body.model).toBe('other-model');
  });

  it('parses tool calls and sends tools with tool_choice auto', async () => {
    const server = await startServer();
    server.enqueue({
      toolCalls: [
        { name: 'list_processes', arguments: { filter: 'running' }, id: 'call_a' },
        { name: 'get_process_status', arguments: '{"pid":42}' },
      ],
    });
    const { client } = makeClient(server);

    const completion = await client.complete({ messages: userAsks, tools: [listProcessesTool] });

    expect(completion.finishReason).toBe('tool_calls');
    expect(completion.message.content).toBeNull();
    expect(completion.message.tool_calls).toHaveLength(2);
    expect(completion.message.tool_calls[0]).toEqual({
      id: 'call_a', type: 'function', function: { name: 'list_processes', arguments: '{"filter":"running"}' },
    });
    expect(completion.message.tool_calls[1]?.function).toEqual({ name: 'get_process_status', arguments: '{"pid":42}' });
    expect(completion.message.tool_calls[1]?.id).toMatch(/\S/);
    expect(server.requests[0]?.body.tools).toEqual([listProcessesTool]);
    expect(server.requests[0]?.body.tool_choice).toBe('auto');
  });

  it('sends tool results back and drops an empty tool_calls array from history', async () => {
    const server = await startServer();
    server.enqueue({ content: 'first' }, { content: 'done' });
    const { client } = makeClient(server);

    const first = await client.complete({ messages: userAsks });
    const history: ChatMessage[] = [
      ...userAsks,
      first.message,
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'list_processes', arguments: '{}' } }], endpoint: client.endpointOf() },
      { role: 'tool', tool_call_id: 'call_1', content: '[]' },
    ];
    await client.complete({ messages: history });

    const sent = server.requests[1]?.body;
    expect(sent.messages[2]).toEqual({ role: 'assistant', content: 'first' });
    expect(sent.messages[3].tool_calls[0].id).toBe('call_1');
    expect(sent.messages[4]).toEqual({ role: 'tool', tool_call_id: 'call_1', content: '[]' });
    expect(sent).not.toHaveProperty('tools');
    expect(sent).not.toHaveProperty('tool_choice');
  });

  it('keeps every field the endpoint put on the message and its calls, and sends them back to that endpoint only', async () => {
    const server = await startServer();
    const signature = 'c2lnbmF0dXJl';
    server.enqueue(() => ({
      status: 200,
      body: {
        choices: [{
          index: 0, finish_reason: 'tool_calls',
          message: {
            role: 'assistant', content: null, reasoning_content: 'I should list them.', reasoning_details: [{ type: 'reasoning.encrypted', data: 'xyz' }],
            tool_calls: [
              { id: 'function-call-1', type: 'function', function: { name: 'list_processes', arguments: '{}' }, extra_content: { google: { thought_signature: signature } } },
              { id: 'function-call-2', type: 'function', function: { name: 'list_processes', arguments: '{"filter":"all"}' } },
            ],
          },
        }],
      },
    }));
    server.setDefault(() => ({ content: 'ok' }));
    const { client } = makeClient(server);

    const { message } = await client.complete({ messages: userAsks, tools: [listProcessesTool] });
    expect(message.extra).toEqual({ reasoning_content: 'I should list them.', reasoning_details: [{ type: 'reasoning.encrypted', data: 'xyz' }] });
    expect(message.tool_calls[0]!.extra).toEqual({ extra_content: { google: { thought_signature: signature } } });
    expect(message.tool_calls[1]!.extra).toBeUndefined();
    const history: ChatMessage[] = [
      ...userAsks, message,
      { role: 'tool', tool_call_id: 'function-call-1', content: '[]' },
      { role: 'tool', tool_call_id: 'function-call-2', content: '[1]' },
    ];

    await client.complete({ messages: history });
    expect(server.requests[1]!.body.messages.slice(2)).toEqual([
      {
        role: 'assistant', content: null, reasoning_content: 'I should list them.', reasoning_details: [{ type: 'reasoning.encrypted', data: 'xyz' }],
        tool_calls: [
          { id: 'function-call-1', type: 'function', function: { name: 'list_processes', arguments: '{}' }, extra_content: { google: { thought_signature: signature } } },
          { id: 'function-call-2', type: 'function', function: { name: 'list_processes', arguments: '{"filter":"all"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'function-call-1', content: '[]' },
      { role: 'tool', tool_call_id: 'function-call-2', content: '[1]' },
    ]);

    // Another model is another endpoint: portable fields only, one call per message, ids of Mistral's form.
    await client.complete({ messages: history, model: 'other-model' });
    const portable = server.requests[2]!.body.messages.slice(2);
    expect(portable).toHaveLength(4);
    const [a, r1, b, r2] = portable;
    expect(Object.keys(a).sort()).toEqual(['content', 'role', 'tool_calls']);
    expect(a.content).toBe('');
    expect(a.tool_calls).toEqual([{ id: expect.stringMatching(/^[a-zA-Z0-9]{9}$/), type: 'function', function: { name: 'list_processes', arguments: '{}' } }]);
    expect(r1).toEqual({ role: 'tool', tool_call_id: a.tool_calls[0].id, content: '[]' });
    expect(b.tool_calls[0].id).toMatch(/^[a-zA-Z0-9]{9}$/);
    expect(b.tool_calls[0].id).not.toBe(a.tool_calls[0].id);
    expect(r2).toEqual({ role: 'tool', tool_call_id: b.tool_calls[0].id, content: '[1]' });
  });

  it('gives a call without an id one of the portable form', async () => {
    const server = await startServer();
    server.enqueue({ toolCalls: [{ name: 'list_processes', arguments: {}, id: '' }] });
    const { client } = makeClient(server);

    const { message } = await client.complete({ messages: userAsks });

    expect(message.tool_calls[0]!.id).toMatch(/^[a-zA-Z0-9]{9}$/);
  });

  it('waits for Retry-After on 429, logs the retry, then succeeds', async () => {
    const server = await startServer();
    server.enqueue(
      { status: 429, headers: { 'Retry-After': '1' }, body: { error: { message: 'Rate limit reached', type: 'requests' } } },
      { content: 'after the wait' },
    );
    const { client, logs } = makeClient(server, { retryBaseMs: 10_000, maxRetryDelayMs: 60_000 });

    const completion = await client.complete({ messages: userAsks });

    expect(completion.message.content).toBe('after the wait');
    const [first, second] = server.requests;
    expect(second!.receivedAt - first!.receivedAt).toBeGreaterThanOrEqual(950);
    expect(second!.receivedAt - first!.receivedAt).toBeLessThan(5_000);
    expect(logs()).toContainEqual(expect.objectContaining({ msg: 'LLM request retried', status: 429, attempt: 1, delayMs: 1000 }));
  });

  it('caps Retry-After at maxRetryDelayMs', async () => {
    const server = await startServer();
    server.enqueue({ status: 503, headers: { 'Retry-After': '3600' } }, { content: 'ok' });
    const { client, logs } = makeClient(server, { maxRetryDelayMs: 50 });

    await client.complete({ messages: userAsks });

    expect(logs()).toContainEqual(expect.objectContaining({ status: 503, delayMs: 50 }));
  });

  it('retries a 500 and succeeds', async () => {
    const server = await startServer();
    server.enqueue({ status: 500, body: { error: { message: 'upstream hiccup', type: 'server_error' } } }, { content: 'recovered' });
    const { client } = makeClient(server);

    const completion = await client.complete({ messages: userAsks });

    expect(completion.message.content).toBe('recovered');
    expect(server.requests).toHaveLength(2);
  });

  it('gives up with LLM_UNAVAILABLE naming the last status once retries are exhausted', async () => {
    const server = await startServer();
    server.setDefault(() => ({ status: 502, body: { error: { message: 'Bad gateway from the upstream model host' } } }));
    const { client, logs } = makeClient(server, { maxRetries: 2 });

    const error = await expectAppError(client.complete({ messages: userAsks }), 'LLM_UNAVAILABLE');

    expect(server.requests).toHaveLength(3);
    expect(error.message).toContain('HTTP 502');
    expect(error.message).toContain('Bad gateway from the upstream model host');
    expect(error.details).toMatchObject({ status: 502, attempts: 3 });
    expect(logs().filter((line) => line.msg === 'LLM request retried').map((line) => line.attempt)).toEqual([1, 2]);
  });

  it('fails loudly when the fake server script runs out', async () => {
    const server = await startServer();
    const { client } = makeClient(server, { maxRetries: 0 });

    const error = await expectAppError(client.complete({ messages: userAsks }), 'LLM_UNAVAILABLE');

    expect(error.message).toContain('script ran out');
  });

  it('retries network errors and then reports them', async () => {
    const server = await startServer();
    const baseUrl = server.baseUrl;
    await server.close();
    const { client } = makeClient(server, { baseUrl, maxRetries: 1 });

    const error = await expectAppError(client.complete({ messages: userAsks }), 'LLM_UNAVAILABLE');

    expect(error.message).toMatch(/ECONNREFUSED/);
  });

  it('retries a timeout before the first byte once, then fails with LLM_TIMEOUT naming the timeout', async () => {
    const server = await startServer();
    server.enqueue({ hang: true }, { hang: true });
    const { client } = makeClient(server, { timeoutMs: 300 });

    const error = await expectAppError(client.complete({ messages: userAsks }), 'LLM_TIMEOUT');

    expect(error.message).toContain('300 ms');
    expect(error.message).toContain('(twice)');
    expect(server.requests).toHaveLength(2);
  });

  it('answers after one timeout before the first byte (a model loading inside the request)', async () => {
    const server = await startServer();
    server.enqueue({ hang: true }, { content: 'loaded' });
    const { client } = makeClient(server, { timeoutMs: 300 });

    expect((await client.complete({ messages: userAsks })).message.content).toBe('loaded');
    expect(server.requests).toHaveLength(2);
  });

  it('waits as long as bytes keep coming (DeepSeek sends blank lines while a request is queued), but not for a stalled body', async () => {
    const server = await startServer();
    const body = JSON.stringify({ choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'after the queue' } }] });
    server.enqueue({ status: 200, trickle: { chunks: ['\n', '\n', '\n', '\n', body], everyMs: 150 } });
    const { client } = makeClient(server, { timeoutMs: 400 });
    const startedAt = Date.now();

    expect((await client.complete({ messages: userAsks })).message.content).toBe('after the queue');
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(600);

    server.enqueue({ status: 200, trickle: { chunks: ['\n'], everyMs: 0, thenHang: true } });
    const error = await expectAppError(client.complete({ messages: userAsks }), 'LLM_TIMEOUT');
    expect(error.message).toContain('stopped arriving');
    expect(server.requests).toHaveLength(2);
  });

  it('maps 401 to LLM_UNAUTHORIZED without retrying and never shows the key', async () => {
    const server = await startServer({ expectedKey: 'sk-the-right-key' });
    const { client, logText } = makeClient(server);

    const error = await expectAppError(client.complete({ messages: userAsks }), 'LLM_UNAUTHORIZED');

    expect(error.message).toContain('check LLM_API_KEY');
    expect(error.message).toContain('Incorrect API key provided');
    expect(server.requests).toHaveLength(1);
    expect(logText()).not.toContain(API_KEY);
  });

  it('redacts the key when the endpoint echoes it back', async () => {
    const server = await startServer();
    server.enqueue((request) => ({
      status: 403,
      body: { error: { message: `Key ${String(request.headers.authorization)} is not allowed here` } },
    }));
    const { client } = makeClient(server);

    const error = await expectAppError(client.complete({ messages: userAsks }), 'LLM_UNAUTHORIZED');

    expect(error.message).toContain('[redacted]');
  });

  it('maps an unknown model to LLM_MODEL_NOT_FOUND naming the model', async () => {
    const server = await startServer({ unknownModels: ['gpt-imaginary'] });
    const { client } = makeClient(server, { model: 'gpt-imaginary' });

    const error = await expectAppError(client.complete({ messages: userAsks }), 'LLM_MODEL_NOT_FOUND');

    expect(error.message).toContain('"gpt-imaginary"');
    expect(error.message).toContain('does not exist');
    expect(server.requests).toHaveLength(1);
  });

  it('recognises a 400 whose body says the model does not exist', async () => {
    const server = await startServer();
    server.enqueue({ status: 400, body: { error: { message: 'foo/bar is not a valid model ID', code: 400 } } });
    const { client } = makeClient(server, { model: 'foo/bar' });

    await expectAppError(client.complete({ messages: userAsks }), 'LLM_MODEL_NOT_FOUND');
  });

  it('reports other 4xx as LLM_REQUEST_REJECTED with the endpoint message, truncated', async () => {
    const server = await startServer();
    const longMessage = `This model's maximum context length is 8192 tokens. ${'x'.repeat(1_000)}`;
    server.enqueue({ status: 400, body: { error: { message: longMessage, code: 'context_length_exceeded' } } });
    const { client } = makeClient(server);

    const error = await expectAppError(client.complete({ messages: userAsks }), 'LLM_REQUEST_REJECTED');

    expect(error.message).toContain('maximum context length');
    expect(error.message.length).toBeLessThan(500);
    expect(server.requests).toHaveLength(1);
  });

  it('maps a malformed JSON body to LLM_BAD_RESPONSE', async () => {
    const server = await startServer();
    server.enqueue({ status: 200, body: '{"id": "chatcmpl-1", "choices": [' });
    const { client } = makeClient(server);

    const error = await expectAppError(client.complete({ messages: userAsks }), 'LLM_BAD_RESPONSE');

    expect(error.message).toContain('not JSON');
    expect(server.requests).toHaveLength(1);
  });

  it('maps a body without choices to LLM_BAD_RESPONSE', async () => {
    const server = await startServer();
    server.enqueue({ status: 200, body: { id: 'chatcmpl-1', object: 'chat.completion', choices: [] } });
    const { client } = makeClient(server);

    const error = await expectAppError(client.complete({ messages: userAsks }), 'LLM_BAD_RESPONSE');

    expect(error.message).toContain('choices');
  });

  it('stops at once when the caller aborts a request in flight', async () => {
    const server = await startServer();
    server.enqueue({ hang: true });
    const { client } = makeClient(server, { timeoutMs: 20_000 });
    const controller = new AbortController();

    const pending = client.complete({ messages: userAsks, signal: controller.signal });
    await server.waitForRequests(1);
    const abortedAt = Date.now();
    controller.abort();

    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    expect(Date.now() - abortedAt).toBeLessThan(1_000);
    expect(server.requests).toHaveLength(1);
  });

  it('stops at once when the caller aborts during a retry wait', async () => {
    const server = await startServer();
    server.enqueue({ status: 429, headers: { 'Retry-After': '20' } }, { content: 'never asked for' });
    const { client, logs } = makeClient(server);
    const controller = new AbortController();
    const reason = new Error('the branch was cancelled');

    const pending = client.complete({ messages: userAsks, signal: controller.signal });
    pending.catch(() => {});
    await waitFor(() => logs().some((line) => line.msg === 'LLM request retried' && line.delayMs === 20_000), { what: 'the retry wait' });
    controller.abort(reason);

    await expect(pending).rejects.toBe(reason);
    expect(server.requests).toHaveLength(1);
  });

  it('does not send a request when the signal is already aborted', async () => {
    const server = await startServer();
    const { client } = makeClient(server);

    await expect(client.complete({ messages: userAsks, signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    expect(server.requests).toHaveLength(0);
  });
});

describe('parseRetryAfterMs', () => {
  it('reads seconds, HTTP dates and retry-after-ms', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfterMs(new Headers({ 'retry-after': '2' }), now)).toBe(2_000);
    expect(parseRetryAfterMs(new Headers({ 'retry-after': 'Wed, 01 Jan 2025 00:00:05 GMT' }), now)).toBe(5_000);
    expect(parseRetryAfterMs(new Headers({ 'retry-after': 'Tue, 31 Dec 2024 00:00:00 GMT' }), now)).toBe(0);
    expect(parseRetryAfterMs(new Headers({ 'retry-after-ms': '250', 'retry-after': '9' }), now)).toBe(250);
    expect(parseRetryAfterMs(new Headers({ 'retry-after': 'soon' }), now)).toBeUndefined();
    expect(parseRetryAfterMs(new Headers(), now)).toBeUndefined();
  });
});

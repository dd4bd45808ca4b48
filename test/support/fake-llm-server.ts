import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** One request as the fake server received it. */
export interface FakeLlmRequest {
  /** 1 for the first request this server received. */
  index: number;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body, or the raw text when it is not JSON. */
  body: any;
  rawBody: string;
  /** Date.now() when the request arrived. */
  receivedAt: number;
}

export interface FakeAssistantReply {
  content?: string | null;
  toolCalls?: Array<{ name: string; arguments: string | object; id?: string }>;
  finishReason?: string;
}

/** A raw HTTP reply: a string body is sent as is, anything else as JSON. */
export interface FakeHttpReply {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Sends the body in these pieces, one every `everyMs` (DeepSeek's blank lines while queued); `thenHang` never ends it. */
  trickle?: { chunks: string[]; everyMs: number; thenHang?: boolean };
}

export interface FakeHang {
  hang: true;
}

export type FakeLlmResponse = FakeAssistantReply | FakeHttpReply | FakeHang;
export type FakeLlmScript = FakeLlmResponse | ((request: FakeLlmRequest) => FakeLlmResponse | Promise<FakeLlmResponse>);

export interface FakeLlmServerOptions {
  /** When set, any other Authorization header gets OpenAI's 401. */
  expectedKey?: string;
  /** Models answered with OpenAI's 404 model_not_found. */
  unknownModels?: string[];
  /** What GET {basePath}/models lists (default: gpt-4o-mini); null answers it 404, as servers without the route do. */
  models?: string[] | null;
  /** The path before `/chat/completions` (default `/v1`): `/v1beta/openai` for Gemini, `/api/v1` for OpenRouter. */
  basePath?: string;
  /** A provider's request validation: a reply refuses the request before the script is asked. */
  validate?: (request: FakeLlmRequest) => FakeHttpReply | undefined;
  /** A provider's response shape: rewrites the OpenAI-shaped completion the script produced. */
  shapeCompletion?: (completion: FakeCompletion, request: FakeLlmRequest, reply: FakeAssistantReply) => object;
}

/** The OpenAI-shaped completion body the fake builds from a script's reply. */
export interface FakeCompletion {
  id: string;
  object: string;
  created: number;
  model: string;
  choices: Array<{ index: number; message: Record<string, any>; logprobs: null; finish_reason: string }>;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

const outOfScript = (request: FakeLlmRequest): FakeHttpReply => ({
  status: 500,
  body: {
    error: {
      message: `fake LLM server: the script ran out (no response enqueued for request #${request.index})`,
      type: 'server_error',
    },
  },
});

/** A local OpenAI-compatible Chat Completions endpoint, scripted per test. */
export class FakeLlmServer {
  readonly requests: FakeLlmRequest[] = [];
  private readonly queue: FakeLlmScript[] = [];
  private defaultScript: (request: FakeLlmRequest) => FakeLlmResponse | Promise<FakeLlmResponse> = outOfScript;
  private readonly sockets = new Set<Socket>();
  private readonly waiters = new Set<() => void>();
  private completionCount = 0;
  /** `http://127.0.0.1:PORT/v1`; still readable after close (to test a refused connection). */
  readonly baseUrl: string;
  private readonly basePath: string;

  private constructor(
    private readonly server: Server,
    private readonly options: FakeLlmServerOptions,
  ) {
    this.basePath = options.basePath ?? '/v1';
    this.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}${this.basePath}`;
  }

  static async start(options: FakeLlmServerOptions = {}): Promise<FakeLlmServer> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const fake = new FakeLlmServer(server, options);
    server.on('connection', (socket) => {
      fake.sockets.add(socket);
      socket.on('close', () => fake.sockets.delete(socket));
    });
    server.on('request', (req, res) => void fake.handle(req, res));
    return fake;
  }

  /** Responses for the next requests, in order. */
  enqueue(...responses: FakeLlmScript[]): this {
    this.queue.push(...responses);
    return this;
  }

  /** What to answer once the queue is empty (by default a loud 500). */
  setDefault(script: (request: FakeLlmRequest) => FakeLlmResponse | Promise<FakeLlmResponse>): this {
    this.defaultScript = script;
    return this;
  }

  /** Resolves once at least `count` requests have arrived. */
  waitForRequests(count: number, timeoutMs = 5_000): Promise<FakeLlmRequest[]> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.requests.length < count) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(this.requests.slice());
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`fake LLM server: waited ${timeoutMs} ms for ${count} requests, got ${this.requests.length}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** Stops listening and destroys every open socket, hanging ones included. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const receivedAt = Date.now();
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const rawBody = Buffer.concat(chunks).toString('utf8');
    let body: any = rawBody;
    try {
      body = JSON.parse(rawBody);
    } catch { /* kept as text */ }
    const request: FakeLlmRequest = {
      index: this.requests.length + 1, method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, rawBody, receivedAt,
    };
    this.requests.push(request);
    for (const waiter of [...this.waiters]) waiter();

    try {
      const response = await this.respondTo(request);
      if ('hang' in response) return;
      if ('status' in response) {
        sendRaw(res, response);
        return;
      }
      sendRaw(res, { status: 200, body: this.completion(request, response) });
    } catch (error) {
      sendRaw(res, { status: 500, body: { error: { message: `fake LLM server: the script threw: ${String(error)}`, type: 'server_error' } } });
    }
  }

  private async respondTo(request: FakeLlmRequest): Promise<FakeLlmResponse> {
    const models = this.options.models === undefined ? ['gpt-4o-mini'] : this.options.models;
    if (request.method === 'GET' && request.path === `${this.basePath}/models` && models !== null) {
      if (this.options.expectedKey !== undefined && request.headers.authorization !== `Bearer ${this.options.expectedKey}`) {
        return { status: 401, body: { error: { message: 'Incorrect API key provided', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } } };
      }
      return { status: 200, body: { object: 'list', data: models.map((id) => ({ id, object: 'model', created: 0, owned_by: 'fake' })) } };
    }
    if (request.method !== 'POST' || request.path !== `${this.basePath}/chat/completions`) {
      return { status: 404, body: { error: { message: `Invalid URL (${request.method} ${request.path})`, type: 'invalid_request_error' } } };
    }
    if (this.options.expectedKey !== undefined && request.headers.authorization !== `Bearer ${this.options.expectedKey}`) {
      return {
        status: 401,
        body: { error: { message: 'Incorrect API key provided', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } },
      };
    }
    const model = typeof request.body === 'object' && request.body !== null ? request.body.model : undefined;
    if (typeof model === 'string' && this.options.unknownModels?.includes(model)) {
      return {
        status: 404,
        body: { error: { message: `The model \`${model}\` does not exist`, type: 'invalid_request_error', param: null, code: 'model_not_found' } },
      };
    }
    const refusal = this.options.validate?.(request);
    if (refusal) return refusal;
    const script = this.queue.shift();
    if (script === undefined) return this.defaultScript(request);
    return typeof script === 'function' ? script(request) : script;
  }

  private completion(request: FakeLlmRequest, reply: FakeAssistantReply): object {
    const completion = this.openAiCompletion(request, reply);
    return this.options.shapeCompletion ? this.options.shapeCompletion(completion, request, reply) : completion;
  }

  private openAiCompletion(request: FakeLlmRequest, reply: FakeAssistantReply): FakeCompletion {
    this.completionCount += 1;
    const toolCalls = reply.toolCalls?.map((call, i) => ({
      id: call.id ?? `call_fake_${this.completionCount}_${i}`,
      type: 'function',
      function: {
        name: call.name,
        arguments: typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments),
      },
    }));
    const hasToolCalls = toolCalls !== undefined && toolCalls.length > 0;
    const content = reply.content ?? (hasToolCalls ? null : '');
    const promptTokens = Math.ceil(request.rawBody.length / 4);
    const completionTokens = Math.ceil(((content ?? '').length + JSON.stringify(toolCalls ?? []).length) / 4);
    return {
      id: `chatcmpl-fake-${this.completionCount}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: request.body?.model ?? 'unknown',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content, ...(hasToolCalls && { tool_calls: toolCalls }) },
          logprobs: null,
          finish_reason: reply.finishReason ?? (hasToolCalls ? 'tool_calls' : 'stop'),
        },
      ],
      usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
    };
  }
}

function sendRaw(res: ServerResponse, reply: FakeHttpReply): void {
  if (reply.trickle) {
    sendTrickle(res, reply, reply.trickle);
    return;
  }
  const text = reply.body === undefined ? '' : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
  const headers: Record<string, string> = { 'content-type': 'application/json', ...reply.headers };
  res.writeHead(reply.status, headers);
  res.end(text);
}

function sendTrickle(res: ServerResponse, reply: FakeHttpReply, trickle: NonNullable<FakeHttpReply['trickle']>): void {
  res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
  const pieces = [...trickle.chunks];
  const next = () => {
    if (res.destroyed) return;
    const piece = pieces.shift();
    if (piece === undefined) {
      if (!trickle.thenHang) res.end();
      return;
    }
    res.write(piece);
    setTimeout(next, trickle.everyMs);
  };
  next();
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  DISCORD_ERRORS, formErrors, isEmptyMessage, validateMessageBody, type DiscordErrorName, type FormProblem,
} from './errors.js';

export type Payload = Record<string, unknown>;

/** A file sent as `files[n]` in a multipart request. */
export interface UploadedFile {
  field: string;
  filename: string;
  contentType: string;
  data: Buffer;
}

export interface ParsedBody {
  body: Payload;
  files: UploadedFile[];
}

/** What a route handler answers; `body: undefined` means 204 No Content. */
export interface RouteReply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface RouteContext {
  params: string[];
  query: URLSearchParams;
  body: Payload;
  files: UploadedFile[];
}

export interface Route {
  method: string;
  pattern: string[];
  isAuthed: boolean;
  handler: (context: RouteContext) => RouteReply | Promise<RouteReply>;
}

/** Adds a route: `path` segments starting with ':' match any value and are passed in order as `params`. */
export type RouteTable = (method: string, path: string, handler: Route['handler']) => void;

export function isPayload(value: unknown): value is Payload {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

async function readRaw(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Reads a JSON or multipart (`payload_json` + `files[n]`) body; anything else becomes `{}`. */
export async function readBody(request: IncomingMessage): Promise<ParsedBody> {
  const raw = await readRaw(request);
  const contentType = request.headers['content-type'] ?? '';
  if (raw.length === 0) return { body: {}, files: [] };
  if (contentType.startsWith('application/json')) {
    const parsed: unknown = JSON.parse(raw.toString('utf8'));
    return { body: isPayload(parsed) ? parsed : { items: parsed }, files: [] };
  }
  if (contentType.startsWith('multipart/form-data')) {
    const form = await new Response(new Uint8Array(raw), { headers: { 'content-type': contentType } }).formData();
    let body: Payload = {};
    const files: UploadedFile[] = [];
    for (const [field, value] of form.entries()) {
      if (typeof value === 'string') {
        if (field === 'payload_json') {
          const parsed: unknown = JSON.parse(value);
          if (isPayload(parsed)) body = parsed;
        }
        continue;
      }
      files.push({
        field,
        filename: value.name,
        contentType: value.type || 'application/octet-stream',
        data: Buffer.from(await value.arrayBuffer()),
      });
    }
    return { body, files };
  }
  return { body: {}, files: [] };
}

export function errorReply(name: DiscordErrorName, problems: FormProblem[] = []): RouteReply {
  const { status, code, message } = DISCORD_ERRORS[name];
  const body: Payload = { message, code };
  if (problems.length > 0) body.errors = formErrors(problems);
  return { status, body };
}

/** 50006 for an empty new message, 50035 for one past Discord's limits, else null. */
export function checkMessage(body: Payload, files: UploadedFile[], isNew: boolean): RouteReply | null {
  if (isNew && isEmptyMessage(body, files.length)) return errorReply('emptyMessage');
  const problems = validateMessageBody(body);
  return problems.length > 0 ? errorReply('invalidFormBody', problems) : null;
}

export function jsonReply(body: unknown, status = 200): RouteReply {
  return { status, body };
}

export const NO_CONTENT: RouteReply = { status: 204 };

export function writeReply(response: ServerResponse, reply: RouteReply): void {
  const headers: Record<string, string> = { ...reply.headers };
  if (reply.body === undefined) {
    response.writeHead(reply.status === 200 ? 204 : reply.status, headers);
    response.end();
    return;
  }
  const text = JSON.stringify(reply.body);
  headers['content-type'] = 'application/json';
  headers['content-length'] = String(Buffer.byteLength(text));
  response.writeHead(reply.status, headers);
  response.end(text);
}

/** The X-RateLimit-* headers of one bucket state, in Discord's format (seconds with ms decimals). */
export function rateLimitHeaders(bucket: string, limit: number, remaining: number, resetAfterMs: number): Record<string, string> {
  const resetAfterSeconds = Math.max(0, resetAfterMs) / 1000;
  return {
    'x-ratelimit-limit': String(limit),
    'x-ratelimit-remaining': String(Math.max(0, remaining)),
    'x-ratelimit-reset': ((Date.now() + resetAfterMs) / 1000).toFixed(3),
    'x-ratelimit-reset-after': resetAfterSeconds.toFixed(3),
    'x-ratelimit-bucket': bucket,
  };
}

export interface WindowVerdict {
  isAllowed: boolean;
  remaining: number;
  resetAfterMs: number;
}

/**
 * Fixed-window counter per key (a channel): the window opens at the first request and lasts `windowMs`,
 * which is how Discord's buckets report `Reset-After`.
 */
export class FixedWindowLimiter {
  private readonly windows = new Map<string, { startedAt: number; used: number }>();

  constructor(readonly limit: number, readonly windowMs: number) {}

  take(key: string, now = Date.now()): WindowVerdict {
    let window = this.windows.get(key);
    if (!window || now >= window.startedAt + this.windowMs) {
      window = { startedAt: now, used: 0 };
      this.windows.set(key, window);
    }
    const resetAfterMs = window.startedAt + this.windowMs - now;
    if (window.used >= this.limit) return { isAllowed: false, remaining: 0, resetAfterMs };
    window.used += 1;
    return { isAllowed: true, remaining: this.limit - window.used, resetAfterMs };
  }
}

import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

const SECRET_KEYS = ['token', 'apiKey', 'password', 'secret', 'authorization', 'Authorization', 'env', 'DISCORD_TOKEN', 'LLM_API_KEY', 'discordToken', 'llmApiKey'];

const SECRET_KEY_SET = new Set(SECRET_KEYS);
const CENSOR = '[redacted]';
/** Anything named like a secret is redacted at the top of a log object and up to this many levels down (err.request.headers.…). */
const MAX_DEPTH = 3;

/**
 * `value` with every value named like a secret (SECRET_KEYS, down to MAX_DEPTH) replaced by `[redacted]`: the same object when there is
 * none, so a log line without secrets copies nothing (pino's path redaction copied and walked every line, about 40 KB
 * of garbage and 40 µs each). Objects are copied only along the path to a secret, never changed; an error keeps its
 * prototype, and its `cause` is searched too.
 */
export function redactSecrets<T>(value: T, depth = 0): T {
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return value;
  const source = value as Record<string, unknown>;
  let copy: Record<string, unknown> | undefined;
  const visit = (key: string) => {
    const current = source[key];
    if (current === undefined) return;
    const next = SECRET_KEY_SET.has(key) ? CENSOR : depth < MAX_DEPTH ? redactSecrets(current, depth + 1) : current;
    if (next === current) return;
    copy ??= copyOf(source);
    copy[key] = next;
  };
  for (const key of Object.keys(source)) visit(key);
  if (value instanceof Error && !Object.prototype.propertyIsEnumerable.call(value, 'cause')) visit('cause');
  return (copy ?? value) as T;
}

function copyOf(value: Record<string, unknown>): Record<string, unknown> {
  if (Array.isArray(value)) return [...value] as unknown as Record<string, unknown>;
  const prototype = Object.getPrototypeOf(value) as object | null;
  if (prototype === Object.prototype || prototype === null) return { ...value };
  // An error (or another instance) keeps its prototype and its own non-enumerable message, stack and cause.
  return Object.create(prototype, Object.getOwnPropertyDescriptors(value)) as Record<string, unknown>;
}

export interface LoggerOptions {
  level?: LevelWithSilent;
  destination?: NodeJS.WritableStream | number;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.destination ?? 2;
  return pino(
    {
      level: options.level ?? 'info',
      base: undefined,
      formatters: { log: (object) => redactSecrets(object), bindings: (bindings) => redactSecrets(bindings) },
    },
    typeof destination === 'number' ? pino.destination({ fd: destination, sync: true }) : destination,
  );
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

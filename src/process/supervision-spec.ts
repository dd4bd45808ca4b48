import { AppError, describeValue } from '../errors.js';
import { compileSafePattern } from '../safe-pattern.js';

/** When a process counts as ready; stored on its row as JSON in this shape (the tool-call shape, defaults filled). */
export interface ReadySpec {
  port: number | null;
  http_path: string | null;
  pattern: string | null;
  timeout_seconds: number;
}

export const RESTART_ON = ['failure', 'always', 'never'] as const;
export type RestartOn = (typeof RESTART_ON)[number];

export interface RestartPolicy {
  on: RestartOn;
  max_restarts: number;
  backoff_seconds: number;
  max_backoff_seconds: number;
  min_uptime_seconds: number;
}

export const READY_TIMEOUT_DEFAULT_SECONDS = 60;
export const READY_TIMEOUT_MAX_SECONDS = 3_600;
export const RESTART_DEFAULTS: RestartPolicy = { on: 'never', max_restarts: 5, backoff_seconds: 1, max_backoff_seconds: 60, min_uptime_seconds: 30 };
export const MAX_RESTARTS_LIMIT = 1_000;
export const BACKOFF_MAX_SECONDS = 3_600;
export const MIN_UPTIME_MAX_SECONDS = 86_400;
const HTTP_PATH_MAX_LENGTH = 2_000;

const READY_KEYS = ['port', 'http_path', 'pattern', 'timeout_seconds'] as const;
const RESTART_KEYS = ['on', 'max_restarts', 'backoff_seconds', 'max_backoff_seconds', 'min_uptime_seconds'] as const;

function invalid(field: string, expected: string, got: unknown): AppError {
  return new AppError('INVALID_INPUT', `${field} must be ${expected} (got ${describeValue(got)})`, { details: { field } });
}

const isAbsent = (value: unknown) => value === undefined || value === null;

function readObject(input: unknown, field: string, expected: string, allowed: readonly string[]): Record<string, unknown> {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw invalid(field, expected, input);
  for (const key of Object.keys(input)) {
    if (!allowed.includes(key)) {
      throw new AppError('INVALID_INPUT', `${field}.${key} is not a known key (allowed: ${allowed.join(', ')})`, { details: { field: `${field}.${key}` } });
    }
  }
  return input as Record<string, unknown>;
}

function readNumber(value: unknown, field: string, min: number, max: number, isInteger: boolean): number | undefined {
  if (isAbsent(value)) return undefined;
  // Some models send numbers as strings; a clean number string is accepted.
  const n = typeof value === 'string' && /^\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : value;
  const isValid = typeof n === 'number' && (isInteger ? Number.isInteger(n) : Number.isFinite(n)) && n >= min && n <= max;
  if (!isValid) throw invalid(field, `${isInteger ? 'an integer' : 'a number'} from ${min} to ${max}`, value);
  return n;
}

/** Validates `ready` as a tool call sends it; undefined when absent. */
export function parseReadySpec(input: unknown, field = 'ready'): ReadySpec | undefined {
  if (isAbsent(input)) return undefined;
  const ready = readObject(input, field, 'an object with port, http_path, pattern or timeout_seconds', READY_KEYS);
  const port = readNumber(ready.port, `${field}.port`, 1, 65_535, true) ?? null;
  let httpPath: string | null = null;
  if (!isAbsent(ready.http_path)) {
    const path = ready.http_path;
    if (typeof path !== 'string' || !path.startsWith('/') || path.length > HTTP_PATH_MAX_LENGTH || /[\s\u0000-\u001f]/.test(path)) {
      throw invalid(`${field}.http_path`, `a URL path starting with / (no spaces, at most ${HTTP_PATH_MAX_LENGTH} characters), e.g. "/health"`, path);
    }
    if (port === null) throw new AppError('INVALID_INPUT', `${field}.http_path needs ${field}.port: the GET goes to http://127.0.0.1:<port><http_path>`, { details: { field: `${field}.port` } });
    httpPath = path;
  }
  let pattern: string | null = null;
  if (!isAbsent(ready.pattern)) {
    if (typeof ready.pattern !== 'string') throw invalid(`${field}.pattern`, 'a string holding a regex', ready.pattern);
    compileSafePattern(ready.pattern, `${field}.pattern`, 'INVALID_INPUT');
    pattern = ready.pattern;
  }
  if (port === null && pattern === null) {
    throw new AppError('INVALID_INPUT', `${field} needs port (with http_path if you like) or pattern: what tells that the process is ready`, { details: { field } });
  }
  const timeoutSeconds = readNumber(ready.timeout_seconds, `${field}.timeout_seconds`, 1, READY_TIMEOUT_MAX_SECONDS, true) ?? READY_TIMEOUT_DEFAULT_SECONDS;
  return { port, http_path: httpPath, pattern, timeout_seconds: timeoutSeconds };
}

/** Validates `restart` as a tool call sends it; undefined when absent or `on: never` with nothing else. */
export function parseRestartPolicy(input: unknown, field = 'restart'): RestartPolicy | undefined {
  if (isAbsent(input)) return undefined;
  const restart = readObject(input, field, 'an object with on (failure, always or never) and optional limits', RESTART_KEYS);
  if (isAbsent(restart.on)) throw new AppError('INVALID_INPUT', `${field}.on is missing: it must be one of ${RESTART_ON.join(', ')}`, { details: { field: `${field}.on` } });
  if (typeof restart.on !== 'string' || !(RESTART_ON as readonly string[]).includes(restart.on)) throw invalid(`${field}.on`, `one of ${RESTART_ON.join(', ')}`, restart.on);
  const policy: RestartPolicy = {
    on: restart.on as RestartOn,
    max_restarts: readNumber(restart.max_restarts, `${field}.max_restarts`, 1, MAX_RESTARTS_LIMIT, true) ?? RESTART_DEFAULTS.max_restarts,
    backoff_seconds: readNumber(restart.backoff_seconds, `${field}.backoff_seconds`, 0.1, BACKOFF_MAX_SECONDS, false) ?? RESTART_DEFAULTS.backoff_seconds,
    max_backoff_seconds: readNumber(restart.max_backoff_seconds, `${field}.max_backoff_seconds`, 0.1, BACKOFF_MAX_SECONDS, false) ?? RESTART_DEFAULTS.max_backoff_seconds,
    min_uptime_seconds: readNumber(restart.min_uptime_seconds, `${field}.min_uptime_seconds`, 0.1, MIN_UPTIME_MAX_SECONDS, false) ?? RESTART_DEFAULTS.min_uptime_seconds,
  };
  if (policy.max_backoff_seconds < policy.backoff_seconds) {
    throw invalid(`${field}.max_backoff_seconds`, `at least backoff_seconds (${policy.backoff_seconds})`, policy.max_backoff_seconds);
  }
  return policy;
}

/** Stored JSON back to a spec, validated again, so a hand-edited row fails loudly. */
export function readySpecOf(json: string | null): ReadySpec | undefined {
  return json === null ? undefined : parseReadySpec(JSON.parse(json), 'ready');
}

export function restartPolicyOf(json: string | null): RestartPolicy | undefined {
  return json === null ? undefined : parseRestartPolicy(JSON.parse(json), 'restart');
}

/** `port 3000 GET /health` or `/listening/`: for status displays. */
export function describeReady(spec: ReadySpec): string {
  const parts: string[] = [];
  if (spec.port !== null) parts.push(`port ${spec.port}${spec.http_path ? ` GET ${spec.http_path}` : ''}`);
  if (spec.pattern !== null) parts.push(`line /${spec.pattern}/`);
  return `${parts.join(' or ')} within ${spec.timeout_seconds}s`;
}

export function describeRestartPolicy(policy: RestartPolicy): string {
  return `on ${policy.on}, at most ${policy.max_restarts} in a row, backoff ${policy.backoff_seconds}s doubling to ${policy.max_backoff_seconds}s, reset after ${policy.min_uptime_seconds}s up`;
}

/** Every error code Chorus raises, with the message a person reads. One table, so wording stays consistent. */
export const ERROR_MESSAGES = {
  INVALID_INPUT: 'Invalid input',
  CONFIG_INVALID: 'Invalid configuration',
  AGENT_CONFIG_INVALID: 'Invalid agent configuration',
  AGENT_NOT_FOUND: 'No such agent',
  COMMAND_EMPTY: 'The command is empty',
  COMMAND_TOO_LONG: 'The command is too long',
  COMMAND_BLOCKED: 'The command is blocked',
  CWD_MISSING: 'The working directory does not exist',
  CWD_OUTSIDE_WORKSPACE: "The working directory is outside the agent's workspace",
  PROCESS_LIMIT: 'The agent is at its process limit',
  PROCESS_NOT_FOUND: 'No such process',
  PROCESS_NOT_RUNNING: 'The process is not running',
  PROCESS_IDENTITY_MISMATCH: 'The process is gone: its pid now belongs to another process',
  PID_FORBIDDEN: 'That pid may never be signalled',
  KILL_FAILED: 'Some processes survived SIGKILL',
  SPAWN_FAILED: 'The process could not be started',
  SANDBOX_UNAVAILABLE: 'The sandbox is required but unavailable',
  SUPERVISOR_RUNNING: 'Another supervisor already runs on this CHORUS_HOME',
  HOOK_INVALID: 'Invalid hook',
  HOOK_DEPTH_EXCEEDED: 'Hook recursion limit reached',
  LLM_UNAUTHORIZED: 'The LLM endpoint refused the key',
  LLM_MODEL_NOT_FOUND: 'The LLM endpoint does not know the model',
  LLM_TIMEOUT: 'The LLM endpoint did not answer in time',
  LLM_UNAVAILABLE: 'The LLM endpoint is unavailable',
  LLM_BAD_RESPONSE: 'The LLM endpoint sent a response Chorus cannot read',
  LLM_REQUEST_REJECTED: 'The LLM endpoint rejected the request',
  LLM_BILLING: 'The LLM account is out of credit or over its spending limit',
  LLM_MODERATION: "The LLM endpoint's moderation refused the request",
  LLM_SERVER_CONFIG: 'The LLM server is not set up for tool calls',
  LLM_GENERATION_FAILED: 'The model failed while writing its answer',
  LLM_NOT_CONFIGURED: 'No LLM is configured',
  NOT_AUTHORIZED: 'You are not allowed to do that here',
  NO_AGENT_IN_CHANNEL: 'No agent is bound to this channel',
  GUILD_ONLY: 'This works only in a server channel',
  INPUT_CLOSED: 'The process does not take input any more',
  INPUT_FULL: 'The process is not reading its input',
  NOT_INTERACTIVE: 'The process was not started interactive',
  TTY_UNAVAILABLE: 'No pseudo-terminal tool is installed',
  DISCORD_GATEWAY: 'The Discord connection failed',
  INTERNAL: 'Internal error',
} as const;

export type ErrorCode = keyof typeof ERROR_MESSAGES;

export interface AppErrorOptions {
  cause?: unknown;
  /** Shown to the person or model that asked (ephemeral in Discord); otherwise logged and replaced by a generic line. */
  userFacing?: boolean;
  details?: Record<string, unknown>;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly userFacing: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, detail?: string, options: AppErrorOptions = {}) {
    super(detail ? `${ERROR_MESSAGES[code]}: ${detail}` : ERROR_MESSAGES[code], { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.userFacing = options.userFacing ?? true;
    this.details = options.details;
  }
}

export function isAppError(error: unknown, code?: ErrorCode): error is AppError {
  return error instanceof AppError && (code === undefined || error.code === code);
}

/** A bad-input error that names the field, what it expects and what it got. */
export function invalidField(field: string, expected: string, got?: unknown, code: ErrorCode = 'INVALID_INPUT'): AppError {
  const shown = got === undefined ? '' : ` (got ${describeValue(got)})`;
  return new AppError(code, `${field} must be ${expected}${shown}`, { details: { field } });
}

export function describeValue(value: unknown): string {
  if (typeof value === 'string') {
    const cut = value.length > 60 ? `${value.slice(0, 57)}...` : value;
    return JSON.stringify(cut);
  }
  if (value === null || typeof value !== 'object') return String(value);
  if (Array.isArray(value)) return 'an array';
  return 'an object';
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

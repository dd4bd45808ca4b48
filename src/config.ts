import { statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { LevelWithSilent } from 'pino';
import { AppError } from './errors.js';
import { SANDBOX_MODES, type SandboxMode } from './process/sandbox.js';

export interface Config {
  discordToken: string | undefined;
  discordGuildId: string | undefined;
  discordApiUrl: string | undefined;
  ownerIds: string[];
  llmBaseUrl: string | undefined;
  llmApiKey: string | undefined;
  llmModel: string;
  /** The longest wait for the endpoint's first byte, and then between bytes. */
  llmTimeoutMs: number;
  chorusHome: string;
  logLevel: LevelWithSilent;
  killGraceMs: number;
  logCapBytes: number;
  registerCommandsOnStart: boolean;
  discordReadyTimeoutMs: number;
  /** auto: confine when bwrap works, else warn once; required: refuse to start a process unconfined; off. */
  sandboxMode: SandboxMode;
  /** The directory .env was read from; hidden from confined processes like CHORUS_HOME. */
  envDir: string | undefined;
}

export const DEFAULT_KILL_GRACE_MS = 5_000;
export const DEFAULT_LOG_CAP_BYTES = 64 * 1024 * 1024;
export const DEFAULT_LLM_TIMEOUT_MS = 120_000;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const SNOWFLAKE = /^\d{17,20}$/;
/** Printable ASCII without spaces or quotes: what a token, key or model name is; anything else breaks a header or a URL. */
const BARE_WORD = /^[!#-&(-~]+$/;
const MODEL_MAX_LENGTH = 200;

function configError(key: string, expected: string, got: string): AppError {
  return new AppError('CONFIG_INVALID', `${key} must be ${expected} (got ${JSON.stringify(got)})`, { details: { key } });
}

function optional(env: NodeJS.ProcessEnv, key: string): string | undefined {
  const value = env[key]?.trim();
  return value ? value : undefined;
}

/** A secret pasted with a prefix, quotes or a line break fails only at the first request; the value is never echoed. */
function parseSecret(env: NodeJS.ProcessEnv, key: string, prefix: string): string | undefined {
  const value = optional(env, key);
  if (value !== undefined && !BARE_WORD.test(value)) {
    throw new AppError('CONFIG_INVALID', `${key} must be the ${key === 'DISCORD_TOKEN' ? 'bot token' : 'key'} alone, without spaces, quotes or a "${prefix} " prefix (the value is not shown)`, { details: { key } });
  }
  return value;
}

/** The home, or the nearest of its parents that exists, must be a directory (start-up creates the rest). */
function checkHome(path: string, text: string): void {
  for (let dir = path; ; dir = dirname(dir)) {
    let isDirectory: boolean;
    try {
      isDirectory = statSync(dir).isDirectory();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if ((code === 'ENOENT' || code === 'ENOTDIR') && dir !== dirname(dir)) continue;
      // Anything else (no permission) fails at start-up with its own error.
      return;
    }
    if (!isDirectory) throw configError('CHORUS_HOME', `a directory path (${dir} is a file)`, text);
    return;
  }
}

function parseUrl(env: NodeJS.ProcessEnv, key: string): string | undefined {
  const value = optional(env, key);
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw configError(key, 'an http(s) URL', value);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw configError(key, 'an http(s) URL', value);
  return value.replace(/\/+$/, '');
}

function parseSnowflakes(env: NodeJS.ProcessEnv, key: string): string[] {
  const value = optional(env, key);
  if (value === undefined) return [];
  const ids = value.split(',').map((id) => id.trim()).filter(Boolean);
  for (const id of ids) if (!SNOWFLAKE.test(id)) throw configError(key, 'a comma-separated list of Discord ids (17-20 digits)', id);
  return ids;
}

function parseInteger(env: NodeJS.ProcessEnv, key: string, min: number, max: number, fallback: number): number {
  const value = optional(env, key);
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw configError(key, `an integer from ${min} to ${max}`, value);
  }
  return n;
}

const SIZE_UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/** Bytes, with an optional K, M or G suffix ("64M"). */
export function parseByteSize(text: string): number | undefined {
  const match = /^(\d+)\s*([KMG]?)(?:i?B)?$/i.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * SIZE_UNITS[match[2]!.toUpperCase()]!;
}

/** What a confined process never sees besides CHORUS_HOME: the directory .env was read from, and the file itself. */
export function protectedPaths(config: Pick<Config, 'envDir'>): string[] {
  return config.envDir ? [config.envDir, join(config.envDir, '.env')] : [];
}

export function defaultChorusHome(): string {
  return join(homedir(), '.chorus-agents');
}

/** Reads and checks every key; the first bad one stops start-up with a line naming it. `envDir`: where .env was read. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, options: { envDir?: string | undefined } = {}): Config {
  const homeText = optional(env, 'CHORUS_HOME');
  const chorusHome = homeText === undefined
    ? defaultChorusHome()
    : resolve(homeText.startsWith('~/') ? join(homedir(), homeText.slice(2)) : homeText);
  if (homeText !== undefined) checkHome(chorusHome, homeText);

  const logLevel = (optional(env, 'LOG_LEVEL') ?? 'info').toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) throw configError('LOG_LEVEL', `one of ${LOG_LEVELS.join(', ')}`, logLevel);

  const capText = optional(env, 'CHORUS_LOG_CAP');
  let logCapBytes = DEFAULT_LOG_CAP_BYTES;
  if (capText !== undefined) {
    const parsed = parseByteSize(capText);
    if (parsed === undefined || parsed < 4096 || parsed > 1024 ** 4) {
      throw configError('CHORUS_LOG_CAP', 'a size from 4K to 1024G, like 64M', capText);
    }
    logCapBytes = parsed;
  }

  const guildId = optional(env, 'DISCORD_GUILD_ID');
  if (guildId !== undefined && !SNOWFLAKE.test(guildId)) throw configError('DISCORD_GUILD_ID', 'a Discord id (17-20 digits)', guildId);

  const register = (optional(env, 'CHORUS_REGISTER_COMMANDS') ?? 'true').toLowerCase();
  if (!['true', 'false', '1', '0'].includes(register)) throw configError('CHORUS_REGISTER_COMMANDS', 'true or false', register);

  const sandboxMode = (optional(env, 'CHORUS_SANDBOX') ?? 'auto').toLowerCase();
  if (!(SANDBOX_MODES as readonly string[]).includes(sandboxMode)) throw configError('CHORUS_SANDBOX', `one of ${SANDBOX_MODES.join(', ')}`, sandboxMode);

  const model = optional(env, 'LLM_MODEL') ?? 'gpt-4o-mini';
  if (!BARE_WORD.test(model) || model.length > MODEL_MAX_LENGTH) {
    throw configError('LLM_MODEL', `a model name without spaces or quotes, at most ${MODEL_MAX_LENGTH} characters, like gpt-4o-mini`, model);
  }

  return {
    discordToken: parseSecret(env, 'DISCORD_TOKEN', 'Bot'),
    discordGuildId: guildId,
    discordApiUrl: parseUrl(env, 'DISCORD_API_URL'),
    ownerIds: parseSnowflakes(env, 'CHORUS_OWNER_IDS'),
    llmBaseUrl: parseUrl(env, 'LLM_BASE_URL'),
    llmApiKey: parseSecret(env, 'LLM_API_KEY', 'Bearer'),
    llmModel: model,
    llmTimeoutMs: parseInteger(env, 'LLM_TIMEOUT_MS', 1_000, 3_600_000, DEFAULT_LLM_TIMEOUT_MS),
    chorusHome,
    logLevel: logLevel as LevelWithSilent,
    killGraceMs: parseInteger(env, 'CHORUS_KILL_GRACE_MS', 0, 600_000, DEFAULT_KILL_GRACE_MS),
    logCapBytes,
    registerCommandsOnStart: register === 'true' || register === '1',
    discordReadyTimeoutMs: parseInteger(env, 'DISCORD_READY_TIMEOUT_SECONDS', 1, 3_600, 60) * 1000,
    sandboxMode: sandboxMode as SandboxMode,
    envDir: options.envDir,
  };
}

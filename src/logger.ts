import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** Anything named like a secret, wherever it appears in a log object. */
export const REDACT_PATHS = [
  'token', '*.token', 'apiKey', '*.apiKey', 'password', '*.password', 'secret', '*.secret',
  'authorization', '*.authorization', 'headers.authorization', '*.headers.authorization',
  'env', '*.env', 'DISCORD_TOKEN', 'LLM_API_KEY', '*.DISCORD_TOKEN', '*.LLM_API_KEY',
  'config.discordToken', 'config.llmApiKey', 'discordToken', 'llmApiKey',
];

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
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    typeof destination === 'number' ? pino.destination({ fd: destination, sync: true }) : destination,
  );
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

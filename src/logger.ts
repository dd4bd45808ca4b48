import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

const SECRET_KEYS = ['token', 'apiKey', 'password', 'secret', 'authorization', 'Authorization', 'env', 'DISCORD_TOKEN', 'LLM_API_KEY', 'discordToken', 'llmApiKey'];

/** Anything named like a secret, at the top of a log object and up to three levels down (err.request.headers.…). */
export const REDACT_PATHS = SECRET_KEYS.flatMap((key) => [key, `*.${key}`, `*.*.${key}`, `*.*.*.${key}`]);

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

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { AppError } from '../errors.js';

/** parseArgs with errors that say which option was wrong, as AppError. */
export function parseVerbArgs<T extends NonNullable<ParseArgsConfig['options']>>(verb: string, args: string[], options: T, allowPositionals = true) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (error) {
    throw new AppError('INVALID_INPUT', `${verb}: ${(error as Error).message.split('\n')[0]}`);
  }
}

export function parsePid(value: string | undefined, verb: string): number {
  if (value === undefined) throw new AppError('INVALID_INPUT', `${verb}: pid is required (a positive integer)`);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value)) || Number(value) < 1) {
    throw new AppError('INVALID_INPUT', `${verb}: pid must be a positive integer (got ${JSON.stringify(value)})`);
  }
  return Number(value);
}

export function parseIntegerOption(value: string | undefined, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new AppError('INVALID_INPUT', `--${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(value)})`);
  }
  return Number(value);
}

export function parseChoice<T extends string>(value: string | undefined, name: string, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value)) {
    throw new AppError('INVALID_INPUT', `--${name} must be one of ${choices.join(', ')} (got ${JSON.stringify(value)})`);
  }
  return value as T;
}

import type { Config } from '../config.js';
import { formatReport, hasFailed, runChecks } from '../doctor/check.js';
import { DOCTOR_CHECKS } from '../doctor/checks.js';
import { parseVerbArgs } from './args.js';

const REMOTE_TIMEOUT_MS = 10_000;

/** `chorus doctor [--json]`: every check in one table (or JSON); exit 0 only when none failed. */
export async function doctor(config: Config, args: string[], out: (text: string) => void): Promise<number> {
  const { values } = parseVerbArgs('doctor', args, { json: { type: 'boolean' } }, false);
  const results = await runChecks(DOCTOR_CHECKS, { config, fetch, timeoutMs: REMOTE_TIMEOUT_MS });
  const isFailed = hasFailed(results);
  out(values.json ? JSON.stringify({ ok: !isFailed, checks: results }, null, 2) : formatReport(results));
  return isFailed ? 1 : 0;
}

import type { Config } from '../config.js';
import { errorMessage } from '../errors.js';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

/** What one check found; `fix` says what to do, and is set whenever the status is `fail` (or `warn`). */
export interface CheckResult {
  name: string;
  status: CheckStatus;
  detail: string;
  fix?: string;
}

export type CheckOutcome = Omit<CheckResult, 'name'>;

export interface DoctorContext {
  config: Config;
  /** The network edge (Discord, the LLM endpoint); `fetch` unless a caller hands in another. */
  fetch: typeof fetch;
  /** Per remote request. */
  timeoutMs: number;
}

/** One small check; another module adds one by adding an entry to the list in checks.ts. */
export interface Check {
  name: string;
  run(ctx: DoctorContext): CheckOutcome | Promise<CheckOutcome>;
}

export const ok = (detail: string): CheckOutcome => ({ status: 'ok', detail });
export const skip = (detail: string): CheckOutcome => ({ status: 'skip', detail });
export const warn = (detail: string, fix: string): CheckOutcome => ({ status: 'warn', detail, fix });
export const fail = (detail: string, fix: string): CheckOutcome => ({ status: 'fail', detail, fix });

/** Runs every check in order; a check that throws fails with its message instead of stopping the others. */
export async function runChecks(checks: readonly Check[], ctx: DoctorContext): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const check of checks) {
    try {
      results.push({ name: check.name, ...(await check.run(ctx)) });
    } catch (error) {
      results.push({ name: check.name, status: 'fail', detail: `the check itself failed: ${errorMessage(error)}`, fix: 'report this as a bug, with the detail' });
    }
  }
  return results;
}

export function hasFailed(results: readonly CheckResult[]): boolean {
  return results.some((r) => r.status === 'fail');
}

/** One table: a row per check, and under a failing or warning one the fix. */
export function formatReport(results: readonly CheckResult[]): string {
  const nameWidth = Math.max(5, ...results.map((r) => r.name.length));
  const lines = [`${'CHECK'.padEnd(nameWidth)}  STATUS  DETAIL`];
  for (const r of results) {
    lines.push(`${r.name.padEnd(nameWidth)}  ${(r.status === 'fail' ? 'FAIL' : r.status).padEnd(6)}  ${r.detail}`);
    if (r.fix && r.status !== 'ok') lines.push(`${' '.repeat(nameWidth + 10)}fix: ${r.fix}`);
  }
  const failed = results.filter((r) => r.status === 'fail').length;
  const warned = results.filter((r) => r.status === 'warn').length;
  lines.push('', failed ? `${failed} check(s) failed${warned ? `, ${warned} warning(s)` : ''}` : `all checks passed${warned ? ` (${warned} warning(s))` : ''}`);
  return lines.join('\n');
}

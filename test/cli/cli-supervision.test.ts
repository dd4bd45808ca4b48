// `chorus spawn --restart/--max-restarts/--ready-*` under `chorus supervise`: readiness and restarts in `chorus status --json` and `ps`.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseJson, runCli } from '../support/cli.js';
import { freePort } from '../support/free-port.js';
import { RecoveryHome, trackGroup } from '../support/recovery-home.js';
import { startSupervisor } from '../support/supervisor-process.js';
import { waitFor } from '../support/wait-for.js';
import { fixture } from '../support/fixtures.js';

const LATE_SERVER = fixture('late-server.mjs');

interface StatusJson {
  id: number;
  pid: number;
  status: string;
  ready: Record<string, unknown> | null;
  ready_at: string | null;
  ready_error: string | null;
  restart: Record<string, unknown> | null;
  restart_count: number;
  restart_streak: number;
  restarted_from: number | null;
}

async function status(home: string, pid: number): Promise<StatusJson> {
  return parseJson<StatusJson>(await runCli(home, ['status', String(pid), '--json']));
}

describe('chorus spawn with supervision flags', () => {
  it('--ready-port --ready-http: status --json goes from starting to ready, and the text says so', async () => {
    const h = new RecoveryHome();
    const supervisor = await startSupervisor(h.home);
    const port = await freePort();
    const spawned = await runCli(h.home, [
      'spawn', '--agent', 'demo', '--json', '--ready-port', String(port), '--ready-http', '/health', '--ready-timeout', '30',
      '--restart', 'failure', '--max-restarts', '2', '--', process.execPath, LATE_SERVER, String(port), '500', '300',
    ]);
    expect(spawned.code, spawned.stderr).toBe(0);
    const row = parseJson<StatusJson>(spawned);
    trackGroup(row.pid);
    expect(row).toMatchObject({
      ready: { port, http_path: '/health', pattern: null, timeout_seconds: 30 }, ready_at: null,
      restart: { on: 'failure', max_restarts: 2, backoff_seconds: 1, max_backoff_seconds: 60, min_uptime_seconds: 30 }, restart_count: 0,
    });
    const ready = await waitFor(async () => {
      const current = await status(h.home, row.pid);
      return current.ready_at ? current : undefined;
    }, { timeoutMs: 15_000, what: 'ready_at in chorus status --json' });
    expect(ready).toMatchObject({ status: 'running', ready_error: null });
    const text = await runCli(h.home, ['status', String(row.pid)]);
    expect(text.stdout).toMatch(/^status {4}ready$/m);
    expect(text.stdout).toMatch(/^readiness ready since .*; probe: port \d+ GET \/health within 30s$/m);
    expect(text.stdout).toMatch(/^restarts  restarted 0 times \(0 in a row\); policy: on failure, at most 2 in a row/m);
    const ps = await runCli(h.home, ['ps']);
    expect(ps.stdout).toMatch(new RegExp(`^${row.pid}\\s+demo\\s+ready\\s`, 'm'));
    await supervisor.stop();
  });

  it('--restart always --max-restarts 1: the first pid shows the crash loop of its last run', async () => {
    const h = new RecoveryHome();
    const supervisor = await startSupervisor(h.home);
    const spawned = await runCli(h.home, ['spawn', '--agent', 'demo', '--json', '--restart', 'always', '--max-restarts', '1', '--', 'echo', 'bye']);
    expect(spawned.code, spawned.stderr).toBe(0);
    const first = parseJson<StatusJson>(spawned);
    const looped = await waitFor(async () => {
      const current = await status(h.home, first.pid);
      return current.status === 'crash_loop' ? current : undefined;
    }, { timeoutMs: 15_000, what: 'crash_loop in chorus status --json' });
    expect(looped).toMatchObject({ restart_count: 1, restarted_from: first.id });
    expect(looped.id).not.toBe(first.id);
    const ps = parseJson<StatusJson[]>(await runCli(h.home, ['ps', '--all', '--json']));
    expect(ps.map((r) => [r.id, r.status, r.restart_count])).toEqual([[looped.id, 'crash_loop', 1]]);
    await supervisor.stop();
  });
});

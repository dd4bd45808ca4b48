import { describe, expect, it } from 'vitest';
import { readAllStats } from '../../src/process/proc-fs.js';
import { isAlive } from '../support/child-cleanup.js';
import { parseJson, runCli } from '../support/cli.js';
import { RecoveryHome, sizeOf } from '../support/recovery-home.js';
import { runRefusedSupervisor, startSupervisor } from '../support/supervisor-process.js';
import { waitFor } from '../support/wait-for.js';

/**
 * The store's write event (or, missed, the 5 s poll) brings the new row, and offsets are stored a second after output:
 * about a second, with room for a loaded machine (a 3 s bound failed once under load).
 */
const PICKUP_TIMEOUT_MS = 10_000;

describe('one supervisor process per home', () => {
  it('refuses a second supervisor with one line on stderr; after the first is SIGKILLed a new one takes over', async () => {
    const h = new RecoveryHome();
    const first = await startSupervisor(h.home);
    expect(h.supervisors.read()?.pid).toBe(first.pid);

    const refused = await runRefusedSupervisor(h.home);
    expect(refused.code).not.toBe(0);
    expect(refused.code).not.toBeNull();
    expect(refused.stdout).not.toContain('supervising');
    const lines = refused.stderr.trimEnd().split('\n');
    expect(lines, refused.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/another supervisor/i);
    expect(lines[0]).toContain(String(first.pid));
    expect(isAlive(first.pid)).toBe(true);
    expect(h.supervisors.read()?.pid).toBe(first.pid);

    await first.sigkill();
    expect(h.supervisors.read()?.pid).toBe(first.pid);
    const next = await startSupervisor(h.home);
    expect(h.supervisors.read()?.pid).toBe(next.pid);
    expect(await next.stop()).toEqual({ code: 0, signal: null });
    expect(h.supervisors.read()).toBeUndefined();
  });
});

describe('a running supervisor process and the CLI', () => {
  it('picks up a process started by `chorus spawn` and records its exit by itself', async () => {
    const h = new RecoveryHome();
    const supervisor = await startSupervisor(h.home);
    const ticker = await h.cliSpawnTicker('cli', { code: 5 });
    expect(ticker.record.status).toBe('running');
    await h.waitForStdoutOffset(ticker.record.id, 1, PICKUP_TIMEOUT_MS);
    const size = sizeOf(ticker.record.stdoutLog);
    await h.waitForStdoutOffset(ticker.record.id, size);

    ticker.stop();
    const ended = await h.waitForEnd(ticker.record.id);
    expect(ended).toMatchObject({ status: 'exited', exitCode: 5, signal: null, stoppedBy: null });
    expect(ended.endedAt).toEqual(expect.any(String));
    expect(ended.stdoutOffset).toBe(sizeOf(ticker.record.stdoutLog));
    expect(await supervisor.stop()).toEqual({ code: 0, signal: null });
  });

  it('leaves `chorus kill` the last word: killed by cli, not exited or lost', async () => {
    const h = new RecoveryHome();
    const supervisor = await startSupervisor(h.home);
    const victim = await h.cliSpawnTicker('victim', { code: 0 });
    await h.waitForStdoutOffset(victim.record.id, 1, PICKUP_TIMEOUT_MS);

    const killed = await runCli(h.home, ['kill', String(victim.record.pid)]);
    expect(killed, killed.stderr).toMatchObject({ code: 0, stderr: '' });
    expect(killed.stdout).toMatch(new RegExp(`^stopped pid ${victim.record.pid} \\(SIGTERM\\)`));
    const afterKill = h.row(victim.record.id);
    expect(afterKill).toMatchObject({ status: 'killed', stoppedBy: 'cli', signal: 'SIGTERM', lostReason: null });
    expect(afterKill.endedAt).toEqual(expect.any(String));
    expect(readAllStats().filter((s) => s.pgrp === victim.record.pgid && s.state !== 'Z')).toEqual([]);

    // A row the supervisor picks up after the kill proves it has polled since; the killed row is untouched.
    const witness = await h.cliSpawnTicker('witness');
    await h.waitForStdoutOffset(witness.record.id, 1, PICKUP_TIMEOUT_MS);
    // The supervisor may still read the last output (offsets only grow); the end the CLI recorded stays as it was.
    const later = h.row(victim.record.id);
    const ending = (row: typeof later) => ({ status: row.status, exitCode: row.exitCode, signal: row.signal, stoppedBy: row.stoppedBy, endedAt: row.endedAt, lostReason: row.lostReason });
    expect(ending(later)).toEqual(ending(afterKill));
    expect(later.stdoutOffset).toBeGreaterThanOrEqual(afterKill.stdoutOffset);
    expect(later.stderrOffset).toBeGreaterThanOrEqual(afterKill.stderrOffset);
    const status = parseJson<{ status: string; stopped_by: string }>(await runCli(h.home, ['status', String(victim.record.pid), '--json']));
    expect(status).toMatchObject({ status: 'killed', stopped_by: 'cli' });

    witness.stop();
    expect(await h.waitForEnd(witness.record.id)).toMatchObject({ status: 'exited', exitCode: 0 });
    expect(await supervisor.stop()).toEqual({ code: 0, signal: null });
  });

  it('leaves processes running on SIGTERM; the next supervisor adopts them', async () => {
    const h = new RecoveryHome();
    const first = await startSupervisor(h.home);
    const viaCli = await h.cliSpawnTicker('via-cli', { code: 2 });
    const viaClient = await h.spawnTicker('via-client', { code: 6 });
    const tickers = [viaCli, viaClient];
    for (const t of tickers) await h.waitForStdoutOffset(t.record.id, 1, PICKUP_TIMEOUT_MS);

    expect(await first.stop()).toEqual({ code: 0, signal: null });
    expect(h.supervisors.read()).toBeUndefined();
    for (const t of tickers) {
      expect(isAlive(t.record.pid!)).toBe(true);
      expect(h.row(t.record.id).status).toBe('running');
    }
    const sizes = await waitFor(() => {
      const now = tickers.map((t) => sizeOf(t.record.stdoutLog));
      return tickers.every((t, i) => now[i]! > h.row(t.record.id).stdoutOffset) && now;
    }, { what: 'both to print while no supervisor runs' });

    const second = await startSupervisor(h.home, { env: { LOG_LEVEL: 'info' } });
    for (const [i, t] of tickers.entries()) {
      expect((await h.waitForStdoutOffset(t.record.id, sizes[i]!)).status).toBe('running');
    }
    // One line says how many it adopted (a restart among hundreds must not log hundreds of lines); each is at debug.
    const adoptions = second.stderr.split('\n').filter((line) => line.includes('adopted')).map((line) => JSON.parse(line) as { msg: string; count?: number });
    expect(adoptions.map(({ msg, count }) => ({ msg, count }))).toEqual([{ msg: 'processes adopted', count: 2 }]);
    for (const t of tickers) t.stop();
    expect(await h.waitForEnd(viaCli.record.id)).toMatchObject({ status: 'exited', exitCode: 2 });
    expect(await h.waitForEnd(viaClient.record.id)).toMatchObject({ status: 'exited', exitCode: 6 });
    expect(await second.stop()).toEqual({ code: 0, signal: null });
  });
});

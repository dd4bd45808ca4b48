import { existsSync, rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { exitFilePath } from '../../src/process/spawn.js';
import { isAlive } from '../support/child-cleanup.js';
import { parseJson, runCli } from '../support/cli.js';
import { OffsetSampler, RecoveryHome, sizeOf, type Ticker } from '../support/recovery-home.js';
import { startSupervisor } from '../support/supervisor-process.js';
import { waitFor } from '../support/wait-for.js';

/** Ends a ticker while no supervisor runs: its shim writes the exit file, and nothing records it yet. */
async function endUnwatched(home: RecoveryHome, ticker: Ticker): Promise<void> {
  ticker.stop();
  await waitFor(() => existsSync(exitFilePath(ticker.record.runDir)) && !isAlive(ticker.record.pid!), {
    timeoutMs: 5_000, what: `${ticker.record.name} to exit and leave its exit file`,
  });
  expect(home.row(ticker.record.id).status).toBe('running');
}

describe('recovery after a supervisor is SIGKILLed', () => {
  it('adopts a live process, records the exit of one that ended meanwhile, and marks a reused pid lost without signalling it', async () => {
    const h = new RecoveryHome();
    const first = await startSupervisor(h.home);
    const a = await h.spawnTicker('a', { code: 3 });
    const b = await h.spawnTicker('b', { code: 7 });
    const c = await h.spawnTicker('c');
    for (const t of [a, b, c]) await h.waitForStdoutOffset(t.record.id, 1);
    const beforeCrash = h.row(a.record.id).stdoutOffset;

    await first.sigkill();
    await endUnwatched(h, b);
    await endUnwatched(h, c);
    // C's pid now belongs to an unrelated process (the OS reused it); its own start ticks stay in the row.
    const bystander = await h.startBystander();
    expect(bystander.startTicks).not.toBe(c.record.startTicks);
    h.db.prepare('UPDATE processes SET pid = ?, pgid = ? WHERE id = ?').run(bystander.pid, bystander.pid, c.record.id);
    rmSync(exitFilePath(c.record.runDir));
    const sizeAtRestart = await waitFor(() => {
      const size = sizeOf(a.record.stdoutLog);
      return size > beforeCrash && size;
    }, { what: 'a to print while no supervisor runs' });

    const second = await startSupervisor(h.home);
    expect(await h.waitForEnd(b.record.id)).toMatchObject({ status: 'exited', exitCode: 7, signal: null, stoppedBy: null });
    const lost = await h.waitForEnd(c.record.id);
    expect(lost).toMatchObject({ status: 'lost', exitCode: null, pid: bystander.pid });
    expect(lost.lostReason).toMatch(/another process/);
    expect(lost.endedAt).toEqual(expect.any(String));

    // A is adopted: what it printed while nobody watched is read, and what it prints now too.
    const adopted = await h.waitForStdoutOffset(a.record.id, sizeAtRestart);
    expect(adopted.status).toBe('running');
    const laterSize = await waitFor(() => {
      const size = sizeOf(a.record.stdoutLog);
      return size > adopted.stdoutOffset && size;
    }, { what: 'a to print after the restart' });
    expect((await h.waitForStdoutOffset(a.record.id, laterSize)).status).toBe('running');

    const listed = parseJson<Array<{ id: number; status: string; exit_code: number | null; lost_reason: string | null }>>(
      await runCli(h.home, ['ps', '--all', '--json']),
    );
    expect(listed.map((r) => [r.id, r.status, r.exit_code])).toEqual([
      [c.record.id, 'lost', null], [b.record.id, 'exited', 7], [a.record.id, 'running', null],
    ]);

    a.stop();
    const ended = await h.waitForEnd(a.record.id);
    expect(ended).toMatchObject({ status: 'exited', exitCode: 3, stoppedBy: null, lostReason: null });
    expect(ended.endedAt).toEqual(expect.any(String));
    expect(ended.stdoutOffset).toBe(sizeOf(a.record.stdoutLog));
    expect(ended.stderrOffset).toBe(sizeOf(a.record.stderrLog));

    expect(isAlive(bystander.pid)).toBe(true);
    expect(existsSync(bystander.signalFile)).toBe(false);
    expect(isAlive(second.pid)).toBe(true);
    expect(await second.stop()).toEqual({ code: 0, signal: null });
    expect(isAlive(bystander.pid)).toBe(true);
  });

  it('reads output written while no supervisor ran from the saved offsets, which never go backwards', async () => {
    const h = new RecoveryHome();
    const first = await startSupervisor(h.home);
    const ended = await h.spawnTicker('ended', { code: 4, intervalMs: 10 });
    const kept = await h.spawnTicker('kept', { intervalMs: 10 });
    const ids = [ended.record.id, kept.record.id];
    const sampler = new OffsetSampler(h, ids);
    for (const id of ids) await h.waitForStdoutOffset(id, 1);

    await first.sigkill();
    const saved = new Map(ids.map((id) => [id, h.row(id)]));
    // Enough output lands while nobody watches, on both streams, and one of the two ends meanwhile.
    await waitFor(() => sizeOf(ended.record.stderrLog) > saved.get(ended.record.id)!.stderrOffset + 100
      && sizeOf(ended.record.stdoutLog) > saved.get(ended.record.id)!.stdoutOffset + 1_000, { what: 'output while down' });
    await endUnwatched(h, ended);
    const keptSizeAtRestart = sizeOf(kept.record.stdoutLog);
    for (const id of ids) expect(h.row(id).stdoutOffset).toBe(saved.get(id)!.stdoutOffset);

    const second = await startSupervisor(h.home);
    const settled = await h.waitForEnd(ended.record.id);
    expect(settled).toMatchObject({ status: 'exited', exitCode: 4 });
    expect(settled.stdoutOffset).toBe(sizeOf(ended.record.stdoutLog));
    expect(settled.stderrOffset).toBe(sizeOf(ended.record.stderrLog));
    await h.waitForStdoutOffset(kept.record.id, keptSizeAtRestart);

    kept.stop();
    const keptEnd = await h.waitForEnd(kept.record.id);
    expect(keptEnd).toMatchObject({ status: 'exited', exitCode: 0 });
    expect(keptEnd.stdoutOffset).toBe(sizeOf(kept.record.stdoutLog));
    expect(keptEnd.stderrOffset).toBe(sizeOf(kept.record.stderrLog));

    sampler.stop();
    for (const id of ids) {
      expect(sampler.regressions(id)).toEqual([]);
      expect(sampler.samples.get(id)!.at(-1)!.stdout).toBeGreaterThan(saved.get(id)!.stdoutOffset);
    }
    await second.stop();
  });

  // DESIGN §2 Identity: pid, process group, start ticks and boot id must all hold.
  it('marks lost a row whose pid and start ticks now match an unrelated process of another process group', async () => {
    const h = new RecoveryHome();
    const first = await startSupervisor(h.home);
    const c = await h.spawnTicker('c');
    await h.waitForStdoutOffset(c.record.id, 1);
    await first.sigkill();
    await endUnwatched(h, c);
    const bystander = await h.startBystander();
    h.db.prepare('UPDATE processes SET pid = ?, start_ticks = ? WHERE id = ?').run(bystander.pid, bystander.startTicks, c.record.id);
    rmSync(exitFilePath(c.record.runDir));
    expect(h.row(c.record.id).pgid).not.toBe(bystander.pid);

    const second = await startSupervisor(h.home);
    // Recovery is awaited before the ready line, so the row is decided by now.
    expect(h.row(c.record.id)).toMatchObject({ status: 'lost', pid: bystander.pid });
    expect(isAlive(bystander.pid)).toBe(true);
    expect(existsSync(bystander.signalFile)).toBe(false);
    await second.stop();
  });
});

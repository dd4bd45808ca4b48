import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.js';
import { exitFilePath } from '../../src/process/spawn.js';
import { readStat } from '../../src/process/proc-fs.js';
import { openDatabase } from '../../src/store/database.js';
import type { ProcessRecord } from '../../src/store/process-repo.js';
import { isAlive, trackPid } from '../support/child-cleanup.js';
import { startManager, type TestManager } from '../support/manager.js';
import { waitFor } from '../support/wait-for.js';
import { fixture } from '../support/fixtures.js';

const foreverFixture = fixture('forever.mjs');

/** A process Chorus did not start, leading its own group like a Chorus process would. */
async function startStranger(): Promise<number> {
  const child = spawn(process.execPath, [foreverFixture], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
  const pid = trackPid(child.pid!, { group: true });
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  child.stdout!.destroy();
  child.unref();
  return pid;
}

interface Pointing {
  pid: number;
  pgid?: number;
  startTicks?: number;
  bootId?: string;
}

/**
 * A real row whose process ended without an exit status, then pointed (through SQL, as a stale row would be) at
 * another pid: still `running` in the store. Made by a client manager, so nothing settles it meanwhile.
 */
async function staleRow(home: string, pointing: Pointing): Promise<ProcessRecord> {
  const { manager: client } = await startManager({ home, supervise: false });
  const record = await client.spawn({ agent: 'demo', command: 'exit 0' });
  trackPid(record.pid!, { group: true });
  await waitFor(() => client.observe(client.repo.get(record.id)!).status !== 'running', { what: 'the short process to end' });
  rmSync(exitFilePath(record.runDir), { force: true });
  const stat = readStat(pointing.pid);
  const db = openDatabase(join(home, 'chorus.db'));
  try {
    db.prepare('UPDATE processes SET pid = ?, pgid = ?, start_ticks = ?, boot_id = COALESCE(?, boot_id) WHERE id = ?').run(
      pointing.pid, pointing.pgid ?? pointing.pid, pointing.startTicks ?? (stat ? stat.startTicks + 1 : 1), pointing.bootId ?? null, record.id,
    );
  } finally {
    db.close();
  }
  const row = client.repo.get(record.id)!;
  expect(row.status).toBe('running');
  return row;
}

async function rejection(promise: Promise<unknown>): Promise<AppError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
}

async function clientOn(home: string): Promise<TestManager> {
  return startManager({ home, supervise: false });
}

describe('identity before any signal (PID reuse)', () => {
  it('kill never signals a live process whose start time does not match; the row becomes lost', async () => {
    const { home } = await startManager({ supervise: false });
    const stranger = await startStranger();
    const row = await staleRow(home, { pid: stranger });
    const { manager } = await clientOn(home);

    const error = await rejection(manager.kill({ id: row.id }, { by: 'test', force: true }));

    expect(error.code).toBe('PROCESS_IDENTITY_MISMATCH');
    expect(error.message).toContain('nothing was signalled');
    expect(isAlive(stranger)).toBe(true);
    expect(manager.repo.get(row.id)).toMatchObject({ status: 'lost', signal: null, stoppedBy: null });
    expect(manager.repo.get(row.id)!.lostReason).toContain('not signalled');
  });

  it('kill by pid finds the stale row and still signals nothing', async () => {
    const { home } = await startManager({ supervise: false });
    const stranger = await startStranger();
    const row = await staleRow(home, { pid: stranger });
    const { manager } = await clientOn(home);

    const error = await rejection(manager.kill({ pid: stranger, agentName: 'demo' }, { by: 'test' }));

    expect(error.code).toBe('PROCESS_IDENTITY_MISMATCH');
    expect(isAlive(stranger)).toBe(true);
    expect(manager.repo.get(row.id)!.status).toBe('lost');
  });

  it('a changed boot id (a reboot) is a mismatch even when the start time matches', async () => {
    const { home } = await startManager({ supervise: false });
    const stranger = await startStranger();
    const row = await staleRow(home, { pid: stranger, startTicks: readStat(stranger)!.startTicks, bootId: 'another-boot' });
    const { manager } = await clientOn(home);

    const error = await rejection(manager.kill({ id: row.id }, { by: 'test' }));

    expect(error.code).toBe('PROCESS_IDENTITY_MISMATCH');
    expect(isAlive(stranger)).toBe(true);
    expect(manager.repo.get(row.id)!.status).toBe('lost');
  });

  it('restart leaves the stranger alone, marks the old row lost and starts the command anew', async () => {
    const { home } = await startManager({ supervise: false });
    const stranger = await startStranger();
    const row = await staleRow(home, { pid: stranger });
    const { manager } = await clientOn(home);

    const fresh = await manager.restart({ id: row.id }, { by: 'test' });
    trackPid(fresh.pid!, { group: true });

    expect(isAlive(stranger)).toBe(true);
    expect(fresh.pid).not.toBe(stranger);
    expect(fresh).toMatchObject({ status: 'running', restartedFrom: row.id, command: row.command });
    expect(manager.repo.get(row.id)!.status).toBe('lost');
  });

  it('a supervisor starting up settles such a row as lost without signalling it', async () => {
    const { home } = await startManager({ supervise: false });
    const stranger = await startStranger();
    const row = await staleRow(home, { pid: stranger });
    const lost: ProcessRecord[] = [];

    const { manager } = await startManager({ home, supervise: false });
    manager.on('lost', (record) => lost.push(record));
    await manager.startSupervising();

    expect(lost.map((r) => r.id)).toEqual([row.id]);
    expect(manager.isWatching(row.id)).toBe(false);
    expect(isAlive(stranger)).toBe(true);
    expect(manager.repo.get(row.id)!.status).toBe('lost');
  });

  it.each([
    ['pid 1', () => 1],
    ['the bot itself', () => process.pid],
    ['the bot\'s parent', () => process.ppid],
  ])('refuses to signal %s, even through a row that claims it', async (_what, pidOf) => {
    const pid = pidOf();
    const { home } = await startManager({ supervise: false });
    const stranger = await startStranger();
    const stat = readStat(pid)!;
    // The identity even matches: only the forbidden-pid rule stands between the request and the signal.
    const row = await staleRow(home, { pid, pgid: stranger, startTicks: stat.startTicks });
    const { manager } = await clientOn(home);

    const killError = await rejection(manager.kill({ id: row.id }, { by: 'test', force: true }));
    const restartError = await rejection(manager.restart({ id: row.id }, { by: 'test' }));

    expect(killError.code).toBe('PID_FORBIDDEN');
    expect(restartError.code).toBe('PID_FORBIDDEN');
    expect(isAlive(pid)).toBe(true);
    expect(isAlive(stranger)).toBe(true);
    expect(manager.repo.get(row.id)!.status).toBe('running');
    expect(manager.list({ status: 'running' })).toHaveLength(1);
  });
});

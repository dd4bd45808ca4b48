import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.js';
import type { LineEvent } from '../../src/process/events.js';
import type { ProcessManager } from '../../src/process/process-manager.js';
import type { ProcessRecord } from '../../src/store/process-repo.js';
import { isAlive, trackPid } from '../support/child-cleanup.js';
import { hostPid } from '../support/host-pid.js';
import { startManager } from '../support/manager.js';
import { nextEvent, waitFor } from '../support/wait-for.js';
import { fixture as fixturePath } from '../support/fixtures.js';

const node = JSON.stringify(process.execPath);

function fixture(name: string, ...args: string[]): string {
  return [node, JSON.stringify(fixturePath(name)), ...args].join(' ');
}

/** Spawns a fixture and waits until it has printed a line starting with each of `roles`; returns "<role> <pid>" pids. */
async function spawnAndWaitFor(
  manager: ProcessManager,
  command: string,
  roles: string[],
  agent = 'demo',
): Promise<{ record: ProcessRecord; pids: Record<string, number> }> {
  const pids: Record<string, number> = {};
  const onLine = (line: LineEvent) => {
    const [role, pid] = line.text.split(' ');
    if (role && roles.includes(role)) pids[role] = trackPid(hostPid(Number(pid), manager.repo.get(line.processId)!));
  };
  manager.on('line', onLine);
  try {
    const record = await manager.spawn({ agent, command });
    await waitFor(() => roles.every((role) => pids[role] !== undefined), { what: `lines from ${roles.join(', ')}` });
    return { record, pids };
  } finally {
    manager.off('line', onLine);
  }
}

function groupOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

async function rejection(promise: Promise<unknown>): Promise<AppError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
}

describe('kill', () => {
  it('stops a tree that honours SIGTERM with SIGTERM, and every process of it is gone', async () => {
    const { manager } = await startManager();
    const { record, pids } = await spawnAndWaitFor(manager, fixture('spawns-tree.mjs'), ['parent', 'child', 'grandchild']);
    const all = [record.pid!, pids.parent!, pids.child!, pids.grandchild!];
    expect(all.every(isAlive)).toBe(true);
    const killedEvent = nextEvent<[ProcessRecord]>(manager, 'killed');

    const stopped = await manager.kill({ id: record.id }, { by: 'test' });

    expect(stopped).toMatchObject({ status: 'killed', signal: 'SIGTERM', stoppedBy: 'test' });
    expect(stopped.endedAt).not.toBeNull();
    expect(all.filter(isAlive)).toEqual([]);
    expect((await killedEvent)[0].id).toBe(record.id);
    expect(manager.repo.get(record.id)!.status).toBe('killed');
  });

  it('SIGKILLs a process that ignores SIGTERM once the grace period is over', async () => {
    const { manager } = await startManager({ graceMs: 300 });
    const { record, pids } = await spawnAndWaitFor(manager, fixture('ignores-sigterm.mjs'), ['ready']);
    const startedAt = Date.now();

    const stopped = await manager.kill({ id: record.id }, { by: 'test' });

    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(300);
    expect(stopped).toMatchObject({ status: 'killed', signal: 'SIGKILL' });
    expect([record.pid!, pids.ready!].filter(isAlive)).toEqual([]);
    expect(readFileSync(record.stdoutLog, 'utf8')).toContain('ignoring SIGTERM');
  });

  it('also stops a grandchild that left the process group with setsid', async () => {
    const { manager } = await startManager();
    const { record, pids } = await spawnAndWaitFor(manager, fixture('spawns-setsid-grandchild.mjs'), ['parent', 'escaped']);
    expect(groupOf(pids.escaped!)).not.toBe(record.pgid);

    const stopped = await manager.kill({ id: record.id }, { by: 'test' });

    expect(stopped.status).toBe('killed');
    expect([record.pid!, pids.parent!, pids.escaped!].filter(isAlive)).toEqual([]);
  });

  it('with force goes straight to SIGKILL, without waiting for the grace period', async () => {
    const { manager } = await startManager({ graceMs: 20_000 });
    const { record, pids } = await spawnAndWaitFor(manager, fixture('ignores-sigterm.mjs'), ['ready']);
    const startedAt = Date.now();

    const stopped = await manager.kill({ id: record.id }, { by: 'test', force: true });

    expect(Date.now() - startedAt).toBeLessThan(5_000);
    expect(stopped).toMatchObject({ status: 'killed', signal: 'SIGKILL' });
    expect([record.pid!, pids.ready!].filter(isAlive)).toEqual([]);
    // It never saw a SIGTERM.
    expect(readFileSync(record.stdoutLog, 'utf8')).not.toContain('ignoring SIGTERM');
  });

  it('killAllForAgent stops that agent\'s processes and no other', async () => {
    const { manager } = await startManager();
    const a1 = await spawnAndWaitFor(manager, fixture('forever.mjs'), ['ready'], 'alpha');
    const a2 = await spawnAndWaitFor(manager, fixture('forever.mjs'), ['ready'], 'alpha');
    const b = await spawnAndWaitFor(manager, fixture('forever.mjs'), ['ready'], 'beta');

    const stopped = await manager.killAllForAgent('alpha', { by: 'test' });

    expect(stopped.map((r) => r.id).sort()).toEqual([a1.record.id, a2.record.id].sort());
    expect(stopped.every((r) => r.status === 'killed')).toBe(true);
    expect([a1.record.pid!, a1.pids.ready!, a2.record.pid!, a2.pids.ready!].filter(isAlive)).toEqual([]);
    expect(isAlive(b.record.pid!) && isAlive(b.pids.ready!)).toBe(true);
    expect(manager.repo.get(b.record.id)!.status).toBe('running');
    expect(manager.list({ status: 'running' }).map((r) => r.id)).toEqual([b.record.id]);
  });

  it('restart starts the same command in the same directory as a new process linked to the old row', async () => {
    const { manager, home } = await startManager();
    mkdirSync(join(home, 'agents', 'demo', 'workspace', 'sub'), { recursive: true });
    const pids: number[] = [];
    manager.on('line', (line) => {
      if (line.text.startsWith('ready ')) pids.push(trackPid(hostPid(Number(line.text.split(' ')[1]), manager.repo.get(line.processId)!)));
    });
    const old = await manager.spawn({ agent: 'demo', command: fixture('forever.mjs'), workingDirectory: 'sub', name: 'server' });
    await waitFor(() => pids.length === 1, { what: 'the first ready line' });

    const fresh = await manager.restart({ id: old.id }, { by: 'test' });
    trackPid(fresh.pid!, { group: true });
    await waitFor(() => pids.length === 2, { what: 'the second ready line' });

    expect(fresh.id).not.toBe(old.id);
    expect(fresh.pid).not.toBe(old.pid);
    expect(fresh).toMatchObject({
      status: 'running', restartedFrom: old.id, command: old.command, workingDirectory: old.workingDirectory,
      processType: old.processType, name: 'server', agentName: 'demo',
    });
    expect(fresh.workingDirectory).toBe(join(home, 'agents', 'demo', 'workspace', 'sub'));
    expect(fresh.runDir).not.toBe(old.runDir);
    expect(manager.repo.get(old.id)).toMatchObject({ status: 'killed', stoppedBy: 'test' });
    expect(isAlive(old.pid!) || isAlive(pids[0]!)).toBe(false);
    expect(isAlive(fresh.pid!) && isAlive(pids[1]!)).toBe(true);
  });

  it('refuses to kill a process that already ended, and signals nothing', async () => {
    const { manager } = await startManager();
    const exited = nextEvent<[ProcessRecord]>(manager, 'exited');
    const record = await manager.spawn({ agent: 'demo', command: `${node} -e "process.exit(4)"` });
    const [ended] = await exited;
    expect(ended).toMatchObject({ status: 'exited', exitCode: 4 });
    let signalled = 0;
    manager.on('killed', () => { signalled += 1; });

    const error = await rejection(manager.kill({ id: record.id }, { by: 'test' }));
    const byPid = await rejection(manager.kill({ pid: record.pid! }, { by: 'test' }));

    expect(error.code).toBe('PROCESS_NOT_RUNNING');
    expect(error.message).toContain('exited with code 4');
    expect(byPid.code).toBe('PROCESS_NOT_RUNNING');
    expect(signalled).toBe(0);
    expect(manager.repo.get(record.id)).toMatchObject({ status: 'exited', exitCode: 4, signal: null, stoppedBy: null, stopRequestedBy: null });
  });
});

describe('kill right after a spawn', () => {
  it('does not trust a /proc snapshot taken before the process existed (a stop in the same turn as another stop)', async () => {
    const { manager } = await startManager();
    const { snapshotTree } = await import('../../src/process/kill.js');
    // Another stop's scan earlier in this turn of the event loop, before the spawn below.
    snapshotTree({ pid: process.pid, pgid: process.pid, startTicks: 0, bootId: '' }, null);
    const record = await manager.spawn({ agent: 'demo', command: 'sleep 30' });
    const stopped = await manager.kill({ id: record.id }, { by: 'test' });
    expect(stopped.status).toBe('killed');
    // A stop confirms that everything is gone before it reports.
    expect(isAlive(record.pid!)).toBe(false);
  });
});

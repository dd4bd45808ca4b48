// What a spawning client does per spawn, kept cheap: its own lease read once per process, the process limit counted
// once under the write lock, and nothing stale when the directories or the environment change between spawns.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.js';
import { captureIdentity, selfLease } from '../../src/process/identity.js';
import { isRunBucket, processesDir, runDirPath } from '../../src/process/spawn.js';
import { openDatabase } from '../../src/store/database.js';
import { ProcessRepo, type ProcessRecord } from '../../src/store/process-repo.js';
import { trackPid } from '../support/child-cleanup.js';
import { startManager } from '../support/manager.js';
import { nextEvent } from '../support/wait-for.js';

function writeAgentJson(home: string, name: string, json: unknown): void {
  const dir = join(home, 'agents', name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'agent.json'), JSON.stringify(json));
}

describe('the spawn lease', () => {
  it('is this process, read once and handed out again while the pid is the same', () => {
    const lease = selfLease()!;
    const self = captureIdentity(process.pid)!;
    expect(lease).toEqual({ pid: process.pid, startTicks: self.startTicks, bootId: self.bootId });
    expect(selfLease()).toBe(lease);
  });

  it('is read anew under another pid (a forked copy of the process), never the cached one', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    trackPid(child.pid!);
    const own = selfLease()!;
    const real = Object.getOwnPropertyDescriptor(process, 'pid')!;
    Object.defineProperty(process, 'pid', { ...real, value: child.pid });
    let other;
    try {
      other = selfLease();
    } finally {
      Object.defineProperty(process, 'pid', real);
    }
    expect(other).toEqual({ pid: child.pid, startTicks: captureIdentity(child.pid!)!.startTicks, bootId: own.bootId });
    expect(selfLease()).toEqual(own);
    child.kill('SIGKILL');
  });

  it('is what a starting row carries', async () => {
    const { manager } = await startManager({ supervise: false });
    const seen: Array<ProcessRecord['spawner']> = [];
    const repo = new ProcessRepo(manager.db);
    const record = await manager.spawn({ agent: 'demo', command: 'exit 0', withRow: (id) => seen.push(repo.get(id)!.spawner) });
    trackPid(record.pid!, { group: true });
    expect(seen).toEqual([selfLease()]);
  });
});

describe('the process limit', () => {
  it('refuses the spawn past max_processes with nothing written, counting starting rows of other spawners', async () => {
    const { manager, home } = await startManager({ supervise: false });
    writeAgentJson(home, 'demo', { max_processes: 2 });
    const first = await manager.spawn({ agent: 'demo', command: 'sleep 30' });
    trackPid(first.pid!, { group: true });
    // Another spawner (a CLI) has a row starting: it counts, as it will run.
    const other = new ProcessRepo(openDatabase(join(home, 'chorus.db')));
    const starting = other.insertStarting({
      command: 'sleep 30', name: null, category: null, workingDirectory: home, agentName: 'demo', processType: 'background',
      spawnedByBranch: null, contextJson: null, modelForHooks: null, hookRecursionDepth: 0, timeoutSeconds: null,
      restartedFrom: null, isInteractive: false, isTty: false, sandbox: 'none',
    }, new Date().toISOString());
    const runDirs = readdirSync(processesDir(home, 'demo'));
    let withRowCalls = 0;

    const error = await manager.spawn({ agent: 'demo', command: 'sleep 30', withRow: () => { withRowCalls += 1; } }).then(() => undefined, (e: unknown) => e);

    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('PROCESS_LIMIT');
    expect((error as AppError).message).toContain('agent demo already runs 2 of 2 processes');
    expect(withRowCalls).toBe(0);
    expect(readdirSync(processesDir(home, 'demo'))).toEqual(runDirs);
    expect(other.countActive('demo')).toBe(2);

    // Once the other spawn is gone, there is room again.
    other.delete(starting);
    const second = await manager.spawn({ agent: 'demo', command: 'sleep 30' });
    trackPid(second.pid!, { group: true });
    expect(second.status).toBe('running');
  });
});

describe('run directories', () => {
  it('go in a bucket named by the minute (UTC), one directory a row', () => {
    const at = new Date('2026-12-02T04:38:59.123Z');
    expect(runDirPath('/home/p', 1234, at)).toBe(`/home/p/20261202-0438/1234-${at.getTime().toString(36)}`);
    expect(runDirPath('/home/p', 1235, new Date('2026-01-09T23:05:00.000Z'))).toMatch(/^\/home\/p\/20260109-2305\/1235-[0-9a-z]+$/);
    expect(isRunBucket('20261202-0438')).toBe(true);
    expect(isRunBucket('1234-mx5l5fjx')).toBe(false);
  });

  it('a spawn makes its bucket when the minute has none, and shares it otherwise', async () => {
    const { manager, home } = await startManager();
    const first = await manager.spawn({ agent: 'demo', command: 'exit 0' });
    const second = await manager.spawn({ agent: 'demo', command: 'exit 0' });
    const bucketOf = (record: ProcessRecord) => dirname(record.runDir);
    expect(dirname(bucketOf(first))).toBe(processesDir(home, 'demo'));
    expect(isRunBucket(basename(bucketOf(first)))).toBe(true);
    // Two spawns a moment apart share the bucket, unless a minute ended between them.
    if (bucketOf(second) !== bucketOf(first)) expect(basename(bucketOf(second)) > basename(bucketOf(first))).toBe(true);
    expect(existsSync(first.stdoutLog) && existsSync(second.stdoutLog)).toBe(true);
  });
});

describe('directories between spawns', () => {
  it('a processes directory (or a whole workspace) deleted between two spawns is made again', async () => {
    const { manager, home } = await startManager();
    const exited = nextEvent<[ProcessRecord]>(manager, 'exited');
    await manager.spawn({ agent: 'demo', command: 'exit 0' });
    await exited;
    rmSync(processesDir(home, 'demo'), { recursive: true, force: true });
    rmSync(join(home, 'agents', 'demo', 'workspace'), { recursive: true, force: true });

    const again = nextEvent<[ProcessRecord]>(manager, 'exited');
    const record = await manager.spawn({ agent: 'demo', command: 'echo again' });
    const [ended] = await again;
    expect(ended.id).toBe(record.id);
    expect(ended.exitCode).toBe(0);
    expect(existsSync(record.stdoutLog)).toBe(true);
  });
});

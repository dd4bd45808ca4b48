import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildChildEnv } from '../../src/process/environment.js';
import { Forker } from '../../src/process/forker.js';
import { captureIdentity, type ProcessIdentity } from '../../src/process/identity.js';
import { readStat } from '../../src/process/proc-fs.js';
import { commandArgv, shimArgs } from '../../src/process/shim.js';
import { exitFilePath, processesDir, RUN_MARKER_NAME } from '../../src/process/spawn.js';
import type { ProcessRecord } from '../../src/store/process-repo.js';
import { isAlive } from '../support/child-cleanup.js';
import { AGENT, RecoveryHome, shellWords, sizeOf, trackGroup } from '../support/recovery-home.js';
import { startSupervisor } from '../support/supervisor-process.js';
import { waitFor } from '../support/wait-for.js';

/** A row as a crash between the insert and the pid update leaves it: `starting`, with its paths, and no pid. */
function insertStartingRow(h: RecoveryHome, name: string, command: string, spawner?: ProcessIdentity): ProcessRecord {
  const workspace = join(h.home, 'agents', AGENT, 'workspace');
  mkdirSync(workspace, { recursive: true });
  const id = h.repo.transaction(() => {
    const rowId = h.repo.insertStarting({
      command, name, category: null, workingDirectory: workspace, agentName: AGENT, processType: 'background',
      spawnedByBranch: null, contextJson: null, modelForHooks: null, hookRecursionDepth: 0, timeoutSeconds: null, restartedFrom: null, sandbox: 'none',
      isInteractive: false, isTty: false,
    }, new Date().toISOString(), spawner);
    const runDir = join(processesDir(h.home, AGENT), `${rowId}-cut-short`);
    h.repo.setPaths(rowId, runDir, join(runDir, 'stdout.log'), join(runDir, 'stderr.log'));
    return rowId;
  });
  const record = h.row(id);
  mkdirSync(record.runDir, { recursive: true, mode: 0o700 });
  return record;
}

/** A shim the tests can start: the sh shim (perl forker) or the native forker's own (found by its stdout log). */
type ShimKind = 'sh' | 'native';
const native = Forker.findNative();

/** Starts the real shim for a row, detached with the run marker, the way spawnProcess does, and stores nothing. */
async function startShim(record: ProcessRecord, kind: ShimKind = 'sh'): Promise<number> {
  const env = buildChildEnv(process.env, {}, { [RUN_MARKER_NAME]: record.runDir, CHORUS_AGENT: AGENT, CHORUS_PROCESS_ID: String(record.id) });
  if (kind === 'native') {
    if (!native) throw new Error('the native forker was not built (npm run build needs a C compiler): CI must test it');
    const pid = await native.launch({
      argv: commandArgv(record.command).argv, shim: {}, cwd: record.workingDirectory, env,
      stdoutLog: record.stdoutLog, stderrLog: record.stderrLog, exitFile: exitFilePath(record.runDir),
    });
    trackGroup(pid);
    return pid;
  }
  const fds = [openSync(record.stdoutLog, 'a', 0o600), openSync(record.stderrLog, 'a', 0o600)];
  try {
    const child = spawn('/bin/sh', shimArgs(exitFilePath(record.runDir), commandArgv(record.command).argv), {
      cwd: record.workingDirectory,
      env,
      detached: true,
      stdio: ['ignore', fds[0]!, fds[1]!],
    });
    child.unref();
    trackGroup(child.pid!);
    return child.pid!;
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

afterAll(() => native?.close());

// The native shim must be tested wherever it can be built; CI builds it (.ci/run).
const shimKinds: ShimKind[] = native || process.env.CI ? ['sh', 'native'] : ['sh'];

describe('recovery of a spawn cut short', () => {
  it.each(shimKinds)('adopts a starting row whose %s shim runs (found by its run marker), settles one that ended, marks one with no process lost', async (kind) => {
    const h = new RecoveryHome();
    const live = h.tickerArgs('live', 8, 100);
    const liveRow = insertStartingRow(h, 'live', shellWords(live.words));
    const shimPid = await startShim(liveRow, kind);

    const done = h.tickerArgs('done', 9, 10);
    writeFileSync(done.stopFile, '');
    const doneRow = insertStartingRow(h, 'done', shellWords(done.words));
    const donePid = await startShim(doneRow, kind);
    await waitFor(() => existsSync(exitFilePath(doneRow.runDir)) && !isAlive(donePid), { what: 'the ended shim to leave its exit file' });

    const noneRow = insertStartingRow(h, 'none', shellWords(h.tickerArgs('none', 0, 100).words));
    await waitFor(() => sizeOf(liveRow.stdoutLog) > 0, { what: 'the live shim to print' });
    expect(h.repo.listActive().map((r) => r.status)).toEqual(['starting', 'starting', 'starting']);

    const supervisor = await startSupervisor(h.home);
    await waitFor(() => h.repo.listActive().every((r) => r.status !== 'starting'), { what: 'no row to stay starting' });

    const adopted = h.row(liveRow.id);
    expect(adopted).toMatchObject({ status: 'running', pid: shimPid, pgid: shimPid, startTicks: readStat(shimPid)!.startTicks });
    expect(await h.waitForEnd(doneRow.id)).toMatchObject({ status: 'exited', exitCode: 9 });
    const lost = await h.waitForEnd(noneRow.id);
    expect(lost).toMatchObject({ status: 'lost', exitCode: null, pid: null });
    expect(lost.lostReason).toMatch(/vanished/);

    const printed = sizeOf(liveRow.stdoutLog);
    expect((await h.waitForStdoutOffset(liveRow.id, printed)).status).toBe('running');
    writeFileSync(live.stopFile, '');
    const ended = await h.waitForEnd(liveRow.id);
    expect(ended).toMatchObject({ status: 'exited', exitCode: 8 });
    expect(ended.stdoutOffset).toBe(sizeOf(liveRow.stdoutLog));
    expect(await supervisor.stop()).toEqual({ code: 0, signal: null });
  });

  it('never judges a spawn whose spawner still runs; once the spawner is gone, the run marker decides', async () => {
    const h = new RecoveryHome();
    // A spawner that is still alive (this test) has inserted its row and not spawned yet.
    const self = captureIdentity(process.pid)!;
    const inProgress = insertStartingRow(h, 'in-progress', shellWords(h.tickerArgs('in-progress', 0, 100).words), self);
    // A spawner that died before spawning: its lease names a process that is gone, and no process carries the marker.
    const dead = spawn(process.execPath, ['-e', '0']);
    const deadPid = dead.pid!;
    const deadIdentity = captureIdentity(deadPid) ?? { pid: deadPid, pgid: deadPid, startTicks: 1, bootId: self.bootId };
    await new Promise((resolve) => dead.once('exit', resolve));
    const abandoned = insertStartingRow(h, 'abandoned', shellWords(h.tickerArgs('abandoned', 0, 100).words), deadIdentity);

    const supervisor = await startSupervisor(h.home);
    // The abandoned row is judged in the same pass that sees the one in progress.
    expect(await h.waitForEnd(abandoned.id)).toMatchObject({ status: 'lost', pid: null });
    expect(h.row(inProgress.id).status).toBe('starting');

    // The spawner now starts the shim and records it, as spawnProcess does: the supervisor adopts it as running.
    const live = h.tickerArgs('in-progress', 7, 100);
    const shimPid = await startShim({ ...inProgress, command: shellWords(live.words) });
    h.repo.transaction(() => h.repo.markRunning(inProgress.id, captureIdentity(shimPid)!, inProgress.startedAt));
    await waitFor(() => sizeOf(inProgress.stdoutLog) > 0, { what: 'the shim to print' });
    expect((await h.waitForStdoutOffset(inProgress.id, 1)).status).toBe('running');
    writeFileSync(live.stopFile, '');
    expect(await h.waitForEnd(inProgress.id)).toMatchObject({ status: 'exited', exitCode: 7 });
    expect(await supervisor.stop()).toEqual({ code: 0, signal: null });
  });
});

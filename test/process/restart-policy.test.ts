import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HookEngine } from '../../src/hooks/hook-engine.js';
import { silentLogger } from '../../src/logger.js';
import { parseRestartPolicy } from '../../src/process/supervision-spec.js';
import type { ProcessRecord } from '../../src/store/process-repo.js';
import { startManager } from '../support/manager.js';
import { AGENT, RecoveryHome, trackGroup } from '../support/recovery-home.js';
import { RecordingPort } from '../support/recording-port.js';
import { startSupervisor } from '../support/supervisor-process.js';
import { nextEvent, waitFor } from '../support/wait-for.js';
import { fixture } from '../support/fixtures.js';

const node = JSON.stringify(process.execPath);
const CRASH_THEN_STAY = fixture('crash-then-stay.mjs');
/** The fixture's counter lives in the agent's workspace: a sandboxed child sees nothing else of the home. */
const workspaceFile = (home: string, name: string) => {
  const dir = join(home, 'agents', 'demo', 'workspace');
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
};
const crashThenStay = (counterFile: string, crashes: number) => `${node} ${JSON.stringify(CRASH_THEN_STAY)} ${JSON.stringify(counterFile)} ${crashes}`;

async function setup() {
  const { home, manager } = await startManager();
  const port = new RecordingPort();
  const hooks = new HookEngine({ manager, port, log: silentLogger(), cooldownMs: 300 });
  const start = (command: string, restart: unknown, hookInput: unknown = []) => {
    const { store } = hooks.prepare(hookInput);
    return manager.spawn({ agent: 'demo', command, restartJson: JSON.stringify(parseRestartPolicy(restart)), withRow: store });
  };
  /** Every run of the logical process that starts at `first`, oldest first. */
  const runs = (first: ProcessRecord) => {
    const all = [manager.repo.get(first.id)!];
    while (all.at(-1)!.supersededBy !== null) all.push(manager.repo.get(all.at(-1)!.supersededBy!)!);
    return all;
  };
  return { home, manager, hooks, port, start, runs };
}

describe('restart policies', () => {
  it('restarts a program that crashes three times with growing delays; one handle; the count resets after min_uptime_seconds', async () => {
    const { home, manager, start, runs } = await setup();
    const counter = workspaceFile(home, 'runs');
    const first = await start(crashThenStay(counter, 3), { on: 'failure', backoff_seconds: 0.3, max_backoff_seconds: 10, min_uptime_seconds: 2 });
    const current = await waitFor(() => {
      const all = runs(first);
      const last = all.at(-1)!;
      return all.length === 4 && last.status === 'running' ? last : undefined;
    }, { timeoutMs: 20_000, what: 'the fourth run' });
    const all = runs(first);
    expect(all.map((r) => r.status)).toEqual(['exited', 'exited', 'exited', 'running']);
    expect(all.map((r) => r.exitCode)).toEqual([1, 1, 1, null]);
    expect(all.map((r) => r.restartedFrom)).toEqual([null, all[0]!.id, all[1]!.id, all[2]!.id]);
    expect(all.map((r) => r.restartCount)).toEqual([0, 1, 2, 3]);
    expect(current.restartStreak).toBe(3);
    // Each run keeps its own logs.
    expect(new Set(all.map((r) => r.stdoutLog)).size).toBe(4);
    expect(readFileSync(all[1]!.stdoutLog, 'utf8')).toBe('run 2 crashing\n');
    // Growing delays: 0.3 s, 0.6 s, 1.2 s between an end and the next start.
    const gaps = all.slice(1).map((r, i) => Date.parse(r.startedAt) - Date.parse(all[i]!.endedAt!));
    expect(gaps[0]).toBeGreaterThanOrEqual(280);
    expect(gaps[1]).toBeGreaterThanOrEqual(580);
    expect(gaps[2]).toBeGreaterThanOrEqual(1_180);
    // One logical handle: the first pid names the current run; the list shows one entry.
    expect(manager.find({ pid: first.pid!, agentName: 'demo' })!.id).toBe(current.id);
    expect(manager.list({ agentName: 'demo' }).map((r) => r.id)).toEqual([current.id]);
    // Up for min_uptime_seconds: the count in a row starts again; the total stays.
    const reset = await waitFor(() => {
      const row = manager.repo.get(current.id)!;
      return row.restartStreak === 0 ? row : undefined;
    }, { timeoutMs: 10_000, what: 'the streak to reset' });
    expect(Date.now() - Date.parse(reset.startedAt)).toBeGreaterThanOrEqual(1_900);
    expect(reset.restartCount).toBe(3);
    expect(reset.status).toBe('running');
  });

  it('one that always crashes ends in crash_loop with exactly one notice carrying the last runs', async () => {
    const { manager, hooks, port, start, runs } = await setup();
    const first = await start(`${node} -e "console.log('starting up'); console.error('fatal: no config'); process.exit(2)"`, { on: 'always', max_restarts: 3, backoff_seconds: 0.1 }, [
      { trigger: { type: 'on_exit', exit_filter: 'failure' }, action: 'notify_channel', max_fires: 10 },
    ]);
    const [looped] = await nextEvent<[ProcessRecord]>(manager, 'exited', (p) => p.status === 'crash_loop', 20_000);
    const all = runs(first);
    expect(all).toHaveLength(4);
    expect(all.at(-1)!.id).toBe(looped.id);
    expect(looped).toMatchObject({ status: 'crash_loop', exitCode: 2, restartCount: 3 });
    await waitFor(() => port.actions.length >= 1);
    await hooks.idle();
    expect(port.actions).toHaveLength(1);
    const [notice] = port.actions;
    expect(notice!.context.cause).toBe('exit');
    expect(notice!.context.status).toBe('crash_loop');
    expect(notice!.context.runs!.map((r) => r.exitCode)).toEqual([2, 2, 2]);
    expect(notice!.context.runs![0]!.tail).toEqual(['starting up', '[stderr] fatal: no config']);
    expect(notice!.text).toContain('crash loop');
    // The earlier runs' exit hooks never fired and are never settled later as missed.
    for (const run of all.slice(0, 3)) expect(hooks.repo.firingsForProcess(run.id)).toEqual([]);
    expect(manager.find({ pid: first.pid!, agentName: 'demo' })!.status).toBe('crash_loop');
    expect(manager.list({ agentName: 'demo' })).toHaveLength(1);
  });

  it('a stop someone asked for never restarts, even with on: always; a clean exit does not restart on: failure', async () => {
    const { home, manager, start } = await setup();
    const stay = await start(crashThenStay(workspaceFile(home, 'a'), 0), { on: 'always', backoff_seconds: 0.1 });
    await waitFor(() => readFileSync(manager.repo.get(stay.id)!.stdoutLog, 'utf8').includes('up'));
    const stopped = await manager.kill({ id: stay.id }, { by: 'agent:demo' });
    expect(stopped.status).toBe('killed');
    const clean = await start(`${node} -e "process.exit(0)"`, { on: 'failure', backoff_seconds: 0.1 });
    const [exited] = await nextEvent<[ProcessRecord]>(manager, 'exited', (p) => p.id === clean.id);
    expect(exited.status).toBe('exited');
    // A witness proves time passed for a restart that never came.
    const witness = await manager.spawn({ agent: 'demo', command: `${node} -e "setTimeout(() => {}, 400)"` });
    await nextEvent(manager, 'exited', (p: ProcessRecord) => p.id === witness.id);
    expect(manager.repo.get(stay.id)!.supersededBy).toBeNull();
    expect(manager.repo.get(clean.id)!.supersededBy).toBeNull();
  });

  it('a stop asked for while a restart is pending cancels it', async () => {
    const { manager, start } = await setup();
    const first = await start(`${node} -e "process.exit(1)"`, { on: 'failure', backoff_seconds: 30, max_backoff_seconds: 30 });
    const [restarting] = await nextEvent<[ProcessRecord]>(manager, 'restarting', (p) => p.id === first.id);
    expect(restarting.restartDueAt).toEqual(expect.any(String));
    const stopped = await manager.kill({ pid: first.pid!, agentName: 'demo' }, { by: 'agent:demo' });
    expect(stopped).toMatchObject({ id: first.id, status: 'killed', stoppedBy: 'agent:demo', restartDueAt: null, exitCode: 1 });
  });
});

describe('a pending restart and a supervisor crash', () => {
  it('survives a SIGKILL of the supervisor and happens exactly once', async () => {
    const h = new RecoveryHome();
    const counter = workspaceFile(h.home, 'runs');
    const first = await h.client.spawn({
      agent: AGENT, command: crashThenStay(counter, 1),
      restartJson: JSON.stringify(parseRestartPolicy({ on: 'failure', backoff_seconds: 3, max_backoff_seconds: 3 })),
    });
    trackGroup(first.pid!);
    const supervisor = await startSupervisor(h.home);
    const pending = await waitFor(() => {
      const row = h.row(first.id);
      return row.status === 'restarting' ? row : undefined;
    }, { timeoutMs: 10_000, what: 'the pending restart to be stored' });
    await supervisor.sigkill();
    expect(pending.restartDueAt).toEqual(expect.any(String));
    expect(readFileSync(counter, 'utf8')).toBe('1');

    const next = await startSupervisor(h.home);
    const second = await waitFor(() => {
      const row = h.row(first.id);
      const run = row.supersededBy !== null ? h.row(row.supersededBy) : undefined;
      return run?.status === 'running' ? run : undefined;
    }, { timeoutMs: 15_000, what: 'the next run' });
    trackGroup(second.pgid!);
    await waitFor(() => readFileSync(second.stdoutLog, 'utf8') === 'run 2 up\n');
    // Never before its stored due time, and only once: a witness picked up after it proves the supervisor moved on.
    expect(Date.parse(second.startedAt)).toBeGreaterThanOrEqual(Date.parse(pending.restartDueAt!) - 50);
    const witness = await h.spawnTicker('witness');
    await h.waitForStdoutOffset(witness.record.id, 1, 15_000);
    expect(readFileSync(counter, 'utf8')).toBe('2');
    expect(h.repo.list({ agentName: AGENT, status: 'all' }).map((r) => r.id).sort()).toEqual([second.id, witness.record.id].sort());
    expect(h.row(first.id)).toMatchObject({ status: 'exited', exitCode: 1, supersededBy: second.id });
    expect(h.row(second.id)).toMatchObject({ restartCount: 1, restartedFrom: first.id });
    await next.stop();
  });
});

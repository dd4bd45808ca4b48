import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HookEngine } from '../../src/hooks/hook-engine.js';
import { silentLogger } from '../../src/logger.js';
import { parseRestartPolicy } from '../../src/process/supervision-spec.js';
import type { ProcessRecord } from '../../src/store/process-repo.js';
import { startManager } from '../support/manager.js';
import { RecordingPort } from '../support/recording-port.js';
import { nextEvent, waitFor } from '../support/wait-for.js';
import { fixture } from '../support/fixtures.js';

const node = JSON.stringify(process.execPath);
const script = (code: string) => `${node} -e ${JSON.stringify(code)}`;
const ALLOCATES = fixture('allocates.mjs');

async function setup() {
  const { manager } = await startManager({ resourceIntervalMs: 200 });
  const port = new RecordingPort();
  const hooks = new HookEngine({ manager, port, log: silentLogger(), cooldownMs: 300 });
  const spawn = (command: string, hookInput: unknown, extra: Record<string, unknown> = {}) => {
    const { store } = hooks.prepare(hookInput);
    return manager.spawn({ agent: 'demo', command, withRow: store, ...extra });
  };
  return { manager, hooks, port, spawn };
}

describe('silence watchdog (on_idle)', () => {
  it('fires on a process that goes quiet, again only after new output and another silence', async () => {
    const { hooks, port, spawn } = await setup();
    // Talks for 0.6 s, is quiet for 2.5 s, prints once more, then stays quiet.
    const record = await spawn(script(`let i = 0; const t = setInterval(() => { console.log('tick ' + i++); if (i === 6) { clearInterval(t); setTimeout(() => console.log('once more'), 2500); } }, 100); setInterval(() => {}, 1e9);`), [
      { trigger: { type: 'on_idle', idle_seconds: 1 }, action: 'notify_channel', max_fires: 5 },
    ]);
    const first = await waitFor(() => port.actions[0], { what: 'the first idle firing' });
    expect(first.context.cause).toBe('idle');
    expect(first.text).toContain('printed nothing for');
    expect(first.context.outputTail.at(-1)).toBe('tick 5');
    // Silent long after: still one firing until new output.
    const second = await waitFor(() => port.actions[1], { timeoutMs: 10_000, what: 'the second idle firing, after "once more"' });
    expect(second.context.outputTail.at(-1)).toBe('once more');
    expect(second.at - first.at).toBeGreaterThanOrEqual(1_500);
    await hooks.idle();
    expect(hooks.repo.firingsForProcess(record.id).map((f) => f.cause)).toEqual(['idle', 'idle']);
    expect(hooks.hooksFor(record.id)[0]!.row.fireCount).toBe(2);
  });

  it('does not fire on a process that keeps talking', async () => {
    const { manager, hooks, port, spawn } = await setup();
    const record = await spawn(script(`let i = 0; const t = setInterval(() => { console.log('tick ' + i++); if (i === 25) process.exit(0); }, 100);`), [
      { trigger: { type: 'on_idle', idle_seconds: 1 }, action: 'notify_channel' },
    ]);
    await nextEvent(manager, 'exited', (p: ProcessRecord) => p.id === record.id);
    await hooks.idle();
    expect(port.actions).toEqual([]);
    expect(hooks.repo.firingsForProcess(record.id)).toEqual([]);
  });
});

describe('resource watchdog (on_resource)', () => {
  it('stops a process that allocates past memory_mb (max_memory_restart done with stop_process)', async () => {
    const { manager, hooks, spawn } = await setup();
    const record = await spawn(`${node} ${JSON.stringify(ALLOCATES)} 200 300`, [
      { trigger: { type: 'on_resource', memory_mb: 120 }, action: 'stop_process' },
    ]);
    const [killed] = await nextEvent<[ProcessRecord]>(manager, 'killed', (p) => p.id === record.id, 15_000);
    const hookId = hooks.hooksFor(record.id)[0]!.row.id;
    expect(killed.stoppedBy).toBe(`hook:${hookId}`);
    await hooks.idle();
    const [firing] = hooks.repo.firingsForProcess(record.id);
    expect(firing).toMatchObject({ cause: 'resource', status: 'done' });
    expect(JSON.parse(firing!.payloadJson).reason).toMatch(/^memory \d+\.\d MiB is above 120 MiB/);
  });

  it('looks at memory alone at the watch rate (10 s by default), and at the active rate once a CPU bound is watched', async () => {
    const { manager: defaults } = await startManager({ resourceWatchIntervalMs: undefined, supervise: false });
    expect(defaults.resources.watchIntervalMs).toBe(10_000);
    const { manager } = await startManager({ resourceIntervalMs: 300, resourceWatchIntervalMs: 4_000 });
    const hooks = new HookEngine({ manager, port: new RecordingPort(), log: silentLogger() });
    const spawn = (hookInput: unknown) => manager.spawn({ agent: 'demo', command: 'sleep 30', withRow: hooks.prepare(hookInput).store });
    expect(manager.resources.intervalMs).toBeUndefined();
    const memory = await spawn([{ trigger: { type: 'on_resource', memory_mb: 4096 }, action: 'notify_channel' }]);
    await waitFor(() => manager.resources.intervalMs === 4_000, { what: 'the memory watchdog to sample at the watch rate' });
    const cpu = await spawn([{ trigger: { type: 'on_resource', cpu_percent: 99, for_seconds: 60 }, action: 'notify_channel' }]);
    await waitFor(() => manager.resources.intervalMs === 300, { what: 'the CPU watchdog to sample at the active rate' });
    await manager.kill({ id: cpu.id }, { by: 'test' });
    await waitFor(() => manager.resources.intervalMs === 4_000, { what: 'the rate to fall back once the CPU watchdog is gone' });
    await manager.kill({ id: memory.id }, { by: 'test' });
    await waitFor(() => manager.resources.intervalMs === undefined, { what: 'sampling to stop once nobody looks' });
  });

  it('restart_process restarts it through the restart path: counted, with backoff, until the crash loop', async () => {
    const { manager, hooks, port, spawn } = await setup();
    const first = await spawn(`${node} ${JSON.stringify(ALLOCATES)} 200 200`, [
      { trigger: { type: 'on_resource', memory_mb: 120 }, action: 'restart_process' },
      { trigger: { type: 'on_exit', exit_filter: 'failure' }, action: 'notify_channel' },
    ], { restartJson: JSON.stringify(parseRestartPolicy({ on: 'never', max_restarts: 2, backoff_seconds: 0.2 })) });
    const [looped] = await nextEvent<[ProcessRecord]>(manager, 'exited', (p) => p.status === 'crash_loop', 30_000);
    expect(looped.restartCount).toBe(2);
    expect(manager.find({ pid: first.pid!, agentName: 'demo' })!.id).toBe(looped.id);
    const firstRun = manager.repo.get(first.id)!;
    expect(firstRun).toMatchObject({ status: 'killed', supersededBy: expect.any(Number) });
    expect(firstRun.stoppedBy).toMatch(/^hook:\d+$/);
    await waitFor(() => port.actions.length === 1);
    await hooks.idle();
    expect(port.actions).toHaveLength(1);
    expect(port.actions[0]!.context.status).toBe('crash_loop');
  });
});

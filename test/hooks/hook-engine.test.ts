import { monitorEventLoopDelay } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { HookEngine } from '../../src/hooks/hook-engine.js';
import { silentLogger } from '../../src/logger.js';
import type { ProcessRecord } from '../../src/store/process-repo.js';
import { isAlive } from '../support/child-cleanup.js';
import { startManager } from '../support/manager.js';
import { RecordingPort } from '../support/recording-port.js';
import { nextEvent, waitFor } from '../support/wait-for.js';

const node = JSON.stringify(process.execPath);
const script = (code: string) => `${node} -e ${JSON.stringify(code)}`;

async function setup(options: { cooldownMs?: number; notifyPerMinute?: number } = {}) {
  const { home, manager } = await startManager();
  const port = new RecordingPort();
  const hooks = new HookEngine({
    manager, port, log: silentLogger(), cooldownMs: options.cooldownMs ?? 300,
    ...(options.notifyPerMinute === undefined ? {} : { notifyPerMinute: options.notifyPerMinute }),
  });
  const spawn = async (command: string, hookInput: unknown, extra: Record<string, unknown> = {}) => {
    const { store } = hooks.prepare(hookInput);
    return manager.spawn({ agent: 'demo', command, withRow: store, ...extra });
  };
  return { home, manager, hooks, port, spawn };
}

describe('hook engine', () => {
  it('spawns a branch with the context, the matched line and the output tail on a match', async () => {
    const { port, spawn, hooks } = await setup();
    const record = await spawn(script(`console.log('building'); console.log('step 2'); console.error('ERROR: disk full'); setTimeout(() => {}, 200)`), [
      { trigger: { type: 'on_output_match', pattern: 'ERROR: (\\w+)' }, action: 'spawn_branch', context_message: 'The build failed; fix it.' },
    ], { modelForHooks: 'small-model', hookRecursionDepth: 1 });
    const action = await waitFor(() => port.actions.find((a) => a.action === 'spawn_branch'));
    expect(action.context.processId).toBe(record.id);
    expect(action.context.matchedLines).toEqual(['ERROR: disk full']);
    expect(action.context.message).toBe('The build failed; fix it.');
    expect(action.context.modelForHooks).toBe('small-model');
    expect(action.context.depth).toBe(2);
    expect(action.context.text).toContain('The build failed; fix it.');
    expect(action.context.text).toContain('ERROR: disk full');
    expect(action.context.outputTail).toContain('building');
    await hooks.idle();
    const [firing] = hooks.repo.firingsForProcess(record.id);
    expect(firing).toMatchObject({ status: 'done', cause: 'output', stream: 'stderr', mergedCount: 1 });
    expect(hooks.hooksFor(record.id)[0]!.row.fireCount).toBe(1);
  });

  it('gathers the lines after a match for output_delay_seconds, so a stack trace arrives whole', async () => {
    const { port, spawn } = await setup();
    await spawn(script(`console.log('Traceback (most recent call last):'); let i = 0; const t = setInterval(() => { console.log('  frame ' + i++); if (i === 5) { clearInterval(t); console.log('ValueError: bad'); } }, 20);`), [
      { trigger: { type: 'on_output_match', pattern: '^Traceback' }, action: 'notify_channel', output_delay_seconds: 1 },
    ]);
    const action = await waitFor(() => port.actions.find((a) => a.action === 'notify_channel'));
    expect(action.context.matchedLines).toEqual([
      'Traceback (most recent call last):', '  frame 0', '  frame 1', '  frame 2', '  frame 3', '  frame 4', 'ValueError: bad',
    ]);
  });

  it.each(['^Traceback', 'Trace(back)+', 'Traceback.*call', 'FATAL|Traceback \\(most'])('finds one matching line in a burst of 60,000 and gathers the lines after it (%s)', async (pattern) => {
    const { port, spawn, manager } = await setup();
    const ended = nextEvent<[ProcessRecord]>(manager, 'exited', () => true, 20_000);
    const burst = `let s = ''; for (let i = 0; i < 60000; i++) s += (i === 41234 ? 'Traceback (most recent call last):' : 'INFO line ' + i) + '\\n'; process.stdout.write(s);`;
    const record = await spawn(script(burst), [{ trigger: { type: 'on_output_match', pattern }, action: 'notify_channel', output_delay_seconds: 1 }]);
    await ended;
    const action = await waitFor(() => port.actions.find((a) => a.action === 'notify_channel'), { timeoutMs: 10_000 });
    expect(action.context.matchedLines.slice(0, 4)).toEqual(['Traceback (most recent call last):', 'INFO line 41235', 'INFO line 41236', 'INFO line 41237']);
    expect(manager.repo.get(record.id)!.status).toBe('exited');
  });

  it('goes back to testing line by line when a pattern backtracks over whole windows, and still fires', async () => {
    const { port, spawn, hooks } = await setup();
    const burst = `let s = ''; for (let i = 0; i < 4000; i++) s += 'a'.repeat(60) + '\\n'; process.stdout.write(s); setTimeout(() => console.log('aab'), 300); setInterval(() => {}, 1e9)`;
    const record = await spawn(script(burst), [{ trigger: { type: 'on_output_match', pattern: '(a?){16}b' }, action: 'notify_channel' }]);
    const action = await waitFor(() => port.actions.find((a) => a.action === 'notify_channel'), { timeoutMs: 20_000 });
    expect(action.context.matchedLines).toEqual(['aab']);
    expect(hooks.repo.firingsForProcess(record.id)).toHaveLength(1);
  });

  it.each([
    { code: 0, filter: 'any', fires: true },
    { code: 0, filter: 'success', fires: true },
    { code: 0, filter: 'failure', fires: false },
    { code: 2, filter: 'any', fires: true },
    { code: 2, filter: 'success', fires: false },
    { code: 2, filter: 'failure', fires: true },
  ])('on_exit $filter with exit code $code fires: $fires', async ({ code, filter, fires }) => {
    const { port, spawn, manager, hooks } = await setup();
    const ended = nextEvent<[ProcessRecord]>(manager, 'exited');
    const record = await spawn(script(`process.exit(${code})`), [
      { trigger: { type: 'on_exit', exit_filter: filter }, action: 'notify_channel' },
    ]);
    await ended;
    await hooks.idle();
    await waitFor(() => hooks.repo.firingsForProcess(record.id).length === 1);
    const [firing] = hooks.repo.firingsForProcess(record.id);
    expect(firing!.status).toBe(fires ? 'done' : 'refused');
    expect(port.actions.length).toBe(fires ? 1 : 0);
    if (fires) expect(port.actions[0]!.context.exitCode).toBe(code);
  });

  it('does not fire exit hooks when someone stopped the process', async () => {
    const { port, spawn, manager, hooks } = await setup();
    const record = await spawn(script('setInterval(() => {}, 1000)'), [
      { trigger: { type: 'on_exit', exit_filter: 'failure' }, action: 'notify_channel' },
      { trigger: { type: 'on_exit', exit_filter: 'any' }, action: 'notify_channel' },
    ]);
    await manager.kill({ id: record.id }, { by: 'test' });
    await hooks.idle();
    expect(port.actions).toEqual([]);
    expect(hooks.repo.firingsForProcess(record.id)).toEqual([]);
  });

  it('fires on_timeout once, counted from the stored start, while the process still runs', async () => {
    const { port, spawn, hooks, manager } = await setup();
    const record = await spawn(script('setInterval(() => {}, 1000)'), [
      { trigger: { type: 'on_timeout', timeout_seconds: 1 }, action: 'stop_process' },
    ]);
    const killed = await nextEvent<[ProcessRecord]>(manager, 'killed', (p) => p.id === record.id, 10_000);
    expect(killed[0].stoppedBy).toMatch(/^hook:\d+$/);
    expect(Date.parse(killed[0].endedAt!) - Date.parse(record.startedAt)).toBeGreaterThanOrEqual(1000);
    await hooks.idle();
    expect(hooks.repo.firingsForProcess(record.id).map((f) => [f.cause, f.status])).toEqual([['timeout', 'done']]);
    expect(port.actions).toEqual([]);
    expect(isAlive(record.pid!)).toBe(false);
  });

  it('merges a flood of 10,000 matching lines into a few firings with the right counts', async () => {
    const { spawn, hooks, manager } = await setup({ cooldownMs: 200 });
    const ended = nextEvent<[ProcessRecord]>(manager, 'exited');
    const record = await spawn(script(`let s = ''; for (let i = 0; i < 10000; i++) s += 'FAIL test ' + i + '\\n'; process.stdout.write(s);`), [
      { trigger: { type: 'on_output_match', pattern: 'FAIL' }, action: 'notify_channel', max_fires: 5 },
    ]);
    await ended;
    await waitFor(() => hooks.repo.firingsForProcess(record.id).every((f) => f.status === 'done'), { timeoutMs: 10_000 });
    await hooks.idle();
    const firings = hooks.repo.firingsForProcess(record.id);
    expect(firings.length).toBeGreaterThanOrEqual(1);
    expect(firings.length).toBeLessThanOrEqual(5);
    expect(firings.reduce((sum, f) => sum + f.mergedCount, 0)).toBe(10_000);
  });

  it('respects max_fires across separate matches, with the cooldown between them', async () => {
    const { port, spawn, hooks } = await setup({ cooldownMs: 100 });
    const record = await spawn(script(`let i = 0; const t = setInterval(() => { console.log('tick ' + i); if (++i === 12) clearInterval(t); }, 60);`), [
      { trigger: { type: 'on_output_match', pattern: 'tick' }, action: 'notify_channel', max_fires: 3 },
    ]);
    await waitFor(() => hooks.repo.firingsForProcess(record.id).length === 3 && port.actions.length === 3, { timeoutMs: 10_000 });
    await waitFor(() => hooks.repo.firingsForProcess(record.id).every((f) => f.status === 'done'));
    expect(hooks.hooksFor(record.id)[0]!.row.fireCount).toBe(3);
  });

  it('refuses spawn_branch past depth 3 and records why', async () => {
    const { port, spawn, hooks } = await setup();
    const record = await spawn(script(`console.log('boom')`), [
      { trigger: { type: 'on_output_match', pattern: 'boom' }, action: 'spawn_branch' },
    ], { hookRecursionDepth: 3 });
    await waitFor(() => hooks.repo.firingsForProcess(record.id)[0]?.status === 'refused');
    expect(hooks.repo.firingsForProcess(record.id)[0]!.result).toMatch(/depth 4.*limit of 3/);
    expect(port.actions).toEqual([]);
  });

  it('injects context into the branch that started the process, or spawns one when it is gone', async () => {
    const { port, spawn } = await setup();
    port.branches.add('branch-1');
    await spawn(script(`console.log('ready')`), [{ trigger: { type: 'on_output_match', pattern: 'ready' }, action: 'inject_context' }], { spawnedByBranch: 'branch-1' });
    await waitFor(() => port.actions.find((a) => a.action === 'inject_context'));
    await spawn(script(`console.log('ready')`), [{ trigger: { type: 'on_output_match', pattern: 'ready' }, action: 'inject_context' }], { spawnedByBranch: 'gone' });
    const fallback = await waitFor(() => port.actions.find((a) => a.action === 'spawn_branch'));
    expect(fallback.context.branchId).toBe('gone');
  });

  it('rate-limits notify_channel and reports what it suppressed', async () => {
    const { port, spawn, hooks } = await setup({ notifyPerMinute: 2 });
    for (let i = 0; i < 4; i += 1) {
      await spawn(script(`process.exit(1)`), [{ trigger: { type: 'on_exit' }, action: 'notify_channel' }]);
    }
    await waitFor(() => port.actions.length === 2 && hooks.repo.openFirings().length === 0);
    await hooks.idle();
    await spawn(script(`process.exit(1)`), [{ trigger: { type: 'on_exit' }, action: 'notify_channel' }]);
    await hooks.idle();
    expect(port.actions.length).toBe(2);
  });

  it('adds hooks to a running process and refuses them for an ended one', async () => {
    const { port, spawn, hooks, manager } = await setup();
    const record = await spawn(script(`setTimeout(() => console.log('late line'), 300); setTimeout(() => {}, 600)`), undefined);
    hooks.addHooks(record.id, [{ trigger: { type: 'on_output_match', pattern: 'late' }, action: 'notify_channel' }]);
    await waitFor(() => port.actions.length === 1);
    await nextEvent(manager, 'exited');
    expect(() => hooks.addHooks(record.id, [{ trigger: { type: 'on_exit' }, action: 'notify_channel' }])).toThrow(/running process/);
    expect(() => hooks.addHooks(record.id, [{ trigger: { type: 'on_crash' }, action: 'notify_channel' }])).toThrow(/hooks\[0\]\.trigger\.type/);
  });

  it('stores nothing when one hook of a spawn is bad', async () => {
    const { hooks, manager } = await setup();
    expect(() => hooks.prepare([
      { trigger: { type: 'on_exit' }, action: 'notify_channel' },
      { trigger: { type: 'on_output_match', pattern: '(a' }, action: 'notify_channel' },
    ])).toThrow(/hooks\[1\]\.trigger\.pattern/);
    expect(manager.list({ status: 'all' })).toEqual([]);
  });

  it('keeps the event loop responsive under hostile patterns and long lines', async () => {
    const { port, spawn, manager } = await setup();
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const ended = nextEvent<[ProcessRecord]>(manager, 'exited');
    await spawn(script(`const a = 'a'.repeat(8000); for (let i = 0; i < 50; i++) console.log(a + '!b'); console.log('done')`), [
      { trigger: { type: 'on_output_match', pattern: '(a+)+$' }, action: 'notify_channel' },
      { trigger: { type: 'on_output_match', pattern: '(x+x+)+y' }, action: 'notify_channel' },
      { trigger: { type: 'on_output_match', pattern: '([a-z]+)*!$' }, action: 'notify_channel' },
      { trigger: { type: 'on_output_match', pattern: '^done$' }, action: 'notify_channel' },
    ]);
    await ended;
    await waitFor(() => port.actions.some((a) => a.context.matchedLines[0] === 'done'));
    delay.disable();
    expect(delay.max / 1e6).toBeLessThan(1_000);
  });

  it('refuses a pattern that cannot run in linear time at registration', async () => {
    const { hooks } = await setup();
    expect(() => hooks.prepare([{ trigger: { type: 'on_output_match', pattern: '(.*a){20}' }, action: 'notify_channel' }]))
      .toThrow(/hooks\[0\]\.trigger\.pattern must be/);
  });
});

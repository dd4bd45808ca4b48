import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HookEngine } from '../../src/hooks/hook-engine.js';
import { silentLogger } from '../../src/logger.js';
import type { LineEvent } from '../../src/process/events.js';
import { portState, processTree } from '../../src/process/net-sockets.js';
import { parseReadySpec } from '../../src/process/supervision-spec.js';
import type { ProcessRecord } from '../../src/store/process-repo.js';
import { trackPid } from '../support/child-cleanup.js';
import { freePort } from '../support/free-port.js';
import { startManager } from '../support/manager.js';
import { RecordingPort } from '../support/recording-port.js';
import { nextEvent, waitFor } from '../support/wait-for.js';
import { fixture } from '../support/fixtures.js';

const node = JSON.stringify(process.execPath);
const FIXTURES = fixture('');
const lateServer = (port: number, listenDelayMs: number, healthyDelayMs = 0) =>
  `${node} ${JSON.stringify(join(FIXTURES, 'late-server.mjs'))} ${port} ${listenDelayMs} ${healthyDelayMs}`;

async function setup() {
  const { home, manager } = await startManager();
  const port = new RecordingPort();
  const hooks = new HookEngine({ manager, port, log: silentLogger(), cooldownMs: 300 });
  const start = (command: string, ready: unknown, hookInput: unknown = [], agent = 'demo') => {
    const { store } = hooks.prepare(hookInput);
    return manager.spawn({ agent, command, readyJson: JSON.stringify(parseReadySpec(ready)), withRow: store });
  };
  const listeningAt = (processId: number) => {
    let at: number | undefined;
    const listener = (line: LineEvent) => { if (line.processId === processId && line.text.startsWith('listening')) at ??= Date.now(); };
    manager.on('line', listener);
    return () => at;
  };
  return { home, manager, hooks, port, start, listeningAt };
}

describe('readiness', () => {
  it('a server that listens after a delay is ready on its port, from /proc, and on_ready fires once', async () => {
    const { manager, hooks, port, start } = await setup();
    const tcpPort = await freePort();
    const record = await start(lateServer(tcpPort, 700), { port: tcpPort, timeout_seconds: 30 }, [
      { trigger: { type: 'on_ready' }, action: 'notify_channel', max_fires: 5 },
    ]);
    expect(manager.repo.get(record.id)!.readyAt).toBeNull();
    const [ready] = await nextEvent<[ProcessRecord]>(manager, 'ready', (p) => p.id === record.id, 15_000);
    expect(ready.readyAt).toEqual(expect.any(String));
    expect(ready.readyError).toBeNull();
    // The port showed up in /proc/net/tcp: the readiness is not older than the bind.
    expect(Date.parse(ready.readyAt!)).toBeGreaterThanOrEqual(Date.parse(ready.startedAt) + 600);
    await waitFor(() => port.actions.length === 1);
    await hooks.idle();
    expect(port.actions[0]!.context.cause).toBe('ready');
    expect(port.actions[0]!.text).toContain('The process is ready.');
    expect(hooks.repo.firingsForProcess(record.id).map((f) => [f.cause, f.status])).toEqual([['ready', 'done']]);
    expect(hooks.hooksFor(record.id)[0]!.row.fireCount).toBe(1);
    // A hook added once it is ready fires at once, not never.
    hooks.addHooks(record.id, [{ trigger: { type: 'on_ready' }, action: 'notify_channel' }]);
    await waitFor(() => port.actions.length === 2);
    await hooks.idle();
    expect(hooks.repo.firingsForProcess(record.id).map((f) => f.cause)).toEqual(['ready', 'ready']);
  });

  it('with http_path it waits past the bind until GET answers 2xx', async () => {
    const { manager, hooks, port, start, listeningAt } = await setup();
    const tcpPort = await freePort();
    const record = await start(lateServer(tcpPort, 300, 1_200), { port: tcpPort, http_path: '/health', timeout_seconds: 30 }, [
      { trigger: { type: 'on_ready' }, action: 'notify_channel' },
    ]);
    const listened = listeningAt(record.id);
    const [ready] = await nextEvent<[ProcessRecord]>(manager, 'ready', (p) => p.id === record.id, 15_000);
    const boundAt = listened();
    expect(boundAt).toBeDefined();
    // Not at the bind: only once /health answers 200, 1.2 s later.
    expect(Date.parse(ready.readyAt!)).toBeGreaterThanOrEqual(boundAt! + 1_000);
    await hooks.idle();
    await waitFor(() => port.actions.length === 1);
    expect(hooks.repo.firingsForProcess(record.id)).toHaveLength(1);
  });

  it('a line matching the pattern makes it ready', async () => {
    const { manager, start } = await setup();
    const record = await start(`${node} -e "console.log('starting'); setTimeout(() => console.log('Server READY at 5173'), 300); setInterval(() => {}, 1e9)"`, { pattern: '(?i)ready at \\d+' });
    const [ready] = await nextEvent<[ProcessRecord]>(manager, 'ready', (p) => p.id === record.id);
    expect(ready.readyAt).toEqual(expect.any(String));
    expect(ready.readyError).toBeNull();
  });

  it('a matching line early in a burst of thousands makes it ready, with nobody else reading the lines', async () => {
    const { manager, start } = await setup();
    const burst = `let s = 'Server READY at 5173\\n'; for (let i = 0; i < 5000; i++) s += 'noise ' + i + '\\n'; process.stdout.write(s); setInterval(() => {}, 1e9)`;
    const record = await start(`${node} -e ${JSON.stringify(burst)}`, { pattern: '(?i)ready at \\d+', timeout_seconds: 30 });
    const [ready] = await nextEvent<[ProcessRecord]>(manager, 'ready', (p) => p.id === record.id, 20_000);
    expect(ready.readyError).toBeNull();
  });

  it('a port held by another process fails readiness at once, naming the holder: a Chorus process and whose', async () => {
    const { manager, hooks, port, start } = await setup();
    const tcpPort = await freePort();
    const holder = await start(lateServer(tcpPort, 0), { port: tcpPort }, [], 'other');
    await nextEvent<[ProcessRecord]>(manager, 'ready', (p) => p.id === holder.id);
    const record = await start(`${node} -e "setInterval(() => {}, 1e9)"`, { port: tcpPort, timeout_seconds: 60 }, [
      { trigger: { type: 'on_ready_timeout' }, action: 'notify_channel' },
    ]);
    const [failed, reason] = await nextEvent<[ProcessRecord, string]>(manager, 'readyFailed', (p) => p.id === record.id);
    expect(reason).toContain(`port ${tcpPort} is already held by pid `);
    expect(reason).toContain(`a Chorus process (#${holder.id} of agent other)`);
    expect(reason).toContain('late-server.mjs');
    expect(failed.readyError).toBe(reason);
    await waitFor(() => port.actions.length === 1);
    await hooks.idle();
    expect(port.actions[0]!.context.cause).toBe('ready_timeout');
    expect(port.actions[0]!.text).toContain(reason);
  });

  it('counts a listener that started while its tree was being read as the process\'s own, not another\'s', async () => {
    // A server whose listening child is started by a parent shell: the parent is the root, the child listens.
    const tcpPort = await freePort();
    const parent = spawn('/bin/sh', ['-c', `${node} ${JSON.stringify(join(FIXTURES, 'late-server.mjs'))} ${tcpPort} 0; :`], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
    trackPid(parent.pid!, { group: true });
    await new Promise<void>((resolve) => parent.stdout!.once('data', () => resolve()));
    // The first read of the tree is from before the child existed (as a scan of thousands of processes can be).
    let reads = 0;
    const staleFirst = (root: number) => (reads++ === 0 ? [root] : processTree(root));
    expect(portState(tcpPort, parent.pid!, staleFirst)).toEqual({ state: 'ours' });
    expect(portState(tcpPort, parent.pid!)).toEqual({ state: 'ours' });
  });

  it('names a holder that is not a Chorus process', async () => {
    const { manager, start } = await setup();
    const tcpPort = await freePort();
    const child = spawn(process.execPath, [join(FIXTURES, 'late-server.mjs'), String(tcpPort), '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    trackPid(child.pid!);
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    const record = await start(`${node} -e "setInterval(() => {}, 1e9)"`, { port: tcpPort });
    const [, reason] = await nextEvent<[ProcessRecord, string]>(manager, 'readyFailed', (p) => p.id === record.id);
    expect(reason).toBe(`port ${tcpPort} is already held by pid ${child.pid} (${process.execPath} ${join(FIXTURES, 'late-server.mjs')} ${tcpPort} 0), not a Chorus process`);
  });

  it('times out and fires on_ready_timeout instead of on_ready', async () => {
    const { manager, hooks, port, start } = await setup();
    const tcpPort = await freePort();
    const record = await start(`${node} -e "setInterval(() => {}, 1e9)"`, { port: tcpPort, timeout_seconds: 1 }, [
      { trigger: { type: 'on_ready' }, action: 'notify_channel' },
      { trigger: { type: 'on_ready_timeout' }, action: 'notify_channel' },
    ]);
    const [, reason] = await nextEvent<[ProcessRecord, string]>(manager, 'readyFailed', (p) => p.id === record.id);
    expect(reason).toBe(`not ready within 1s (nothing listened on port ${tcpPort})`);
    await waitFor(() => port.actions.length === 1);
    await hooks.idle();
    expect(port.actions.map((a) => a.context.cause)).toEqual(['ready_timeout']);
  });

  it('a process started by a client, whose ready line is already in its log, is ready once the supervisor adopts it', async () => {
    const { home, manager: client } = await startManager({ supervise: false });
    const record = await client.spawn({ agent: 'demo', command: 'echo ready; exec sleep 60', readyJson: JSON.stringify(parseReadySpec({ pattern: '^ready$' })) });
    await waitFor(() => readFileSync(record.stdoutLog, 'utf8') === 'ready\n', { what: 'the line in the log' });
    const { manager } = await startManager({ home, supervise: false });
    const ready = nextEvent<[ProcessRecord]>(manager, 'ready', (p) => p.id === record.id);
    await manager.startSupervising();
    await ready;
    expect(manager.repo.get(record.id)!.readyAt).toEqual(expect.any(String));
  });
});


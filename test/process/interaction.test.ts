import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.js';
import type { ProcessManager } from '../../src/process/process-manager.js';
import type { ProcessRecord } from '../../src/store/process-repo.js';
import { readStat } from '../../src/process/proc-fs.js';
import { startManager } from '../support/manager.js';
import { nextEvent, waitFor } from '../support/wait-for.js';

const READ_LOOP = `while IFS= read -r line; do echo "got: $line"; done; echo "eof seen"; exit 4`;

function collect(manager: ProcessManager): string[] {
  const lines: string[] = [];
  manager.on('line', (l) => lines.push(l.text));
  return lines;
}

async function rejection(promise: Promise<unknown> | (() => unknown)): Promise<AppError> {
  const error = await (typeof promise === 'function' ? Promise.resolve().then(promise) : promise).then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
}

describe('input to a running process', () => {
  it('answers a read loop through its stdin FIFO, and it sees EOF only when asked', async () => {
    const { manager } = await startManager();
    const lines = collect(manager);
    const exited = nextEvent<[ProcessRecord]>(manager, 'exited', undefined, 20_000);
    const record = await manager.spawn({ agent: 'demo', command: READ_LOOP, interactive: true });
    expect(record.isInteractive).toBe(true);
    await manager.input({ id: record.id }, 'hello\n');
    await waitFor(() => lines.includes('got: hello'), { what: 'the first answer' });
    await manager.input({ id: record.id }, 'second\nthird\n', { isEof: true });
    const [ended] = await exited;
    expect(lines).toEqual(['got: hello', 'got: second', 'got: third', 'eof seen']);
    expect(ended.exitCode).toBe(4);
    expect((await rejection(manager.input({ id: record.id }, 'late\n'))).code).toBe('PROCESS_NOT_RUNNING');
  });

  it('refuses input after eof, and to a process that is not interactive, whose stray read ends at once', async () => {
    const { manager } = await startManager();
    const exited = nextEvent<[ProcessRecord]>(manager, 'exited', undefined, 20_000);
    const lines = collect(manager);
    const plain = await manager.spawn({ agent: 'demo', command: 'read -r x; echo "read ended $?"; sleep 30' });
    await waitFor(() => lines.some((l) => l.startsWith('read ended 1')), { what: 'the stray read to end' });
    expect((await rejection(manager.input({ id: plain.id }, 'x\n'))).code).toBe('NOT_INTERACTIVE');

    const open = await manager.spawn({ agent: 'demo', command: 'cat >/dev/null; echo closed; exit 0', interactive: true });
    await manager.input({ id: open.id }, '', { isEof: true });
    await exited.catch(() => undefined);
    await waitFor(() => lines.includes('closed'), { what: 'cat to see EOF' });
    const error = await rejection(manager.input({ id: open.id }, 'more\n'));
    expect(['INPUT_CLOSED', 'PROCESS_NOT_RUNNING']).toContain(error.code);
    await manager.kill({ id: plain.id }, { by: 'test', force: true });
  });
});

describe('signals', () => {
  it('delivers INT and USR1 to a shell that traps them; it keeps running, then ends with its own code', async () => {
    const { manager } = await startManager();
    const lines = collect(manager);
    const exited = nextEvent<[ProcessRecord]>(manager, 'exited', undefined, 20_000);
    const command = `n=0; trap 'echo int; n=$((n+1))' INT; trap 'echo usr1; n=$((n+1))' USR1; echo ready; while [ $n -lt 2 ]; do sleep 0.05; done; exit 9`;
    const record = await manager.spawn({ agent: 'demo', command });
    await waitFor(() => lines.includes('ready'), { what: 'ready' });
    manager.signal({ id: record.id }, 'INT', { by: 'test' });
    await waitFor(() => lines.includes('int'), { what: 'the INT trap' });
    const after = manager.signal({ id: record.id }, 'USR1', { by: 'alice' });
    expect(after.lastSignal).toBe('USR1');
    expect(after.lastSignalBy).toBe('alice');
    const [ended] = await exited;
    expect(lines).toContain('usr1');
    expect(ended.status).toBe('exited');
    expect(ended.exitCode).toBe(9);
  });

  it('STOP shows the process paused until CONT, and its status stays running', async () => {
    const { manager } = await startManager();
    const lines = collect(manager);
    const record = await manager.spawn({ agent: 'demo', command: 'i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.05; done' });
    await waitFor(() => lines.length > 2, { what: 'ticks' });
    const paused = manager.signal({ id: record.id }, 'STOP', { by: 'test' });
    expect(paused.pausedAt).not.toBeNull();
    expect(paused.status).toBe('running');
    await waitFor(() => readStat(record.pid!)?.state === 'T', { what: 'the shim stopped' });
    const resumed = manager.signal({ id: record.id }, 'CONT', { by: 'test' });
    expect(resumed.pausedAt).toBeNull();
    const count = lines.length;
    await waitFor(() => lines.length > count + 2, { what: 'ticks after CONT' });
    manager.signal({ id: record.id }, 'STOP', { by: 'test' });
    // A paused process still stops on request.
    const stopped = await manager.kill({ id: record.id }, { by: 'test' });
    expect(stopped.status).toBe('killed');
  });

  it('refuses a signal to an ended process', async () => {
    const { manager } = await startManager();
    const exited = nextEvent<[ProcessRecord]>(manager, 'exited');
    const record = await manager.spawn({ agent: 'demo', command: 'exit 0' });
    await exited;
    expect((await rejection(() => manager.signal({ id: record.id }, 'HUP', { by: 'test' }))).code).toBe('PROCESS_NOT_RUNNING');
  });
});

describe('terminals', () => {
  it('runs node -i under a pseudo-terminal: isatty holds, input is evaluated, escapes are stripped for readers', async () => {
    const { manager } = await startManager();
    const lines = collect(manager);
    const exited = nextEvent<[ProcessRecord]>(manager, 'exited', undefined, 30_000);
    const record = await manager.spawn({ agent: 'demo', command: `${JSON.stringify(process.execPath)} -i`, tty: true });
    expect(record.isInteractive).toBe(true);
    expect(record.isTty).toBe(true);
    await manager.input({ id: record.id }, 'console.log("tty=" + process.stdout.isTTY, 6 * 7)\n');
    await waitFor(() => lines.some((l) => l.includes('tty=true 42')), { what: 'the evaluated line', timeoutMs: 20_000 });
    expect(lines.every((l) => !l.includes('\u001b'))).toBe(true);
    await manager.input({ id: record.id }, '.exit\n');
    const [ended] = await exited;
    expect(ended.exitCode).toBe(0);
  });
});

describe('terminals and signals', () => {
  it('python3 -i under a tty: INT interrupts the running statement (KeyboardInterrupt), the REPL goes on', async () => {
    const { manager } = await startManager();
    const lines = collect(manager);
    const exited = nextEvent<[ProcessRecord]>(manager, 'exited', undefined, 30_000);
    // The interpreter itself, not a version manager's wrapper script (which would take the INT too).
    const python = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
    const record = await manager.spawn({ agent: 'demo', command: `${JSON.stringify(python)} -i -q`, tty: true });
    await manager.input({ id: record.id }, 'import time, sys; print("tty", sys.stdin.isatty()); time.sleep(60)\n');
    await waitFor(() => lines.some((l) => l.includes('tty True')), { what: 'python to start sleeping', timeoutMs: 20_000 });
    manager.signal({ id: record.id }, 'INT', { by: 'test' });
    await waitFor(() => lines.some((l) => l.includes('KeyboardInterrupt')), { what: 'the KeyboardInterrupt', timeoutMs: 20_000 });
    await manager.input({ id: record.id }, 'print(6 * 7)\n');
    await waitFor(() => lines.some((l) => l.trim() === '42'), { what: 'the REPL to go on', timeoutMs: 20_000 });
    await manager.input({ id: record.id }, 'exit(3)\n');
    const [ended] = await exited;
    expect(ended.exitCode, JSON.stringify(lines)).toBe(3);
  });
});

import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import type { LineEvent } from '../../src/process/events.js';
import { MAX_LINE_BYTES } from '../../src/process/line-splitter.js';
import type { ProcessManager } from '../../src/process/process-manager.js';
import type { ProcessRecord } from '../../src/store/process-repo.js';
import { trackPid } from '../support/child-cleanup.js';
import { hostPid } from '../support/host-pid.js';
import { startManager } from '../support/manager.js';
import { nextEvent, waitFor } from '../support/wait-for.js';
import { fixture as fixturePath } from '../support/fixtures.js';

const node = JSON.stringify(process.execPath);
const READ_CHUNK_BYTES = 1024 * 1024;

function fixture(name: string, ...args: (string | number)[]): string {
  return [node, JSON.stringify(fixturePath(name)), ...args].join(' ');
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Starts a fixture and collects its line events (registered before the spawn, so none is missed). */
async function startCollecting(manager: ProcessManager, command: string): Promise<{ record: ProcessRecord; lines: LineEvent[] }> {
  const lines: LineEvent[] = [];
  let id: number | undefined;
  const early: LineEvent[] = [];
  manager.on('line', (line) => {
    if (id === undefined) early.push(line);
    else if (line.processId === id) lines.push(line);
  });
  const record = await manager.spawn({ agent: 'demo', command });
  id = record.id;
  lines.push(...early.filter((line) => line.processId === id));
  return { record, lines };
}

/** Runs a fixture to its end and returns its line events. */
async function runToEnd(manager: ProcessManager, command: string): Promise<{ ended: ProcessRecord; lines: LineEvent[] }> {
  const exited = nextEvent<[ProcessRecord]>(manager, 'exited');
  const { record, lines } = await startCollecting(manager, command);
  const [ended] = await exited;
  expect(ended.id).toBe(record.id);
  return { ended, lines };
}

describe('output monitor: line splitting', () => {
  it('delivers a last line that has no newline when the process ends', async () => {
    const { manager } = await startManager();
    const { ended, lines } = await runToEnd(manager, fixture('hostile-output.mjs', 'no-newline'));
    expect(ended.exitCode).toBe(0);
    expect(lines.map((l) => l.text)).toEqual(['first', 'last without newline']);
    expect(lines.at(-1)!.offset).toBe(Buffer.byteLength('first\nlast without newline'));
  });

  it('strips the \\r of CRLF line ends and keeps empty lines', async () => {
    const { manager } = await startManager();
    const { ended, lines } = await runToEnd(manager, fixture('hostile-output.mjs', 'crlf'));
    expect(lines.map((l) => l.text)).toEqual(['one', 'two', '', 'three']);
    expect(readFileSync(ended.stdoutLog, 'utf8')).toBe('one\r\ntwo\r\n\r\nthree\r\n');
  });

  it('replaces invalid UTF-8 with U+FFFD and goes on', async () => {
    const { manager } = await startManager();
    const { ended, lines } = await runToEnd(manager, fixture('hostile-output.mjs', 'invalid-utf8'));
    expect(ended.status).toBe('exited');
    expect(lines.map((l) => l.text)).toEqual(['a\uFFFD\uFFFDb', '\uFFFD(', 'caf\u00e9 \u2713']);
    expect(lines.every((l) => !l.isCut)).toBe(true);
  });

  it('keeps a 1 MiB line whole in the file, cuts its event to 8 KiB, and the next line is intact', async () => {
    const { manager } = await startManager();
    const { ended, lines } = await runToEnd(manager, fixture('hostile-output.mjs', 'long-line'));
    const file = readFileSync(ended.stdoutLog);
    expect(file.length).toBe(1024 * 1024 + Buffer.byteLength('\nafter\n'));
    expect(file.subarray(0, 1024 * 1024).every((byte) => byte === 0x78)).toBe(true);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ text: 'x'.repeat(MAX_LINE_BYTES), isCut: true, offset: 1024 * 1024 + 1 });
    expect(lines[1]).toMatchObject({ text: 'after', isCut: false, offset: file.length });
  });
});

describe('output monitor: rolling tail', () => {
  it('holds the lines of both streams in the order they were written', async () => {
    const { manager } = await startManager();
    // The child writes its next line (on the other stream) only once the previous one was read: the order is known.
    let childPid = 0;
    let innerPid = 0;
    manager.on('line', (line) => {
      const ready = /^ready (\d+)$/.exec(line.text);
      if (ready) {
        innerPid = Number(ready[1]);
        childPid = trackPid(hostPid(innerPid, manager.repo.get(line.processId)!));
      }
      try {
        process.kill(childPid, 'SIGUSR1');
      } catch { /* it was stopped after the test */ }
    });
    const record = await manager.spawn({ agent: 'demo', command: fixture('alternates.mjs', 30) });
    const tail = await waitFor(() => manager.tail(record.id)?.length === 31 && manager.tail(record.id), { what: '31 tail lines' });
    expect(tail).toEqual([
      { stream: 'stdout', text: `ready ${innerPid}` },
      ...Array.from({ length: 30 }, (_, i) => (i % 2 === 0
        ? { stream: 'stdout', text: `out ${i}` }
        : { stream: 'stderr', text: `err ${i}` })),
    ]);
  });

  it('keeps only the newest 100 lines, oldest first', async () => {
    const { manager } = await startManager();
    const { record } = await startCollecting(manager, fixture('prints-lines.mjs', 300, 'stderr'));
    const tail = await waitFor(() => {
      const lines = manager.tail(record.id);
      return lines?.at(-1)?.text === 'line 299' && lines;
    }, { what: 'line 299 in the tail' });
    expect(tail).toEqual(Array.from({ length: 100 }, (_, i) => ({ stream: 'stderr', text: `line ${200 + i}` })));
    expect(manager.tail(record.id, 3)!.map((l) => l.text)).toEqual(['line 297', 'line 298', 'line 299']);
  });
});

describe('output monitor: nobody reads the lines', () => {
  it('keeps the newest 100 lines of a burst and its read position, with no line made for anyone', async () => {
    const { manager } = await startManager();
    const record = await manager.spawn({ agent: 'demo', command: fixture('prints-lines.mjs', 5000) });
    const tail = await waitFor(() => {
      const lines = manager.tail(record.id);
      return lines?.at(-1)?.text === 'line 4999' && lines;
    }, { what: 'line 4999 in the tail' });
    expect(tail).toEqual(Array.from({ length: 100 }, (_, i) => ({ stream: 'stdout', text: `line ${4900 + i}` })));
    const bytes = Array.from({ length: 5000 }, (_, i) => `line ${i}\n`).join('').length;
    expect(manager.readPosition(record.id, 'stdout')).toBe(bytes);
  });
});

describe('output monitor: log cap', () => {
  it('rotates a flood of 3x the cap: bounded disk, every line in order, a responsive event loop', async () => {
    const capBytes = 256 * 1024;
    const totalBytes = 3 * capBytes;
    const lineBytes = 128;
    const { manager } = await startManager({ logCapBytes: capBytes });
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const { record, lines } = await startCollecting(manager, fixture('floods.mjs', totalBytes, lineBytes));
    const expectedLines = totalBytes / lineBytes;
    let maxDiskBytes = 0;
    await waitFor(() => {
      maxDiskBytes = Math.max(maxDiskBytes, sizeOf(record.stdoutLog) + sizeOf(`${record.stdoutLog}.1`));
      // The last lines may be read while the rotation is still under way: wait for its `.1` too.
      return lines.at(-1)?.text === `done ${expectedLines}` && sizeOf(`${record.stdoutLog}.1`) > 0;
    }, { intervalMs: 1, what: 'the done line and a rotated file' });
    delay.disable();

    expect(lines).toHaveLength(expectedLines + 1);
    const outOfOrder = lines.slice(0, -1).findIndex((line, i) => !line.text.startsWith(`${String(i).padStart(8, '0')} `));
    expect(outOfOrder).toBe(-1);
    expect(lines.every((line) => line.stream === 'stdout' && !line.isCut)).toBe(true);
    // Offsets are logical (rotations included), so they keep growing past the cap.
    expect(lines.slice(0, -1).every((line, i) => line.offset === (i + 1) * lineBytes)).toBe(true);

    const finalDiskBytes = sizeOf(record.stdoutLog) + sizeOf(`${record.stdoutLog}.1`);
    expect(sizeOf(`${record.stdoutLog}.1`)).toBeGreaterThan(0);
    expect(maxDiskBytes).toBeLessThanOrEqual(2 * capBytes + READ_CHUNK_BYTES);
    expect(finalDiskBytes).toBeLessThanOrEqual(2 * capBytes + READ_CHUNK_BYTES);
    expect(delay.percentile(99) / 1e6).toBeLessThan(200);
  });

  it('stays responsive and bounded while a child writes without end', async () => {
    const capBytes = 256 * 1024;
    const { manager } = await startManager({ logCapBytes: capBytes });
    let lineCount = 0;
    manager.on('line', () => { lineCount += 1; });
    const record = await manager.spawn({ agent: 'demo', command: fixture('floods.mjs', 'forever', 100) });
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    let maxDiskBytes = 0;
    let ticks = 0;
    const started = Date.now();
    // Timer ticks prove the event loop runs while the monitor is flooded.
    await waitFor(() => {
      ticks += 1;
      maxDiskBytes = Math.max(maxDiskBytes, sizeOf(record.stdoutLog) + sizeOf(`${record.stdoutLog}.1`));
      return Date.now() - started > 1_500 && lineCount > 10 * capBytes / 100;
    }, { intervalMs: 10, timeoutMs: 10_000, what: 'the flood to be read for a while' });
    delay.disable();
    await manager.kill({ id: record.id }, { by: 'test', force: true });
    expect(ticks).toBeGreaterThan(20);
    expect(delay.percentile(99) / 1e6).toBeLessThan(500);
    expect(maxDiskBytes).toBeLessThan(256 * 1024 * 1024);
  });
});

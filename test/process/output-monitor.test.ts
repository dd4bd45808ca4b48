import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { OutputMonitor } from '../../src/process/output-monitor.js';
import { makeTempHome } from '../support/temp-home.js';

const numbered = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `line ${from + i}\n`).join('');

interface Made { text: string; endOffset: number; isEvery: boolean }

/** A monitor over a run directory's two logs (stdout written by the test), nobody reading every line unless `wants()`. */
function monitorOf(options: { capBytes?: number; wants?: () => boolean; onRead?: () => void } = {}) {
  const dir = join(makeTempHome(), 'run');
  mkdirSync(dir);
  const log = join(dir, 'stdout.log');
  writeFileSync(log, '');
  writeFileSync(join(dir, 'stderr.log'), '');
  const made: Made[] = [];
  let reads = 0;
  const monitor = new OutputMonitor({
    stdoutLog: log, stderrLog: join(dir, 'stderr.log'), capBytes: options.capBytes ?? 64 * 1024 * 1024, log: silentLogger(),
    start: { stdout: { offset: 0, rotated: 0 }, stderr: { offset: 0, rotated: 0 } },
    wantsLines: options.wants ?? (() => false),
    tailLines: 100,
    onRead: () => { reads += 1; options.onRead?.(); },
    onLine: (_stream, text, endOffset, _isCut, isEvery) => { made.push({ text, endOffset, isEvery }); },
    // No writer: what is in the file is all there is.
    pauseWriters: async () => 'none',
  });
  return { log, monitor, made, reads: () => reads };
}

describe('output monitor: nobody reads every line', () => {
  it('passes over a backlog to its last lines, reading only its end', async () => {
    const { log, monitor, made, reads } = monitorOf();
    const text = numbered(0, 400_000); // about 4.6 MB
    writeFileSync(log, text);
    await monitor.drain();
    monitor.close();
    expect(reads()).toBe(1);
    expect(made.map((l) => l.text)).toEqual(Array.from({ length: 100 }, (_, i) => `line ${399_900 + i}`));
    expect(made.at(-1)!.endOffset).toBe(text.length);
    expect(made.every((l) => !l.isEvery)).toBe(true);
    expect(monitor.positions().stdout).toEqual({ offset: text.length, rotated: 0 });
  });

  it('continues the unfinished last line of a skipped backlog when the rest of it arrives', async () => {
    const { log, monitor, made } = monitorOf();
    const text = `${numbered(0, 400_000)}unfinis`;
    writeFileSync(log, text);
    await monitor.drain();
    appendFileSync(log, 'hed\nnext\n');
    await monitor.drain();
    monitor.close();
    expect(made.slice(-3).map((l) => l.text)).toEqual(['line 399999', 'unfinished', 'next']);
    expect(made.at(-1)!.endOffset).toBe(text.length + 9);
  });

  it('reads a backlog of long lines whole when its last chunk does not hold the tail', async () => {
    const { log, monitor, made } = monitorOf();
    const long = (i: number) => `${i} ${'x'.repeat(3000)}\n`;
    const text = Array.from({ length: 300 }, (_, i) => long(i)).join('');
    writeFileSync(log, text);
    await monitor.drain();
    monitor.close();
    expect(made.slice(-100).map((l) => Number(l.text.split(' ')[0]))).toEqual(Array.from({ length: 100 }, (_, i) => 200 + i));
    expect(monitor.positions().stdout.offset).toBe(text.length);
  });

  it('reads a pass only to where the file ended when it began, so a writer that goes on is not followed chunk by chunk', async () => {
    let log = '';
    let appended = 0;
    const first = numbered(0, 400_000);
    const more = numbered(400_000, 500_000);
    // A writer that adds a backlog while the first pass reads.
    const run = monitorOf({ onRead: () => { if (appended++ === 0) appendFileSync(log, more); } });
    log = run.log;
    writeFileSync(log, first);
    await run.monitor.drain();
    expect(run.monitor.positions().stdout.offset).toBe(first.length);
    await run.monitor.drain();
    run.monitor.close();
    expect(run.reads()).toBe(2);
    expect(run.monitor.positions().stdout.offset).toBe(first.length + more.length);
    expect(run.made.at(-1)!.text).toBe('line 499999');
  });

  it('makes every line again as soon as someone reads them', async () => {
    let wants = false;
    const { log, monitor, made } = monitorOf({ wants: () => wants });
    writeFileSync(log, numbered(0, 400_000));
    await monitor.drain();
    wants = true;
    appendFileSync(log, numbered(400_000, 401_000));
    await monitor.drain();
    monitor.close();
    const every = made.filter((l) => l.isEvery).map((l) => l.text);
    expect(every).toEqual(Array.from({ length: 1000 }, (_, i) => `line ${400_000 + i}`));
  });

  it('rotates a skipped backlog whole into .1, with the tail and position after it', async () => {
    const { log, monitor, made } = monitorOf({ capBytes: 1024 * 1024 });
    const text = numbered(0, 400_000);
    writeFileSync(log, text);
    await monitor.drain();
    monitor.close();
    expect(readFileSync(`${log}.1`, 'utf8')).toBe(text);
    expect(readFileSync(log, 'utf8')).toBe('');
    expect(monitor.positions().stdout).toEqual({ offset: 0, rotated: text.length });
    expect(made.slice(-100).map((l) => l.text)).toEqual(Array.from({ length: 100 }, (_, i) => `line ${399_900 + i}`));
  });
});

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { OutputMonitor } from '../../src/process/output-monitor.js';
import { readStat } from '../../src/process/proc-fs.js';
import type { ProcessRecord } from '../../src/store/process-repo.js';
import { isAlive } from '../support/child-cleanup.js';
import { startManager } from '../support/manager.js';
import { makeTempHome } from '../support/temp-home.js';
import { nextEvent, waitFor } from '../support/wait-for.js';

const numbered = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `line ${from + i}\n`).join('');

/** A run directory as a supervisor left it when it died inside a rotation. */
function interruptedRun(options: { isTruncated: boolean }) {
  const dir = join(makeTempHome(), 'run');
  mkdirSync(dir);
  const log = join(dir, 'stdout.log');
  const old = numbered(0, 100);
  const end = Buffer.byteLength(old);
  const savedOffset = Buffer.byteLength(numbered(0, 40));
  writeFileSync(`${log}.1.tmp`, old);
  writeFileSync(`${log}.rotating`, JSON.stringify({ end, kept: end }));
  writeFileSync(log, options.isTruncated ? '' : old);
  writeFileSync(join(dir, 'stderr.log'), '');
  const lines: Array<{ text: string; offset: number }> = [];
  let rotations = 0;
  const monitor = new OutputMonitor({
    stdoutLog: log, stderrLog: join(dir, 'stderr.log'), capBytes: 1024 * 1024, log: silentLogger(),
    start: { stdout: { offset: savedOffset, rotated: 0 }, stderr: { offset: 0, rotated: 0 } },
    onLine: (_stream, text, offset) => { lines.push({ text, offset }); },
    onRotated: () => { rotations += 1; },
  });
  return { dir, log, end, monitor, lines, rotations: () => rotations };
}

describe('log rotation', () => {
  it('finishes a rotation whose truncate happened before the crash: the rest of the old file, then the new one', async () => {
    const run = interruptedRun({ isTruncated: true });
    writeFileSync(run.log, numbered(100, 103)); // what the resumed writers add after the truncate
    await run.monitor.drain();
    run.monitor.close();
    expect(run.lines.map((l) => l.text)).toEqual(Array.from({ length: 63 }, (_, i) => `line ${40 + i}`));
    expect(run.lines.at(-1)!.offset).toBe(Buffer.byteLength(numbered(0, 103)));
    expect(readFileSync(`${run.log}.1`, 'utf8')).toBe(numbered(0, 100));
    expect(existsSync(`${run.log}.rotating`)).toBe(false);
    expect(existsSync(`${run.log}.1.tmp`)).toBe(false);
    expect(run.monitor.positions().stdout).toEqual({ offset: Buffer.byteLength(numbered(100, 103)), rotated: run.end });
    expect(run.rotations()).toBe(1);
  });

  it('abandons a rotation that never reached its truncate, and reads on as if none had begun', async () => {
    const run = interruptedRun({ isTruncated: false });
    await run.monitor.drain();
    run.monitor.close();
    expect(run.lines.map((l) => l.text)).toEqual(Array.from({ length: 60 }, (_, i) => `line ${40 + i}`));
    expect(existsSync(`${run.log}.1`)).toBe(false);
    expect(existsSync(`${run.log}.1.tmp`)).toBe(false);
    expect(existsSync(`${run.log}.rotating`)).toBe(false);
    expect(run.monitor.positions().stdout).toEqual({ offset: run.end, rotated: 0 });
  });

  it('loses no line of a writer that never pauses, across many rotations', async () => {
    const { manager } = await startManager({ logCapBytes: 64 * 1024 });
    const seen: number[] = [];
    manager.on('line', (line) => { if (line.text.startsWith('n ')) seen.push(Number(line.text.split(' ')[1])); });
    const ended = nextEvent<[ProcessRecord]>(manager, 'exited', () => true, 20_000);
    const script = `let i = 0; const t = setInterval(() => { let s = ''; for (let k = 0; k < 50; k++) s += 'n ' + (i++) + ' ' + 'x'.repeat(60) + '\\n'; process.stdout.write(s); if (i >= 20000) { clearInterval(t); } }, 1);`;
    const record = await manager.spawn({ agent: 'demo', command: `${JSON.stringify(process.execPath)} -e ${JSON.stringify(script)}` });
    await ended;
    expect(seen.length).toBe(20_000);
    expect(seen.findIndex((n, i) => n !== i)).toBe(-1);
    expect(existsSync(`${record.stdoutLog}.1`)).toBe(true);
  });

  it.each(['none', null] as const)('keeps every byte a writer left when the rotation finds its writers %s (ended, or not pausable)', async (pause) => {
    const dir = join(makeTempHome(), 'run');
    mkdirSync(dir);
    const log = join(dir, 'stdout.log');
    // Far past one cap and a read chunk beyond it: what the writer left before it ended.
    const written = numbered(0, 40_000);
    writeFileSync(log, written);
    writeFileSync(join(dir, 'stderr.log'), '');
    const lines: string[] = [];
    const monitor = new OutputMonitor({
      stdoutLog: log, stderrLog: join(dir, 'stderr.log'), capBytes: 64 * 1024, log: silentLogger(),
      start: { stdout: { offset: 0, rotated: 0 }, stderr: { offset: 0, rotated: 0 } },
      onLine: (_stream, text) => { lines.push(text); },
      wantsLines: () => true,
      pauseWriters: async () => pause,
    });
    await monitor.drain();
    monitor.close();
    expect(readFileSync(`${log}.1`, 'utf8') + readFileSync(log, 'utf8')).toBe(written);
    expect(lines).toEqual(written.split('\n').slice(0, -1));
  });

  it('resumes a process group that a crashed supervisor left paused', async () => {
    const { manager, home } = await startManager({ supervise: false });
    const record = await manager.spawn({ agent: 'demo', command: `${JSON.stringify(process.execPath)} -e "console.log('ready'); setInterval(() => {}, 1000)"` });
    // Stopped before the command ran, the shim would hang in its vfork (state D) instead of stopping.
    await waitFor(() => readFileSync(record.stdoutLog, 'utf8').includes('ready'), { what: 'the command to run' });
    process.kill(-record.pgid!, 'SIGSTOP');
    await waitFor(() => readStat(record.pid!)?.state === 'T', { what: 'the group to stop' });
    const { manager: supervisor } = await startManager({ home });
    await waitFor(() => readStat(record.pid!)?.state !== 'T', { what: 'the group to be resumed' });
    expect(isAlive(record.pid!)).toBe(true);
    await supervisor.kill({ id: record.id }, { by: 'test' });
  });
});

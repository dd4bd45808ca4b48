import {
  appendFileSync, closeSync, existsSync, fstatSync, openSync, readSync, renameSync, rmSync, statSync, truncateSync, watch,
  writeSync, type FSWatcher,
} from 'node:fs';
import { basename, dirname } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Logger } from '../logger.js';
import type { LogStream } from '../store/process-repo.js';
import { LineSplitter, type SplitLine } from './line-splitter.js';

const CHUNK_BYTES = 1024 * 1024;
/** One read buffer for every monitor: a chunk is split completely before any await, so sharing is safe. */
const sharedChunk = Buffer.allocUnsafe(CHUNK_BYTES);
/** Longest stretch of reading before the monitor lets other work run. */
const SLICE_MS = 8;

export interface StreamPosition {
  /** Bytes of the current file already read. */
  offset: number;
  /** Bytes moved to `.1` by rotations before the current file began; offset + rotated is the logical position. */
  rotated: number;
}

export interface MonitorOptions {
  stdoutLog: string;
  stderrLog: string;
  start: Record<LogStream, StreamPosition>;
  capBytes: number;
  onLine: (stream: LogStream, line: SplitLine) => void;
  /** Called after a rotation, so the new positions are stored at once. */
  onRotated?: () => void;
  log: Logger;
}

class StreamFollower {
  readonly splitter = new LineSplitter();
  fd: number | null = null;
  offset: number;
  rotated: number;

  constructor(readonly stream: LogStream, readonly path: string, start: StreamPosition) {
    this.offset = start.offset;
    this.rotated = start.rotated;
  }

  get logicalOffset(): number {
    return this.rotated + this.offset;
  }

  open(): boolean {
    if (this.fd !== null) return true;
    try {
      this.fd = openSync(this.path, 'r');
    } catch {
      return false;
    }
    return true;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** Follows a process's two log files from stored positions and turns new bytes into lines. */
export class OutputMonitor {
  private readonly followers: Record<LogStream, StreamFollower>;
  private watcher: FSWatcher | null = null;
  private draining: Promise<void> | null = null;
  private isDirty = false;
  private isFinished = false;

  constructor(private readonly options: MonitorOptions) {
    this.followers = {
      stdout: new StreamFollower('stdout', options.stdoutLog, options.start.stdout),
      stderr: new StreamFollower('stderr', options.stderrLog, options.start.stderr),
    };
  }

  /** Watches the run directory: log writes drain at once, and `onExitFile` hears of the shim's exit file. */
  watch(onExitFile: () => void): void {
    if (this.watcher || this.isFinished) return;
    try {
      this.watcher = watch(dirname(this.options.stdoutLog), { persistent: false }, (_event, name) => {
        if (name === 'exit') onExitFile();
        else void this.drain();
      });
      this.watcher.on('error', () => this.unwatch());
    } catch (error) {
      // No inotify watch left (ENOSPC): the supervisor's slow poll still drains.
      this.options.log.warn({ err: error }, 'cannot watch run directory; relying on polling');
    }
  }

  unwatch(): void {
    this.watcher?.close();
    this.watcher = null;
  }

  positions(): Record<LogStream, StreamPosition> {
    return {
      stdout: { offset: this.followers.stdout.offset, rotated: this.followers.stdout.rotated },
      stderr: { offset: this.followers.stderr.offset, rotated: this.followers.stderr.rotated },
    };
  }

  logicalOffset(stream: LogStream): number {
    return this.followers[stream].logicalOffset;
  }

  /** Reads both files to their end. Calls made while a drain runs are folded into one more pass. */
  drain(): Promise<void> {
    if (this.draining) {
      this.isDirty = true;
      return this.draining;
    }
    this.draining = (async () => {
      try {
        do {
          this.isDirty = false;
          await this.drainStream(this.followers.stdout);
          await this.drainStream(this.followers.stderr);
        } while (this.isDirty);
      } finally {
        this.draining = null;
      }
    })();
    return this.draining;
  }

  /** The process ended: read what is left, emit unfinished last lines, release the files. */
  async finish(): Promise<void> {
    this.unwatch();
    await this.drain();
    this.isFinished = true;
    for (const follower of [this.followers.stdout, this.followers.stderr]) {
      follower.splitter.flush(follower.logicalOffset, (line) => this.options.onLine(follower.stream, line));
      follower.close();
    }
  }

  close(): void {
    this.unwatch();
    this.followers.stdout.close();
    this.followers.stderr.close();
  }

  private async drainStream(f: StreamFollower): Promise<void> {
    if (this.isFinished || !f.open()) return;
    this.recoverFromShrink(f);
    let sliceStart = Date.now();
    for (;;) {
      // Reads stop at the cap, so a rotation starts there and `.1` does not grow by a whole read chunk past it.
      const n = this.readInto(f, f.fd!, Math.max(1, this.options.capBytes - f.offset));
      if (n === 0) break;
      if (f.offset >= this.options.capBytes) await this.rotate(f);
      if (this.isFinished || f.fd === null) return;
      if (Date.now() - sliceStart > SLICE_MS) {
        await yieldToLoop();
        sliceStart = Date.now();
        if (this.isFinished || f.fd === null) return;
      }
    }
  }

  private readInto(f: StreamFollower, fd: number, maxBytes = CHUNK_BYTES): number {
    const n = readSync(fd, sharedChunk, 0, Math.min(CHUNK_BYTES, maxBytes), f.offset);
    if (n === 0) return 0;
    f.offset += n;
    f.splitter.push(sharedChunk.subarray(0, n), f.logicalOffset, (line) => this.options.onLine(f.stream, line));
    return n;
  }

  /**
   * The file is shorter than what was read: a rotation whose new position was not stored before a crash (the rest
   * of the old file is in `.1`), or someone truncated it.
   */
  private recoverFromShrink(f: StreamFollower): void {
    const size = fstatSync(f.fd!).size;
    if (size >= f.offset) return;
    const rotatedPath = `${f.path}.1`;
    if (existsSync(rotatedPath) && statSync(rotatedPath).size >= f.offset) {
      const fd = openSync(rotatedPath, 'r');
      try {
        while (this.readInto(f, fd) > 0) { /* read the old file's rest */ }
      } finally {
        closeSync(fd);
      }
      f.rotated += f.offset;
    } else {
      this.options.log.warn({ stream: f.stream, offset: f.offset, size }, 'log file shrank; reading it again from the start');
      f.rotated += f.offset;
    }
    f.offset = 0;
    this.options.onRotated?.();
  }

  /**
   * Copy-then-truncate, because the child keeps writing through its own descriptor (opened O_APPEND, so after the
   * truncate it writes at the new end). Everything up to the truncate is read first, so the tail and the hooks lose
   * nothing; the file loses at most what lands between the last read and the truncate, a few microseconds.
   * A child that writes faster than this reads would make the copy unbounded and the chase endless (blocking the
   * bot): then `.1` keeps only the newest `capBytes`, the chase stops after `capBytes + CHUNK_BYTES`, and what it did
   * not reach is skipped, with a warning.
   */
  private async rotate(f: StreamFollower): Promise<void> {
    const cap = this.options.capBytes;
    const temp = `${f.path}.1.tmp`;
    const size = fstatSync(f.fd!).size;
    // Normally `.1` is the whole old file, so positions in it match the stored offsets (recoverFromShrink needs that).
    copyRange(f.path, temp, size - f.offset > cap ? size - cap : 0, size);
    let copied = size;
    const chaseEnd = f.offset + cap + CHUNK_BYTES;
    let sliceStart = Date.now();
    while (f.offset < chaseEnd) {
      const before = f.offset;
      const n = this.readInto(f, f.fd!, chaseEnd - f.offset);
      if (n === 0) break;
      if (f.offset > copied) {
        const from = Math.max(before, copied) - before;
        appendFileSync(temp, sharedChunk.subarray(from, n));
        copied = f.offset;
      }
      if (Date.now() - sliceStart > SLICE_MS) {
        await yieldToLoop();
        sliceStart = Date.now();
        if (f.fd === null) {
          rmSync(temp, { force: true });
          return;
        }
      }
    }
    const dropped = Math.max(0, fstatSync(f.fd!).size - f.offset);
    truncateSync(f.path, 0);
    renameSync(temp, `${f.path}.1`);
    if (dropped > 0) {
      // The unfinished line would otherwise be glued to whatever the new file starts with.
      f.splitter.flush(f.logicalOffset, (line) => this.options.onLine(f.stream, line));
      this.options.log.warn({ stream: f.stream, dropped }, 'output arrives faster than it can be read; skipped some at rotation');
    }
    f.rotated += f.offset + dropped;
    f.offset = 0;
    this.options.log.debug({ file: basename(f.path), rotated: f.rotated }, 'log rotated');
    this.options.onRotated?.();
  }
}

/** Copies bytes [start, end) of a file into a new file (0600). */
function copyRange(source: string, target: string, start: number, end: number): void {
  const from = openSync(source, 'r');
  const to = openSync(target, 'w', 0o600);
  try {
    for (let position = start; position < end;) {
      const n = readSync(from, sharedChunk, 0, Math.min(CHUNK_BYTES, end - position), position);
      if (n === 0) break;
      writeSync(to, sharedChunk, 0, n);
      position += n;
    }
  } finally {
    closeSync(from);
    closeSync(to);
  }
}

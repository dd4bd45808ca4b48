import {
  chmodSync, closeSync, copyFileSync, existsSync, fstatSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, truncateSync, unlinkSync, watch,
  writeFileSync, writeSync, type FSWatcher,
} from 'node:fs';
import { basename, dirname } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Logger } from '../logger.js';
import type { LogStream } from '../store/process-repo.js';
import { lastLinesStart, LineSplitter, type EmitLine, type EmitTailBytes, type LineWindow, type PassOver } from './line-splitter.js';

/**
 * A read of 128 KiB stays in the CPU's cache for the copy out of the kernel and the newline search that follows: it
 * costs a third of the CPU per byte of 1 MiB reads, which leave the cache before they are searched.
 */
const CHUNK_BYTES = 128 * 1024;
/** One read buffer for every monitor: a chunk is split completely before any await, so sharing is safe. */
const sharedChunk = Buffer.allocUnsafe(CHUNK_BYTES);
/** A backlog longer than this, when nobody reads every line, is skipped to its last chunk (see skipToTail). */
const SKIP_BACKLOG_BYTES = 2 * CHUNK_BYTES;
/** Longest stretch of reading before the monitor lets other work run. */
const SLICE_MS = 8;
/**
 * While output flows the monitor polls at this interval instead of holding an inotify watch: a watch costs the
 * writer on every write() (the kernel queues an event per write), which shows on a chatty child.
 */
const FLOW_POLL_MS = 10;
/** How long a rotation reads while the writers are paused, at most (some tens of MB). */
const PAUSED_READ_BUDGET_MS = 200;
/** Empty polls in a row after which output counts as quiet and the watch comes back (for fast reaction when idle). */
const QUIET_POLLS = 3;

export interface StreamPosition {
  /** Bytes of the current file already read. */
  offset: number;
  /** Bytes moved to `.1` by rotations before the current file began; offset + rotated is the logical position. */
  rotated: number;
}

/**
 * Stops the process's writers for a moment. Resolves to the function that resumes them, to 'none' when the process
 * has no writers left (it ended), or to null when they could not be paused.
 */
export type PauseWriters = () => Promise<(() => void) | 'none' | null>;

export interface MonitorOptions {
  stdoutLog: string;
  stderrLog: string;
  start: Record<LogStream, StreamPosition>;
  capBytes: number;
  /**
   * Each line made. `isEvery` is false for the last lines of a read made only for the tail, while `wantsLines` says
   * nobody reads every line: those reads skip the lines before.
   */
  onLine: (stream: LogStream, text: string, endOffset: number, isCut: boolean, isEvery: boolean) => void;
  /** Asked at every read: whether every line is read by someone (true when not given). */
  wantsLines?: () => boolean;
  /** How many last lines of a read are made when `wantsLines` says no (the tail's length). */
  tailLines?: number;
  /**
   * When given, those last lines (and those of a window passed over), when they are ASCII, come here as their bytes
   * instead of through onLine (see EmitTailBytes): a tail makes them only if it is read.
   */
  onTailBytes?: (stream: LogStream, bytes: Buffer, lines: number) => void;
  /**
   * Asked, while every line is wanted, for each ASCII window of whole lines (up to 64 KiB): true when none of its
   * lines concerns anyone, so only the window's last `tailLines` lines are made.
   */
  canPass?: (stream: LogStream, window: LineWindow) => boolean;
  /** Called after every read of new bytes, before their lines. */
  onRead?: (stream: LogStream) => void;
  /** Called after a rotation, so the new positions are stored at once (synchronously). */
  onRotated?: () => void;
  /** Called when the shim's exit file may have appeared (the callee checks it). */
  onExitFile?: () => void;
  pauseWriters?: PauseWriters;
  log: Logger;
}

class StreamFollower {
  readonly splitter = new LineSplitter();
  fd: number | null = null;
  offset: number;
  rotated: number;
  isResolved = false;
  /** Made once, not per read: a line of every line, and one of a read's last lines. */
  readonly emitEvery: EmitLine;
  readonly emitLast: EmitLine;

  readonly emitTailBytes: EmitTailBytes | undefined;
  readonly passOver: PassOver | undefined;

  constructor(readonly stream: LogStream, readonly path: string, start: StreamPosition, options: MonitorOptions) {
    this.offset = start.offset;
    this.rotated = start.rotated;
    const { onLine, canPass, onTailBytes } = options;
    this.emitEvery = (text, endOffset, isCut) => onLine(stream, text, endOffset, isCut, true);
    this.emitLast = (text, endOffset, isCut) => onLine(stream, text, endOffset, isCut, false);
    this.emitTailBytes = onTailBytes && ((bytes, lines) => onTailBytes(stream, bytes, lines));
    this.passOver = canPass && { canPass: (window) => canPass(stream, window), tailLines: options.tailLines ?? 0, emitTail: this.emitLast, emitTailBytes: this.emitTailBytes };
  }

  get logicalOffset(): number {
    return this.rotated + this.offset;
  }

  /** The rotation marker: written just before the truncate, removed once the new position is stored. */
  get markerPath(): string {
    return `${this.path}.rotating`;
  }

  get tempPath(): string {
    return `${this.path}.1.tmp`;
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
  private flowTimer: NodeJS.Timeout | null = null;
  private quietPolls = 0;
  private isWatching = false;
  private draining: Promise<boolean> | null = null;
  private isDirty = false;
  private isFinished = false;

  constructor(private readonly options: MonitorOptions) {
    this.followers = {
      stdout: new StreamFollower('stdout', options.stdoutLog, options.start.stdout, options),
      stderr: new StreamFollower('stderr', options.stderrLog, options.start.stderr, options),
    };
  }

  /**
   * Follows the files as they grow: an inotify watch while quiet, a fast poll while output flows. What is already in
   * the files is read by the caller's first drain.
   */
  watch(): void {
    if (this.isWatching || this.isFinished) return;
    this.isWatching = true;
    this.armWatch();
  }

  /** Following, but with neither a watch nor a flow poll (no inotify watch could be had): the caller must poll. */
  get needsPolling(): boolean {
    return this.isWatching && !this.watcher && !this.flowTimer && !this.isFinished;
  }

  unwatch(): void {
    this.isWatching = false;
    this.disarmWatch();
    if (this.flowTimer) clearTimeout(this.flowTimer);
    this.flowTimer = null;
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

  /** Reads both files to their end; true when anything was read. Calls during a drain fold into one more pass. */
  drain(): Promise<boolean> {
    if (this.draining) {
      this.isDirty = true;
      return this.draining;
    }
    this.draining = (async () => {
      let hasRead = false;
      try {
        do {
          this.isDirty = false;
          if (await this.drainStream(this.followers.stdout)) hasRead = true;
          if (await this.drainStream(this.followers.stderr)) hasRead = true;
        } while (this.isDirty);
      } finally {
        this.draining = null;
      }
      return hasRead;
    })();
    return this.draining;
  }

  /** The process ended: read what is left, emit unfinished last lines, release the files. */
  async finish(): Promise<void> {
    this.unwatch();
    await this.drain();
    this.isFinished = true;
    for (const follower of [this.followers.stdout, this.followers.stderr]) {
      this.flushLine(follower);
      follower.close();
    }
  }

  close(): void {
    this.unwatch();
    this.followers.stdout.close();
    this.followers.stderr.close();
  }

  private armWatch(): void {
    if (this.watcher || !this.isWatching) return;
    try {
      this.watcher = watch(dirname(this.options.stdoutLog), { persistent: false }, (_event, name) => {
        if (name === 'exit') this.options.onExitFile?.();
        else if (name === 'stdout.log' || name === 'stderr.log') this.onActivity();
      });
      this.watcher.on('error', () => this.disarmWatch());
    } catch (error) {
      // No inotify watch left (ENOSPC): the supervisor's slow poll still drains.
      this.options.log.warn({ err: error }, 'cannot watch run directory; relying on polling');
    }
  }

  /** A drain nobody awaits: its failure is logged (an unhandled rejection would end the bot). */
  drainInBackground(): void {
    this.drain().catch((error: unknown) => this.options.log.error({ err: error }, 'reading the output failed'));
  }

  private disarmWatch(): void {
    this.watcher?.close();
    this.watcher = null;
  }

  /** Output is flowing: drop the watch and poll until it has been quiet for a few polls. */
  private onActivity(): void {
    if (!this.isWatching) return;
    this.disarmWatch();
    this.quietPolls = 0;
    if (!this.flowTimer) this.flowTimer = setTimeout(() => void this.flowPoll(), 0);
  }

  private async flowPoll(): Promise<void> {
    this.flowTimer = null;
    if (!this.isWatching) return;
    let hasRead = false;
    try {
      hasRead = await this.drain();
    } catch (error) {
      this.options.log.error({ err: error }, 'reading the output failed');
    }
    this.quietPolls = hasRead ? 0 : this.quietPolls + 1;
    if (!this.isWatching) return;
    if (this.quietPolls >= QUIET_POLLS) {
      this.armWatch();
      // Output that landed between the last poll and the new watch.
      this.drainInBackground();
      // The process may have ended while unwatched; the callee checks the exit file itself.
      this.options.onExitFile?.();
      return;
    }
    this.flowTimer = setTimeout(() => void this.flowPoll(), FLOW_POLL_MS);
  }

  private async drainStream(f: StreamFollower): Promise<boolean> {
    if (this.isFinished || !f.open()) return false;
    if (!f.isResolved) {
      this.resolveInterruptedRotation(f);
      f.isResolved = true;
    }
    this.recoverFromShrink(f);
    // Nobody reads the lines: a pass reads to where the file ended when it began, not after a writer that goes on (the
    // next poll takes the rest, passing over to its tail), so a fast writer is not followed a chunk at a time.
    const passEnd = this.wantsLines() ? Infinity : fstatSync(f.fd!).size;
    let hasRead = false;
    let sliceStart = Date.now();
    while (f.offset < passEnd) {
      // Reads stop at the cap, so a rotation starts there and `.1` does not grow by a whole read chunk past it.
      const n = this.readInto(f, f.fd!, Math.max(1, Math.min(this.options.capBytes, passEnd) - f.offset));
      if (n === 0) break;
      hasRead = true;
      if (f.offset >= this.options.capBytes) {
        await this.rotate(f);
        // The old file's end says nothing of the new one.
        if (passEnd !== Infinity) return hasRead;
      }
      if (this.isFinished || f.fd === null) return hasRead;
      if (Date.now() - sliceStart > SLICE_MS) {
        await yieldToLoop();
        sliceStart = Date.now();
        if (this.isFinished || f.fd === null) return hasRead;
      }
    }
    return hasRead;
  }

  /** Reads the next bytes (at most `maxBytes`, a chunk at a time) and makes their lines; 0 at the file's end. */
  private readInto(f: StreamFollower, fd: number, maxBytes = CHUNK_BYTES): number {
    const wantsLines = this.wantsLines();
    if (!wantsLines && maxBytes > SKIP_BACKLOG_BYTES) {
      const skipped = this.skipToTail(f, fd, maxBytes);
      if (skipped > 0) return skipped;
    }
    const n = readSync(fd, sharedChunk, 0, Math.min(CHUNK_BYTES, maxBytes), f.offset);
    if (n === 0) return 0;
    f.offset += n;
    const chunk = sharedChunk.subarray(0, n);
    this.options.onRead?.(f.stream);
    if (wantsLines) f.splitter.push(chunk, f.logicalOffset, f.emitEvery, f.passOver);
    else f.splitter.pushLast(chunk, f.logicalOffset, this.options.tailLines ?? 0, f.emitLast, f.emitTailBytes);
    return n;
  }

  /**
   * Nobody reads every line, so of a backlog only the tail's last lines matter: when the backlog's last chunk holds
   * them all (more newlines than tail lines), the bytes before it are passed over unread (they stay in the file, and
   * `.1` after a rotation, as ever) and only that chunk is read. Returns the bytes read, 0 when it did not skip.
   */
  private skipToTail(f: StreamFollower, fd: number, maxBytes: number): number {
    const end = Math.min(fstatSync(fd).size, f.offset + maxBytes);
    if (end - f.offset <= SKIP_BACKLOG_BYTES) return 0;
    const n = readSync(fd, sharedChunk, 0, CHUNK_BYTES, end - CHUNK_BYTES);
    const chunk = sharedChunk.subarray(0, n);
    const tailLines = this.options.tailLines ?? 0;
    if (n < CHUNK_BYTES || lastLinesStart(chunk, tailLines) < 0) return 0;
    f.offset = end;
    this.options.onRead?.(f.stream);
    f.splitter.pushLast(chunk, f.logicalOffset, tailLines, f.emitLast, f.emitTailBytes);
    return n;
  }

  private wantsLines(): boolean {
    return this.options.wantsLines?.() ?? true;
  }

  /** The unfinished last line, as a line of its own (the stream ended, or its file was truncated). */
  private flushLine(f: StreamFollower): void {
    f.splitter.flush(f.logicalOffset, this.wantsLines() ? f.emitEvery : f.emitLast);
  }

  /** Reads bytes [f.offset, end) of another file (the old log, now `.1`) as the rest of this stream. */
  private readRest(f: StreamFollower, path: string, end: number): void {
    const fd = openSync(path, 'r');
    try {
      while (f.offset < end && this.readInto(f, fd, end - f.offset) > 0) { /* the old file's rest */ }
    } finally {
      closeSync(fd);
    }
  }

  /**
   * A supervisor died inside a rotation. The writers were paused from before the marker until after the new position
   * was stored, and stay paused until this supervisor resumes them, so the file's size tells whether the truncate
   * happened: it did when the file is shorter than the marker's end.
   */
  private resolveInterruptedRotation(f: StreamFollower): void {
    if (!existsSync(f.markerPath)) {
      removeIfPresent(f.tempPath); // a copy that never reached its truncate
      return;
    }
    const { end, kept } = JSON.parse(readFileSync(f.markerPath, 'utf8')) as { end: number; kept: number };
    if (fstatSync(f.fd!).size < end) {
      if (existsSync(f.tempPath)) renameSync(f.tempPath, `${f.path}.1`);
      this.readRest(f, `${f.path}.1`, kept);
      this.finishRotation(f, kept, end);
      this.options.log.info({ stream: f.stream, end }, 'finished a rotation a crash had interrupted');
    } else {
      rmSync(f.tempPath, { force: true });
    }
    rmSync(f.markerPath, { force: true });
  }

  /** Someone else truncated the file (Chorus's own rotations are resolved above): read it again from the start. */
  private recoverFromShrink(f: StreamFollower): void {
    const size = fstatSync(f.fd!).size;
    if (size >= f.offset) return;
    this.options.log.warn({ stream: f.stream, offset: f.offset, size }, 'log file shrank; reading it again from the start');
    this.flushLine(f);
    f.rotated += f.offset;
    f.offset = 0;
    this.options.onRotated?.();
  }

  /**
   * Copy-then-truncate, because the child keeps writing through its own descriptor (opened O_APPEND, so after the
   * truncate it writes at the new end). The bulk is copied and read while the child runs; then its process group is
   * paused for the last bytes, the truncate and storing the new position (well under a millisecond when the monitor
   * has kept up), so nothing written is lost and `.1` is exactly the old file. A burst already written is read whole
   * while paused; a writer that outruns the monitor for longer than the paused-read budget has the rest of that file
   * dropped, counted exactly (the writers are paused) and logged, so disk use stays bounded and the bot responsive.
   * Writers that could not be paused (a member that does not stop in time, or one ending just then) are read after
   * the same way: what they wrote before the last read is kept (all of it when they have just ended); what lands after
   * it is dropped, counted and logged up to the moment before the truncate, and the rest of that moment is lost.
   */
  private async rotate(f: StreamFollower): Promise<void> {
    // Before the pause, read and keep at most one cap (and a read chunk) past the current position.
    const keepEnd = f.offset + this.options.capBytes + CHUNK_BYTES;
    copyPrefix(f.path, f.tempPath, keepEnd);
    // Catch up before pausing, so the pause only covers what arrives meanwhile (when nobody reads the lines, only to
    // where the file ends now: the paused read passes over the rest to its tail).
    await this.readToEnd(f, this.wantsLines() ? keepEnd : Math.min(keepEnd, fstatSync(f.fd!).size));
    if (f.fd === null) return void rmSync(f.tempPath, { force: true });
    const pause = await this.options.pauseWriters?.() ?? null;
    const resume = typeof pause === 'function' ? pause : null;
    try {
      // Paused (or with no writer left), what is in the file is all there is: a finished burst is read whole; only a
      // writer that outran the monitor for longer than the budget loses the rest of this file. Unpaused, the same
      // read keeps what they wrote so far (they may well have just ended).
      await this.readToEnd(f, Infinity, Date.now() + PAUSED_READ_BUDGET_MS);
      if (f.fd === null) return void rmSync(f.tempPath, { force: true });
      const kept = f.offset;
      const copied = statSync(f.tempPath).size;
      if (kept > copied) copyRange(f.path, f.tempPath, copied, kept, true);
      // Paused, the file's end is final; unpaused (its writers are gone), it is as good as it gets.
      const end = Math.max(kept, fstatSync(f.fd).size);
      writeFileSync(f.markerPath, JSON.stringify({ end, kept }), { mode: 0o600 });
      truncateSync(f.path, 0);
      renameSync(f.tempPath, `${f.path}.1`);
      this.finishRotation(f, kept, end);
      rmSync(f.markerPath, { force: true });
      this.options.log.debug({ file: basename(f.path), rotated: f.rotated, pause: resume ? 'paused' : pause }, 'log rotated');
    } finally {
      resume?.();
    }
  }

  private finishRotation(f: StreamFollower, kept: number, end: number): void {
    if (end > kept) {
      // The unfinished line would otherwise be glued to whatever the new file starts with.
      this.flushLine(f);
      this.options.log.warn({ stream: f.stream, dropped: end - kept }, 'output arrives faster than it can be read; dropped some at rotation');
    }
    f.rotated += end;
    f.offset = 0;
    this.options.onRotated?.();
  }

  /** Reads until the file's end (or `limit`, or `deadline`), yielding to other work between slices. */
  private async readToEnd(f: StreamFollower, limit: number, deadline = Infinity): Promise<void> {
    let sliceStart = Date.now();
    while (f.fd !== null && f.offset < limit && Date.now() < deadline) {
      if (this.readInto(f, f.fd, limit - f.offset) === 0) return;
      if (Date.now() - sliceStart > SLICE_MS) {
        await yieldToLoop();
        sliceStart = Date.now();
      }
    }
  }
}

/**
 * Copies the first `end` bytes of a file (all of it when shorter) into a new file, inside the kernel (copy_file_range or
 * sendfile: no pass through user space, a fraction of the CPU of a read/write loop for a 64 MiB log).
 */
function copyPrefix(source: string, target: string, end: number): void {
  copyFileSync(source, target);
  chmodSync(target, 0o600);
  // The writer may have gone on past `end` while the copy ran; `.1` keeps no more than the rotation allows.
  if (statSync(target).size > end) truncateSync(target, end);
}

/** Copies bytes [start, end) of a file into a new file (0600), or appends them to it. */
function copyRange(source: string, target: string, start: number, end: number, isAppend = false): void {
  const from = openSync(source, 'r');
  const to = openSync(target, isAppend ? 'a' : 'w', 0o600);
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

/** Removes a file that is usually not there: a look, then one unlink (rmSync's force walks the path with lstat, and a failed unlink builds an error). */
function removeIfPresent(path: string): void {
  if (existsSync(path)) unlinkSync(path);
}

import type { LogStream } from '../store/process-repo.js';
import { asciiLines } from './line-splitter.js';

export interface TailLine {
  stream: LogStream;
  text: string;
}

export const TAIL_LINES = 100;

interface PendingLines {
  stream: LogStream;
  bytes: Buffer;
  lines: number;
}

/**
 * The last N lines of a process across both streams, in the order they were read (no object kept per line). Lines
 * nobody reads one by one come as bytes (pushAscii) and are made only when the tail is read: a chatty process's tail
 * was most of what following it cost (every poll made its last 100 lines, half of what a 10 ms poll reads).
 */
export class RollingTail {
  // Grown as lines come (filled in order), so a process that never prints holds two empty arrays.
  private streams: LogStream[] = [];
  private texts: string[] = [];
  private next = 0;
  private count = 0;
  /** Newer than the ring, oldest first; only as many as hold the newest `capacity` lines. */
  private pending: PendingLines[] = [];
  private pendingLines = 0;

  constructor(readonly capacity = TAIL_LINES) {}

  push(stream: LogStream, text: string): void {
    if (this.pending.length) this.makePending();
    this.add(stream, text);
  }

  /** Whole ASCII lines as their bytes (`lines` of them, each ending in a newline), copied: made when read. */
  pushAscii(stream: LogStream, bytes: Buffer, lines: number): void {
    if (lines <= 0) return;
    this.pending.push({ stream, bytes: Buffer.from(bytes), lines });
    this.pendingLines += lines;
    // Bytes wholly older than the newest `capacity` lines are never read: dropped, and the ring with them.
    while (this.pendingLines - this.pending[0]!.lines >= this.capacity) this.pendingLines -= this.pending.shift()!.lines;
    if (this.pendingLines >= this.capacity && this.count) this.clearRing();
  }

  /** The newest `limit` lines, oldest first. */
  toArray(limit = this.capacity): TailLine[] {
    if (this.pending.length) this.makePending();
    const n = Math.min(limit, this.count);
    const out: TailLine[] = [];
    for (let i = n; i > 0; i -= 1) {
      const at = (this.next - i + this.capacity) % this.capacity;
      out.push({ stream: this.streams[at]!, text: this.texts[at]! });
    }
    return out;
  }

  get size(): number {
    return Math.min(this.capacity, this.count + this.pendingLines);
  }

  private add(stream: LogStream, text: string): void {
    this.streams[this.next] = stream;
    this.texts[this.next] = text;
    this.next = (this.next + 1) % this.capacity;
    if (this.count < this.capacity) this.count += 1;
  }

  private makePending(): void {
    const pending = this.pending;
    this.pending = [];
    // Only the lines that stay: those past the newest `capacity` would be pushed out at once.
    let skip = Math.max(0, this.pendingLines - this.capacity);
    this.pendingLines = 0;
    for (const { stream, bytes } of pending) {
      for (const text of asciiLines(bytes)) {
        if (skip > 0) skip -= 1;
        else this.add(stream, text);
      }
    }
  }

  private clearRing(): void {
    this.streams = [];
    this.texts = [];
    this.next = 0;
    this.count = 0;
  }
}

import type { LogStream } from '../store/process-repo.js';

export interface TailLine {
  stream: LogStream;
  text: string;
}

export const TAIL_LINES = 100;

/** The last N lines of a process across both streams, in the order they were read (no object kept per line). */
export class RollingTail {
  // Grown as lines come (filled in order), so a process that never prints holds two empty arrays.
  private readonly streams: LogStream[] = [];
  private readonly texts: string[] = [];
  private next = 0;
  private count = 0;

  constructor(readonly capacity = TAIL_LINES) {}

  push(stream: LogStream, text: string): void {
    this.streams[this.next] = stream;
    this.texts[this.next] = text;
    this.next = (this.next + 1) % this.capacity;
    if (this.count < this.capacity) this.count += 1;
  }

  /** The newest `limit` lines, oldest first. */
  toArray(limit = this.capacity): TailLine[] {
    const n = Math.min(limit, this.count);
    const out: TailLine[] = [];
    for (let i = n; i > 0; i -= 1) {
      const at = (this.next - i + this.capacity) % this.capacity;
      out.push({ stream: this.streams[at]!, text: this.texts[at]! });
    }
    return out;
  }

  get size(): number {
    return this.count;
  }
}

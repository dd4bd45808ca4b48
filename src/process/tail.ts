import type { LogStream } from '../store/process-repo.js';

export interface TailLine {
  stream: LogStream;
  text: string;
}

export const TAIL_LINES = 100;

/** The last N lines of a process across both streams, in the order they were read. */
export class RollingTail {
  private readonly lines: (TailLine | undefined)[];
  private next = 0;
  private count = 0;

  constructor(readonly capacity = TAIL_LINES) {
    this.lines = new Array<TailLine | undefined>(capacity);
  }

  push(line: TailLine): void {
    this.lines[this.next] = line;
    this.next = (this.next + 1) % this.capacity;
    if (this.count < this.capacity) this.count += 1;
  }

  /** The newest `limit` lines, oldest first. */
  toArray(limit = this.capacity): TailLine[] {
    const n = Math.min(limit, this.count);
    const out: TailLine[] = [];
    for (let i = n; i > 0; i -= 1) out.push(this.lines[(this.next - i + this.capacity) % this.capacity]!);
    return out;
  }

  get size(): number {
    return this.count;
  }
}

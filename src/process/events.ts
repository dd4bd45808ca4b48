import { EventEmitter } from 'node:events';
import type { LogStream, ProcessRecord } from '../store/process-repo.js';
import type { LineWindow } from './line-splitter.js';

export type { LineWindow };

export interface LineEvent {
  processId: number;
  agentName: string;
  stream: LogStream;
  text: string;
  /** Logical byte offset just past the line in its stream; stable across restarts and rotations. */
  offset: number;
  isCut: boolean;
}

/** New output was read (once per read, however many lines it holds). */
export interface OutputEvent {
  processId: number;
  stream: LogStream;
}

/**
 * Reads every line of the processes it wants. Lines are made only for processes someone reads them of (a reader that
 * wants it, or any 'line' listener): otherwise only the tail's last lines of each read are. Asked at every read, so a
 * reader that starts wanting a process sees the lines read from then on.
 */
export interface LineReader {
  wantsLines(processId: number): boolean;
  /**
   * For a reader that looks for matches: whether none of the lines in `window` (whole ASCII lines of the stream, up to
   * 64 KiB) concerns it. When every reader of the process says so, those lines are not made (only the tail's last
   * ones). Without it, every line is made.
   */
  canPass?(processId: number, stream: LogStream, window: LineWindow): boolean;
  onLine(line: LineEvent): void;
}

export interface ResourceSample {
  processId: number;
  cpuPercent: number;
  rssBytes: number;
  processCount: number;
  sampledAt: number;
}

/** The seam that hooks, status embeds and the context preamble hang on. */
export interface ProcessEvents {
  started: [process: ProcessRecord];
  /** A row of another process (the CLI, a crashed supervisor) that this supervisor now watches. */
  adopted: [process: ProcessRecord];
  /** Every line of every process: a listener makes Chorus split all output into lines (see LineReader). */
  line: [line: LineEvent];
  output: [output: OutputEvent];
  exited: [process: ProcessRecord];
  killed: [process: ProcessRecord];
  lost: [process: ProcessRecord];
  resources: [sample: ResourceSample];
  /** The readiness probe passed (ready_at is stored). */
  ready: [process: ProcessRecord];
  /** The readiness probe failed: timed out, or the port is held by another process (the reason names it). */
  readyFailed: [process: ProcessRecord, reason: string];
  /** A run ended and its restart policy stored the next run as due (status `restarting`). */
  restarting: [process: ProcessRecord];
  /** Something people see changed while it runs: paused or resumed by a signal, a foreground command gone to the background. */
  changed: [process: ProcessRecord];
}

export class TypedEmitter<Events extends { [K in keyof Events]: unknown[] }> {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  on<K extends keyof Events & string>(event: K, listener: (...args: Events[K]) => void): this {
    this.emitter.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  off<K extends keyof Events & string>(event: K, listener: (...args: Events[K]) => void): this {
    this.emitter.off(event, listener as (...args: unknown[]) => void);
    return this;
  }

  once<K extends keyof Events & string>(event: K, listener: (...args: Events[K]) => void): this {
    this.emitter.once(event, listener as (...args: unknown[]) => void);
    return this;
  }

  protected hasListeners(event: keyof Events & string): boolean {
    return this.emitter.listenerCount(event) > 0;
  }

  protected emit<K extends keyof Events & string>(event: K, ...args: Events[K]): void {
    this.emitter.emit(event, ...args);
  }
}

import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { errorMessage } from '../errors.js';
import type { Db } from './database.js';

/**
 * How many pages the write-ahead log may hold before the connection that commits checkpoints it itself, on its own
 * thread (SQLite's wal_autocheckpoint; its default is 1,000). Every connection gets this bound: where a supervisor
 * runs, its checkpointer keeps the log far below it, and where none runs it still bounds the log (about 40 MB).
 */
export const WAL_AUTOCHECKPOINT_PAGES = 10_000;
/** Unchecked pages at which the checkpointer copies the log into the database: SQLite's own default threshold. */
export const CHECKPOINT_PAGES = 1_000;

/**
 * The checkpointer's thread. It reads the wal-index header from the `-shm` file (https://www.sqlite.org/walformat.html:
 * mxFrame, the last valid frame, at byte 16; nBackfill, the frames already copied, at byte 96; both in the machine's
 * byte order) and, once `pages` frames wait, runs a PASSIVE checkpoint: it copies what no reader still needs and
 * waits for nobody. A commit on another thread never waits for it. CommonJS, because an eval'd worker is one.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { closeSync, openSync, readSync } = require('node:fs');
const Database = require(workerData.driver);
let db;
try {
  db = new Database(workerData.path, { fileMustExist: true });
} catch (error) {
  // A plain Error crosses to the parent whole; better-sqlite3's own arrives as its code alone.
  throw new Error('cannot open ' + workerData.path + ': ' + (error && error.message || error));
}
db.pragma('busy_timeout = 0');
const header = new Uint32Array(26);
const bytes = new Uint8Array(header.buffer);
let shm = null;
let lastFrames = -1;
let delay = workerData.intervalMs;
/** The wal-index header's mxFrame and nBackfill, or null when the -shm file cannot be read (yet). */
function readHeader() {
  try {
    if (shm === null) shm = openSync(workerData.path + '-shm', 'r');
    if (readSync(shm, bytes, 0, 104, 0) === 104) return { frames: header[4], backfilled: header[24] };
  } catch {
    if (shm !== null) closeSync(shm);
    shm = null;
  }
  return null;
}
function round() {
  try {
    const state = readHeader();
    const pages = state === null ? -1 : Math.max(0, state.frames - state.backfilled);
    if (state !== null) {
      // A log that stays as it was is looked at less and less often, down to one look per 8 intervals.
      delay = state.frames === lastFrames ? Math.min(delay * 2, workerData.intervalMs * 8) : workerData.intervalMs;
      lastFrames = state.frames;
    }
    if (workerData.reportLooks) parentPort.postMessage({ looked: pages });
    if (pages >= workerData.pages) {
      const [result] = db.pragma('wal_checkpoint(PASSIVE)');
      parentPort.postMessage({ checkpointed: result ? result.checkpointed : 0 });
    }
  } catch (error) {
    // Another connection checkpointing (a client at its own bound) holds the lock: the next look tries again.
    if (error && (error.code === 'SQLITE_BUSY' || error.code === 'SQLITE_LOCKED')) return;
    parentPort.postMessage({ error: String(error && error.message || error) });
  }
}
let timer;
function next() {
  timer = setTimeout(() => { round(); next(); }, delay);
}
next();
parentPort.on('message', (message) => {
  if (message !== 'stop') return;
  clearTimeout(timer);
  if (shm !== null) closeSync(shm);
  db.close();
  parentPort.close();
});
`;

export interface CheckpointerOptions {
  /**
   * How often the log's length is looked at (a read of 104 bytes); default 1 s. While the log does not change, the
   * looks space out to 8 times this.
   */
  intervalMs?: number;
  /** Unchecked pages that make a checkpoint; default CHECKPOINT_PAGES. */
  pages?: number;
  onCheckpoint?: (frames: number) => void;
  /** Each look at the log, with the pages it found waiting (tests: the thread stays silent without it). */
  onLook?: (pages: number) => void;
  /**
   * A checkpoint failed (`isFatal` false: the thread goes on and tries again at its next look), or the thread itself
   * did (`isFatal` true: checkpoints are back on the connection's own commits).
   */
  onError?: (message: string, isFatal: boolean) => void;
}

/**
 * Checkpoints the store's write-ahead log on a thread of its own. A checkpoint ends with an fsync of the log and one of
 * the database, 20 to 30 ms on a slow disk; run by the committing connection, as SQLite does by default, it stopped
 * the supervisor's event loop that long every 1,000 pages (the tail of the hook latency under load). The supervisor's
 * connection keeps WAL_AUTOCHECKPOINT_PAGES as a bound; if the thread fails, the connection goes back to SQLite's
 * default and checkpoints its own commits again.
 */
export class Checkpointer {
  private readonly worker: Worker;
  private stopped: Promise<void> | undefined;

  private constructor(private readonly db: Db, options: CheckpointerOptions) {
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        driver: createRequire(import.meta.url).resolve('better-sqlite3'), path: db.name,
        intervalMs: options.intervalMs ?? 1_000, pages: options.pages ?? CHECKPOINT_PAGES, reportLooks: options.onLook !== undefined,
      },
      env: {},
      resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 1 },
      stdout: false,
      stderr: false,
    });
    this.worker.unref();
    const fail = (message: string) => {
      if (this.stopped) return;
      this.stopped = Promise.resolve();
      if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${CHECKPOINT_PAGES}`);
      options.onError?.(message, true);
    };
    this.worker.on('message', (message: { checkpointed?: number; looked?: number; error?: string }) => {
      if (message.error !== undefined) options.onError?.(message.error, false);
      else if (message.looked !== undefined) options.onLook?.(message.looked);
      else options.onCheckpoint?.(message.checkpointed ?? 0);
    });
    this.worker.on('error', (error: unknown) => fail(errorMessage(error)));
    this.worker.on('exit', (code) => fail(`the checkpoint thread exited (code ${code})`));
  }

  /** None for an in-memory store, which has no log. */
  static start(db: Db, options: CheckpointerOptions = {}): Checkpointer | undefined {
    if (db.memory || !db.name || db.name === ':memory:') return undefined;
    return new Checkpointer(db, options);
  }

  /** Closes the thread's connection and waits for the thread to end. */
  stop(): Promise<void> {
    if (this.stopped) return this.stopped;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.stopped = exited;
    this.worker.ref(); // the wait for its end keeps this process alive
    this.worker.postMessage('stop');
    return exited;
  }
}

// The store's write-ahead log is checkpointed on a thread of its own: a checkpoint ends with two fsyncs (20 to 30 ms on
// this machine's disk), and run by the committing connection, as SQLite does by default, it stopped the supervisor's
// event loop that long every 1,000 pages: the tail of the hook latency under load.
import { readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHECKPOINT_PAGES, Checkpointer, WAL_AUTOCHECKPOINT_PAGES } from '../../src/store/checkpointer.js';
import { openDatabase, type Db } from '../../src/store/database.js';
import { startManager } from '../support/manager.js';
import { makeTempHome } from '../support/temp-home.js';
import { waitFor } from '../support/wait-for.js';

/** The wal-index header (https://www.sqlite.org/walformat.html): frames in the log, and how many were copied back. */
function walState(db: Db): { frames: number; backfilled: number } {
  const header = new Uint32Array(readFileSync(`${db.name}-shm`).buffer.slice(0, 104));
  return { frames: header[4]!, backfilled: header[24]! };
}

/** Commits a 3 KB row `count` times, each in its own transaction as the supervisor's writes are (about 4 frames each). */
function commitPages(db: Db, count: number): void {
  db.exec('CREATE TABLE IF NOT EXISTS filler (body BLOB)');
  const insert = db.prepare('INSERT INTO filler (body) VALUES (?)');
  for (let i = 0; i < count; i += 1) insert.run(Buffer.alloc(3_000, i % 251));
}

describe('the checkpointer', () => {
  it('keeps checkpoints off the supervisor\'s own commits, which SQLite ran every 1,000 pages', async () => {
    // An interval longer than the test: whatever is checkpointed during the commits was checkpointed by the commits.
    const { manager } = await startManager({ checkpointIntervalMs: 3_600_000 });
    const db = manager.db;
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(WAL_AUTOCHECKPOINT_PAGES);
    commitPages(db, 1_500);
    const state = walState(db);
    expect(state.frames).toBeGreaterThan(CHECKPOINT_PAGES);
    expect(state.backfilled).toBe(0);
  });

  it('checkpoints on its thread once the log holds its threshold of pages, and not before', async () => {
    const db = openDatabase(join(makeTempHome(), 'chorus.db'));
    const rounds: number[] = [];
    const looks: number[] = [];
    const checkpointer = Checkpointer.start(db, {
      intervalMs: 20, pages: 2_000, onCheckpoint: (frames) => rounds.push(frames), onLook: (pages) => looks.push(pages),
    })!;
    try {
      commitPages(db, 50);
      // Several looks find the log under the threshold.
      await waitFor(() => looks.filter((pages) => pages >= 50).length >= 3, { what: 'three looks at the log' });
      expect(Math.max(...looks)).toBeLessThan(2_000);
      expect(rounds).toEqual([]);
      expect(walState(db).backfilled).toBe(0);
      commitPages(db, 600);
      const frames = walState(db).frames;
      expect(frames).toBeGreaterThan(2_000);
      await waitFor(() => rounds.length > 0, { what: 'a checkpoint' });
      expect(walState(db).backfilled).toBeGreaterThanOrEqual(frames);
      expect(rounds[0]).toBeGreaterThanOrEqual(frames);
    } finally {
      await checkpointer.stop();
      db.close();
    }
  });

  it('gives the checkpoints back to the connection when its thread fails, and says so', async () => {
    const home = makeTempHome();
    const db = openDatabase(join(home, 'chorus.db'));
    const errors: Array<[string, boolean]> = [];
    const checkpointer = Checkpointer.start(db, { onError: (message, isFatal) => errors.push([message, isFatal]) })!;
    // The thread opens the store by its name: gone, it cannot, and fails.
    unlinkSync(join(home, 'chorus.db'));
    try {
      await waitFor(() => errors.length > 0, { what: 'the thread to fail' });
      expect(errors[0]![0]).toMatch(/cannot open .*chorus\.db/);
      expect(errors[0]![1]).toBe(true);
      expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(CHECKPOINT_PAGES);
    } finally {
      await checkpointer.stop();
      db.close();
    }
  });

  it('is not started for a store in memory, which has no log', () => {
    const db = openDatabase(':memory:');
    expect(Checkpointer.start(db)).toBeUndefined();
    db.close();
  });

  it('ends its thread when the supervisor closes', async () => {
    const { manager } = await startManager();
    const db = manager.db;
    commitPages(db, 10);
    await manager.close();
    // The thread's connection is closed: the supervisor's is the last one, and closing it removes the log.
    db.close();
    expect(() => readFileSync(`${db.name}-wal`)).toThrow(/ENOENT/);
  });
});

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/store/database.js';
import { MIGRATIONS } from '../../src/store/migrations.js';
import { makeTempHome } from '../support/temp-home.js';

const WIDENING_STEP = 3;

function seedAtVersion3(path: string): void {
  const db = openDatabase(path, MIGRATIONS.slice(0, WIDENING_STEP));
  const now = new Date().toISOString();
  for (const id of [1, 2, 3]) {
    db.prepare(`INSERT INTO processes (id, pid, command, working_directory, agent_name, started_at, process_type, run_dir, stdout_log, stderr_log, status)
      VALUES (?, ?, 'sleep 1', '/w', 'main', ?, 'background', '/r', '/r/o', '/r/e', 'exited')`).run(id, 100 + id, now);
  }
  db.prepare('DELETE FROM processes WHERE id = 3').run();
  db.prepare(`INSERT INTO hooks (id, process_id, trigger_type, action, spec_json, max_fires, created_at) VALUES (1, 1, 'on_exit', 'notify_channel', '{}', 1, ?)`).run(now);
  db.prepare(`INSERT INTO hook_firings (hook_id, process_id, cause, payload_json, status, due_at, created_at) VALUES (1, 1, 'exit', '{}', 'done', ?, ?)`).run(now, now);
  db.prepare(`INSERT INTO branches (id, agent_name, status, origin, parent_process_id, created_at, updated_at) VALUES ('b1', 'main', 'idle', 'hook', 1, ?, ?)`).run(now, now);
  db.close();
}

describe('schema migrations', () => {
  it('widening the kinds keeps every row, every reference and the id sequence', () => {
    const path = join(makeTempHome(), 'chorus.db');
    seedAtVersion3(path);
    const db = openDatabase(path);
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.prepare('SELECT id, pid FROM processes ORDER BY id').all()).toEqual([{ id: 1, pid: 101 }, { id: 2, pid: 102 }]);
    expect(db.prepare('SELECT count(*) AS n FROM hook_firings').get()).toEqual({ n: 1 });
    expect(db.prepare('SELECT parent_process_id AS p FROM branches').get()).toEqual({ p: 1 });
    // Id 3 was used and deleted before the rebuild: it is never handed out again.
    const now = new Date().toISOString();
    const inserted = db.prepare(`INSERT INTO processes (pid, command, working_directory, agent_name, started_at, process_type, run_dir, stdout_log, stderr_log, status)
      VALUES (9, 'x', '/w', 'main', ?, 'foreground', '/r', '/r/o', '/r/e', 'crash_loop')`).run(now);
    expect(Number(inserted.lastInsertRowid)).toBe(4);
    db.prepare(`INSERT INTO hooks (process_id, trigger_type, action, spec_json, max_fires, created_at) VALUES (4, 'on_resource', 'restart_process', '{}', 1, ?)`).run(now);
    expect(() => db.prepare(`UPDATE processes SET status = 'sleeping' WHERE id = 4`).run()).toThrow(/CHECK/);
    // Cascades still work after the rebuild.
    db.prepare('DELETE FROM processes WHERE id = 1').run();
    expect(db.prepare('SELECT count(*) AS n FROM hooks WHERE process_id = 1').get()).toEqual({ n: 0 });
    expect(db.prepare('SELECT parent_process_id AS p FROM branches').get()).toEqual({ p: null });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
  });

  it('indexes only the rows with a pid, and finds a process by pid through that index', () => {
    const path = join(makeTempHome(), 'chorus.db');
    seedAtVersion3(path);
    const db = openDatabase(path);
    const now = new Date().toISOString();
    db.prepare(`INSERT INTO processes (command, working_directory, agent_name, started_at, process_type, run_dir, stdout_log, stderr_log, status)
      VALUES ('x', '/w', 'main', ?, 'background', '/r', '/r/o', '/r/e', 'starting')`).run(now);
    // Through the index: the two seeded rows with a pid; the index itself leaves rows without one out (its WHERE).
    expect(db.prepare('SELECT pid FROM processes INDEXED BY processes_pid WHERE pid IS NOT NULL ORDER BY pid').pluck().all()).toEqual([101, 102]);
    expect(db.prepare(`SELECT sql FROM sqlite_master WHERE name = 'processes_pid'`).pluck().get()).toMatch(/WHERE pid IS NOT NULL$/);
    const plan = (sql: string) => db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(0).map((row) => (row as { detail: string }).detail).join('; ');
    expect(plan('SELECT * FROM processes WHERE pid = ? ORDER BY (status = \'running\') DESC, id DESC LIMIT 1')).toContain('USING INDEX processes_pid');
    expect(db.prepare('SELECT id FROM processes WHERE pid = ?').pluck().get(102)).toBe(2);
    db.close();
  });
});

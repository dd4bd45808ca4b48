// The per-agent count of active processes (starting or running), kept by triggers so a spawn's limit check reads one
// row: it must always equal a real count, through every way a row is written, and survive the migrations after it.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../../src/store/database.js';
import { MIGRATIONS } from '../../src/store/migrations.js';
import { ProcessRepo, type NewProcess, type ProcessEnd } from '../../src/store/process-repo.js';
import { makeTempHome } from '../support/temp-home.js';

const COUNTS_STEP = MIGRATIONS.findIndex((step) => step.includes('CREATE TABLE agent_active_counts'));

function fields(agentName: string): NewProcess {
  return {
    command: 'sleep 1', name: null, category: null, workingDirectory: '/w', agentName, processType: 'background',
    spawnedByBranch: null, contextJson: null, modelForHooks: null, hookRecursionDepth: 0, timeoutSeconds: null,
    restartedFrom: null, isInteractive: false, isTty: false, sandbox: 'none',
  };
}

const END: ProcessEnd = { status: 'exited', exitCode: 0, signal: null, stoppedBy: null, lostReason: null, endedAt: new Date().toISOString() };

/** What the counter should say: counted the slow way. */
function realCounts(db: Db): Record<string, number> {
  const rows = db.prepare(`SELECT agent_name AS a, COUNT(*) AS n FROM processes WHERE status IN ('starting', 'running') GROUP BY agent_name`).all() as Array<{ a: string; n: number }>;
  return Object.fromEntries(rows.map((r) => [r.a, r.n]));
}

function storedCounts(db: Db): Record<string, number> {
  const rows = db.prepare('SELECT agent_name AS a, n FROM agent_active_counts WHERE n != 0').all() as Array<{ a: string; n: number }>;
  return Object.fromEntries(rows.map((r) => [r.a, r.n]));
}

describe('active process counts', () => {
  it('equal a real count through every write the repo makes, for each agent', () => {
    const db = openDatabase(join(makeTempHome(), 'chorus.db'));
    const repo = new ProcessRepo(db);
    const now = new Date().toISOString();
    const check = (expected: Record<string, number>): void => {
      expect(realCounts(db)).toEqual(expected);
      expect(storedCounts(db)).toEqual(expected);
      for (const agent of ['alpha', 'beta', 'nobody']) expect(repo.countActive(agent)).toBe(expected[agent] ?? 0);
    };
    const start = (agent: string): number => repo.transaction(() => repo.insertStarting(fields(agent), now));
    const run = (id: number): void => { repo.markRunning(id, { pid: 100_000 + id, pgid: 100_000 + id, startTicks: 1, bootId: 'b' }, now); };

    check({});
    const a1 = start('alpha');
    check({ alpha: 1 });
    run(a1);
    run(a1); // a second markRunning changes nothing
    check({ alpha: 1 });
    const a2 = start('alpha');
    const b1 = start('beta');
    run(b1);
    check({ alpha: 2, beta: 1 });
    // A spawn that failed: its starting row is deleted.
    repo.delete(a2);
    check({ alpha: 1, beta: 1 });
    // An end is recorded once; the second writer changes nothing.
    expect(repo.finish(a1, END)).toBe(true);
    expect(repo.finish(a1, { ...END, status: 'killed' })).toBe(false);
    check({ beta: 1 });
    // A deleted ended row is not active and changes nothing.
    repo.delete(a1);
    check({ beta: 1 });
    // Policy restarts: restarting is not active; the next run is; the old one is superseded, cancelled or given up.
    expect(repo.finishRestarting(b1, END, now)).toBe(true);
    check({});
    const b2 = start('beta');
    run(b2);
    expect(repo.supersede(b1, b2)).toBe(true);
    check({ beta: 1 });
    expect(repo.finishRestarting(b2, END, now)).toBe(true);
    expect(repo.cancelRestart(b2, 'user')).toBe(true);
    const b3 = start('beta');
    run(b3);
    expect(repo.finishCrashLoop(b3, END)).toBe(true);
    const b4 = start('beta');
    expect(repo.finish(b4, { ...END, status: 'lost', exitCode: null, lostReason: 'spawn cut short' })).toBe(true);
    check({});
    // A rolled-back transaction leaves the count as it was.
    expect(() => repo.transaction(() => { start('alpha'); throw new Error('refused'); })).toThrow('refused');
    check({});
    // Raw SQL (another version of Chorus, an operator) is counted too, including a row moved to another agent.
    const a3 = start('alpha');
    db.prepare(`UPDATE processes SET agent_name = 'beta' WHERE id = ?`).run(a3);
    check({ beta: 1 });
    db.prepare(`UPDATE processes SET status = 'exited' WHERE id = ?`).run(a3);
    db.prepare(`UPDATE processes SET status = 'running' WHERE id = ?`).run(a3);
    check({ beta: 1 });
    db.prepare('DELETE FROM processes').run();
    check({});
    db.close();
  });

  it('are seeded from the rows already there when the step runs', () => {
    expect(COUNTS_STEP).toBeGreaterThan(0);
    const path = join(makeTempHome(), 'chorus.db');
    const before = openDatabase(path, MIGRATIONS.slice(0, COUNTS_STEP));
    const now = new Date().toISOString();
    const insert = before.prepare(`INSERT INTO processes (command, working_directory, agent_name, started_at, process_type, run_dir, stdout_log, stderr_log, status)
      VALUES ('x', '/w', ?, ?, 'background', '/r', '/r/o', '/r/e', ?)`);
    for (const [agent, status] of [['alpha', 'running'], ['alpha', 'starting'], ['alpha', 'exited'], ['beta', 'killed'], ['gamma', 'running']] as const) {
      insert.run(agent, now, status);
    }
    before.close();

    const db = openDatabase(path);
    expect(storedCounts(db)).toEqual({ alpha: 2, gamma: 1 });
    expect(storedCounts(db)).toEqual(realCounts(db));
    db.close();
  });

  it('keep their triggers after every migration (a step that rebuilds processes must create them again)', () => {
    const db = openDatabase(join(makeTempHome(), 'chorus.db'));
    const triggers = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'processes' ORDER BY name`).all();
    expect(triggers).toEqual([{ name: 'processes_active_delete' }, { name: 'processes_active_insert' }, { name: 'processes_active_update' }]);
    db.close();
  });
});

import type { Db } from './database.js';

export interface SupervisorRow {
  pid: number;
  startTicks: number;
  bootId: string;
  startedAt: string;
}

export class SupervisorRepo {
  private readonly statements;

  constructor(private readonly db: Db) {
    this.statements = {
      read: db.prepare('SELECT pid, start_ticks, boot_id, started_at FROM supervisor WHERE id = 1'),
      claim: db.prepare(`INSERT INTO supervisor (id, pid, start_ticks, boot_id, started_at) VALUES (1, @pid, @startTicks, @bootId, @startedAt)
        ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, start_ticks = excluded.start_ticks, boot_id = excluded.boot_id,
        started_at = excluded.started_at`),
      release: db.prepare('DELETE FROM supervisor WHERE id = 1 AND pid = ?'),
      dataVersion: db.prepare('PRAGMA data_version').pluck(),
    };
  }

  read(): SupervisorRow | undefined {
    const row = this.statements.read.get() as { pid: number; start_ticks: number; boot_id: string; started_at: string } | undefined;
    return row && { pid: row.pid, startTicks: row.start_ticks, bootId: row.boot_id, startedAt: row.started_at };
  }

  /** Runs `decide` and the claim in one write transaction. */
  claimIf(decide: (holder: SupervisorRow | undefined) => void, self: SupervisorRow): void {
    this.db.transaction(() => {
      decide(this.read());
      this.statements.claim.run(self);
    }).immediate();
  }

  /** Changes when another connection (the CLI) commits to the database; this connection's own writes leave it alone. */
  dataVersion(): number {
    return this.statements.dataVersion.get() as number;
  }

  release(pid: number): void {
    this.statements.release.run(pid);
  }
}

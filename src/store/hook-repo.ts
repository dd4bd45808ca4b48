import { writeTransactions, type Db, type WriteTransaction } from './database.js';
import type { LogStream } from './process-repo.js';

export type FiringCause = 'output' | 'exit' | 'timeout' | 'ready' | 'ready_timeout' | 'idle' | 'resource';
export type FiringStatus = 'gathering' | 'pending' | 'done' | 'failed' | 'refused';

export interface HookRow {
  id: number;
  processId: number;
  triggerType: 'on_exit' | 'on_output_match' | 'on_timeout' | 'on_ready' | 'on_ready_timeout' | 'on_idle' | 'on_resource';
  action: string;
  specJson: string;
  maxFires: number;
  fireCount: number;
  seenOffsets: Record<LogStream, number>;
  createdAt: string;
}

export interface FiringRow {
  id: number;
  hookId: number;
  processId: number;
  cause: FiringCause;
  stream: LogStream | null;
  logOffset: number | null;
  mergedCount: number;
  payloadJson: string;
  status: FiringStatus;
  dueAt: string;
  result: string | null;
  createdAt: string;
  doneAt: string | null;
}

type Row = Record<string, unknown>;

function toHook(row: Row): HookRow {
  return {
    id: row.id as number,
    processId: row.process_id as number,
    triggerType: row.trigger_type as HookRow['triggerType'],
    action: row.action as string,
    specJson: row.spec_json as string,
    maxFires: row.max_fires as number,
    fireCount: row.fire_count as number,
    seenOffsets: { stdout: row.seen_stdout_offset as number, stderr: row.seen_stderr_offset as number },
    createdAt: row.created_at as string,
  };
}

function toFiring(row: Row): FiringRow {
  return {
    id: row.id as number,
    hookId: row.hook_id as number,
    processId: row.process_id as number,
    cause: row.cause as FiringCause,
    stream: row.stream as LogStream | null,
    logOffset: row.log_offset as number | null,
    mergedCount: row.merged_count as number,
    payloadJson: row.payload_json as string,
    status: row.status as FiringStatus,
    dueAt: row.due_at as string,
    result: row.result as string | null,
    createdAt: row.created_at as string,
    doneAt: row.done_at as string | null,
  };
}

export interface NewFiring {
  hookId: number;
  processId: number;
  cause: FiringCause;
  stream: LogStream | null;
  logOffset: number | null;
  payloadJson: string;
  status: 'gathering' | 'pending' | 'refused';
  dueAt: string;
}

/** All SQL about hooks and their firings. */
export class HookRepo {
  private readonly statements;
  /** Runs fn in one write transaction (BEGIN IMMEDIATE), or a savepoint inside an open one; rolled back if it throws. */
  readonly transaction: WriteTransaction;

  constructor(private readonly db: Db) {
    this.transaction = writeTransactions(db);
    this.statements = {
      insert: db.prepare(`INSERT INTO hooks (process_id, trigger_type, action, spec_json, max_fires, created_at)
        VALUES (?, ?, ?, ?, ?, ?)`),
      byProcess: db.prepare('SELECT * FROM hooks WHERE process_id = ? ORDER BY id'),
      byId: db.prepare('SELECT * FROM hooks WHERE id = ?'),
      countFired: db.prepare(`UPDATE hooks SET fire_count = fire_count + 1 WHERE id = ? AND fire_count < max_fires`),
      seen: db.prepare(`UPDATE hooks SET seen_stdout_offset = MAX(seen_stdout_offset, @stdout), seen_stderr_offset = MAX(seen_stderr_offset, @stderr) WHERE id = @id`),
      insertFiring: db.prepare(`INSERT INTO hook_firings (hook_id, process_id, cause, stream, log_offset, payload_json, status, due_at, created_at)
        VALUES (@hookId, @processId, @cause, @stream, @logOffset, @payloadJson, @status, @dueAt, @createdAt)`),
      updateFiring: db.prepare(`UPDATE hook_firings SET status = @status, payload_json = COALESCE(@payloadJson, payload_json),
        merged_count = COALESCE(@mergedCount, merged_count), result = COALESCE(@result, result),
        done_at = CASE WHEN @status IN ('done', 'failed', 'refused') THEN @now ELSE done_at END WHERE id = @id`),
      firingsByHook: db.prepare('SELECT * FROM hook_firings WHERE hook_id = ? ORDER BY id'),
      firingsByProcess: db.prepare('SELECT * FROM hook_firings WHERE process_id = ? ORDER BY id'),
      openFirings: db.prepare(`SELECT * FROM hook_firings WHERE status IN ('gathering', 'pending') ORDER BY id`),
      exitFiringCount: db.prepare(`SELECT COUNT(*) AS n FROM hook_firings WHERE hook_id = ? AND cause = 'exit'`),
      // Ended processes with exit hooks that never got an exit decision (a crash between the end and the firing).
      undecidedExitHooks: db.prepare(`SELECT h.* FROM hooks h JOIN processes p ON p.id = h.process_id
        WHERE h.trigger_type = 'on_exit' AND p.status IN ('exited', 'lost', 'crash_loop') AND p.superseded_by IS NULL AND h.fire_count < h.max_fires
        AND NOT EXISTS (SELECT 1 FROM hook_firings f WHERE f.hook_id = h.id AND f.cause = 'exit')`),
      // Readiness outcomes stored while no firing was recorded (a crash in between, or a hook added afterwards).
      undecidedReadyHooks: db.prepare(`SELECT h.* FROM hooks h JOIN processes p ON p.id = h.process_id
        WHERE ((h.trigger_type = 'on_ready' AND p.ready_at IS NOT NULL) OR (h.trigger_type = 'on_ready_timeout' AND p.ready_error IS NOT NULL))
        AND h.fire_count < h.max_fires AND (@processId IS NULL OR p.id = @processId)
        AND NOT EXISTS (SELECT 1 FROM hook_firings f WHERE f.hook_id = h.id AND f.cause IN ('ready', 'ready_timeout'))`),
    };
  }

  undecidedReadyHooks(processId?: number): HookRow[] {
    return (this.statements.undecidedReadyHooks.all({ processId: processId ?? null }) as Row[]).map(toHook);
  }

  insert(processId: number, triggerType: HookRow['triggerType'], action: string, specJson: string, maxFires: number): number {
    return Number(this.statements.insert.run(processId, triggerType, action, specJson, maxFires, new Date().toISOString()).lastInsertRowid);
  }

  listForProcess(processId: number): HookRow[] {
    return (this.statements.byProcess.all(processId) as Row[]).map(toHook);
  }

  get(id: number): HookRow | undefined {
    const row = this.statements.byId.get(id) as Row | undefined;
    return row && toHook(row);
  }

  /**
   * The decision to fire: counts the firing against max_fires and records it, in one transaction. Returns the
   * firing id, or undefined when the hook has no fires left.
   */
  recordFiring(firing: NewFiring, seen?: Record<LogStream, number>): number | undefined {
    return this.db.transaction(() => {
      if (this.statements.countFired.run(firing.hookId).changes !== 1) return undefined;
      if (seen) this.statements.seen.run({ id: firing.hookId, ...seen });
      return Number(this.statements.insertFiring.run({ ...firing, createdAt: new Date().toISOString() }).lastInsertRowid);
    }).immediate();
  }

  /** Records a decision not to fire (e.g. the recursion limit) without using up a fire. */
  recordRefusal(firing: Omit<NewFiring, 'status'>, reason: string): number {
    const id = Number(this.statements.insertFiring.run({ ...firing, status: 'refused', createdAt: new Date().toISOString() }).lastInsertRowid);
    this.updateFiring(id, { status: 'refused', result: reason });
    return id;
  }

  markSeen(hookId: number, seen: Record<LogStream, number>): void {
    this.statements.seen.run({ id: hookId, ...seen });
  }

  updateFiring(id: number, change: { status: FiringStatus; payloadJson?: string; mergedCount?: number; result?: string }): void {
    this.statements.updateFiring.run({
      id, status: change.status, payloadJson: change.payloadJson ?? null, mergedCount: change.mergedCount ?? null,
      result: change.result ?? null, now: new Date().toISOString(),
    });
  }

  firingsForHook(hookId: number): FiringRow[] {
    return (this.statements.firingsByHook.all(hookId) as Row[]).map(toFiring);
  }

  firingsForProcess(processId: number): FiringRow[] {
    return (this.statements.firingsByProcess.all(processId) as Row[]).map(toFiring);
  }

  openFirings(): FiringRow[] {
    return (this.statements.openFirings.all() as Row[]).map(toFiring);
  }

  undecidedExitHooks(): HookRow[] {
    return (this.statements.undecidedExitHooks.all() as Row[]).map(toHook);
  }
}

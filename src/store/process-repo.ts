import { writeTransactions, type Db, type WriteTransaction } from './database.js';

export type ProcessStatus = 'starting' | 'running' | 'exited' | 'killed' | 'lost' | 'restarting' | 'crash_loop';
export type ProcessType = 'background' | 'concurrent' | 'foreground';
export type ProcessCategory = 'test_suite' | 'build' | 'server' | 'analysis' | 'custom';
export type StatusFilter = 'all' | 'running' | 'exited' | 'killed' | 'lost' | 'restarting' | 'crash_loop';
export type LogStream = 'stdout' | 'stderr';

export interface ProcessRecord {
  id: number;
  pid: number | null;
  pgid: number | null;
  startTicks: number | null;
  bootId: string | null;
  command: string;
  name: string | null;
  category: ProcessCategory | null;
  workingDirectory: string;
  agentName: string;
  startedAt: string;
  endedAt: string | null;
  processType: ProcessType;
  spawnedByBranch: string | null;
  runDir: string;
  stdoutLog: string;
  stderrLog: string;
  status: ProcessStatus;
  exitCode: number | null;
  signal: string | null;
  stopRequestedBy: string | null;
  stoppedBy: string | null;
  lostReason: string | null;
  contextJson: string | null;
  modelForHooks: string | null;
  hookRecursionDepth: number;
  timeoutSeconds: number | null;
  discordMessageId: string | null;
  statusChannelId: string | null;
  stdoutOffset: number;
  stderrOffset: number;
  stdoutRotated: number;
  stderrRotated: number;
  restartedFrom: number | null;
  isInteractive: boolean;
  isTty: boolean;
  /** When someone sent STOP (and no CONT since): the process shows as paused, its status stays running. */
  pausedAt: string | null;
  lastSignal: string | null;
  lastSignalBy: string | null;
  lastSignalAt: string | null;
  lastOutputAt: string | null;
  /** Whether it ran confined; rows from before the sandbox existed say `none`. */
  sandbox: SandboxKind;
  /** The spawn lease of a starting row: who is spawning it (pid, start ticks, boot id). */
  spawner: { pid: number; startTicks: number; bootId: string } | null;
  /** The readiness probe (JSON of a ReadySpec) and its outcome. */
  readyJson: string | null;
  readyAt: string | null;
  readyError: string | null;
  /** The restart policy (JSON of a RestartPolicy) and the state of the logical process it keeps alive. */
  restartJson: string | null;
  /** Policy restarts since the logical process was started. */
  restartCount: number;
  /** Policy restarts in a row without a run that lasted min_uptime_seconds; at max_restarts it is a crash loop. */
  restartStreak: number;
  restartDueAt: string | null;
  restartRequestedBy: string | null;
  /** The next run of the same logical process, once a policy restart started it. */
  supersededBy: number | null;
}

/** Stored as the same strings as src/process's SandboxKind. */
export type SandboxKind = 'bwrap' | 'none';

export interface NewProcess {
  command: string;
  name: string | null;
  category: ProcessCategory | null;
  workingDirectory: string;
  agentName: string;
  processType: ProcessType;
  spawnedByBranch: string | null;
  contextJson: string | null;
  modelForHooks: string | null;
  hookRecursionDepth: number;
  timeoutSeconds: number | null;
  restartedFrom: number | null;
  isInteractive: boolean;
  isTty: boolean;
  sandbox: SandboxKind;
  readyJson?: string | null;
  restartJson?: string | null;
  restartCount?: number;
  restartStreak?: number;
}

export interface ProcessEnd {
  status: 'exited' | 'killed' | 'lost';
  exitCode: number | null;
  signal: string | null;
  stoppedBy: string | null;
  lostReason: string | null;
  endedAt: string;
}

/** The column names of the store, as `--json` prints them. */
export function processToJson(p: ProcessRecord): Record<string, unknown> {
  return {
    id: p.id,
    pid: p.pid,
    pgid: p.pgid,
    agent_name: p.agentName,
    name: p.name,
    category: p.category,
    command: p.command,
    working_directory: p.workingDirectory,
    process_type: p.processType,
    status: p.status,
    exit_code: p.exitCode,
    signal: p.signal,
    started_at: p.startedAt,
    ended_at: p.endedAt,
    stopped_by: p.stoppedBy,
    lost_reason: p.lostReason,
    stdout_log: p.stdoutLog,
    stderr_log: p.stderrLog,
    spawned_by_branch: p.spawnedByBranch,
    model_for_hooks: p.modelForHooks,
    hook_recursion_depth: p.hookRecursionDepth,
    timeout_seconds: p.timeoutSeconds,
    discord_message_id: p.discordMessageId,
    status_channel_id: p.statusChannelId,
    restarted_from: p.restartedFrom,
    interactive: p.isInteractive,
    tty: p.isTty,
    paused_at: p.pausedAt,
    last_signal: p.lastSignal,
    last_signal_by: p.lastSignalBy,
    last_signal_at: p.lastSignalAt,
    last_output_at: p.lastOutputAt,
    sandbox: p.sandbox,
    ready: p.readyJson === null ? null : JSON.parse(p.readyJson),
    ready_at: p.readyAt,
    ready_error: p.readyError,
    restart: p.restartJson === null ? null : JSON.parse(p.restartJson),
    restart_count: p.restartCount,
    restart_streak: p.restartStreak,
    restart_due_at: p.restartDueAt,
  };
}

type Row = Record<string, unknown>;

function toRecord(row: Row): ProcessRecord {
  return {
    id: row.id as number,
    pid: row.pid as number | null,
    pgid: row.pgid as number | null,
    startTicks: row.start_ticks as number | null,
    bootId: row.boot_id as string | null,
    command: row.command as string,
    name: row.name as string | null,
    category: row.category as ProcessCategory | null,
    workingDirectory: row.working_directory as string,
    agentName: row.agent_name as string,
    startedAt: row.started_at as string,
    endedAt: row.ended_at as string | null,
    processType: row.process_type as ProcessType,
    spawnedByBranch: row.spawned_by_branch as string | null,
    runDir: row.run_dir as string,
    stdoutLog: row.stdout_log as string,
    stderrLog: row.stderr_log as string,
    status: row.status as ProcessStatus,
    exitCode: row.exit_code as number | null,
    signal: row.signal as string | null,
    stopRequestedBy: row.stop_requested_by as string | null,
    stoppedBy: row.stopped_by as string | null,
    lostReason: row.lost_reason as string | null,
    contextJson: row.context_json as string | null,
    modelForHooks: row.model_for_hooks as string | null,
    hookRecursionDepth: row.hook_recursion_depth as number,
    timeoutSeconds: row.timeout_seconds as number | null,
    discordMessageId: row.discord_message_id as string | null,
    statusChannelId: row.status_channel_id as string | null,
    stdoutOffset: row.stdout_offset as number,
    stderrOffset: row.stderr_offset as number,
    stdoutRotated: row.stdout_rotated as number,
    stderrRotated: row.stderr_rotated as number,
    restartedFrom: row.restarted_from as number | null,
    isInteractive: row.interactive === 1,
    isTty: row.tty === 1,
    pausedAt: (row.paused_at ?? null) as string | null,
    lastSignal: (row.last_signal ?? null) as string | null,
    lastSignalBy: (row.last_signal_by ?? null) as string | null,
    lastSignalAt: (row.last_signal_at ?? null) as string | null,
    lastOutputAt: (row.last_output_at ?? null) as string | null,
    sandbox: row.sandbox === 'bwrap' ? 'bwrap' : 'none',
    spawner: row.spawner_pid === null || row.spawner_pid === undefined
      ? null
      : { pid: row.spawner_pid as number, startTicks: row.spawner_start_ticks as number, bootId: row.spawner_boot_id as string },
    readyJson: row.ready_json as string | null,
    readyAt: row.ready_at as string | null,
    readyError: row.ready_error as string | null,
    restartJson: row.restart_json as string | null,
    restartCount: row.restart_count as number,
    restartStreak: row.restart_streak as number,
    restartDueAt: row.restart_due_at as string | null,
    restartRequestedBy: row.restart_requested_by as string | null,
    supersededBy: row.superseded_by as number | null,
  };
}

/** All SQL about processes. Statements are prepared once. */
export class ProcessRepo {
  private readonly statements;
  /** Runs fn in one write transaction (BEGIN IMMEDIATE), or a savepoint inside an open one; rolled back if it throws. */
  readonly transaction: WriteTransaction;

  constructor(private readonly db: Db) {
    this.transaction = writeTransactions(db);
    this.statements = {
      insert: db.prepare(`INSERT INTO processes (command, name, category, working_directory, agent_name, started_at,
          process_type, spawned_by_branch, run_dir, stdout_log, stderr_log, status, context_json, model_for_hooks,
          hook_recursion_depth, timeout_seconds, restarted_from, sandbox, spawner_pid, spawner_start_ticks, spawner_boot_id, interactive, tty,
          ready_json, restart_json, restart_count, restart_streak)
        VALUES (@command, @name, @category, @workingDirectory, @agentName, @startedAt, @processType, @spawnedByBranch,
          '', '', '', 'starting', @contextJson, @modelForHooks, @hookRecursionDepth, @timeoutSeconds, @restartedFrom, @sandbox,
          @spawnerPid, @spawnerStartTicks, @spawnerBootId, @interactive, @tty, @readyJson, @restartJson, @restartCount, @restartStreak)`),
      setPaths: db.prepare('UPDATE processes SET run_dir = ?, stdout_log = ?, stderr_log = ? WHERE id = ?'),
      markRunning: db.prepare(`UPDATE processes SET status = 'running', pid = @pid, pgid = @pgid, start_ticks = @startTicks,
          boot_id = @bootId, started_at = @startedAt WHERE id = @id AND status = 'starting' RETURNING *`),
      byId: db.prepare('SELECT * FROM processes WHERE id = ?'),
      // The live row wins for a reused pid; then the newest.
      byPid: db.prepare(`SELECT * FROM processes WHERE pid = ? ORDER BY (status = 'running') DESC, id DESC LIMIT 1`),
      byAgentPid: db.prepare(`SELECT * FROM processes WHERE agent_name = ? AND pid = ? ORDER BY (status = 'running') DESC, id DESC LIMIT 1`),
      // Kept by triggers (migrations.ts): one row, however many processes the agent runs.
      countActive: db.prepare('SELECT COALESCE((SELECT n FROM agent_active_counts WHERE agent_name = ?), 0) AS n'),
      // Earlier runs of a policy-restarted process are not listed: the logical process is one entry, its current run.
      listAll: db.prepare(`SELECT * FROM processes WHERE status != 'starting' AND superseded_by IS NULL ORDER BY id DESC LIMIT ?`),
      listByStatus: db.prepare('SELECT * FROM processes WHERE status = ? AND superseded_by IS NULL ORDER BY id DESC LIMIT ?'),
      listAgent: db.prepare(`SELECT * FROM processes WHERE agent_name = ? AND status != 'starting' AND superseded_by IS NULL ORDER BY id DESC LIMIT ?`),
      listAgentStatus: db.prepare('SELECT * FROM processes WHERE agent_name = ? AND status = ? AND superseded_by IS NULL ORDER BY id DESC LIMIT ?'),
      listActive: db.prepare(`SELECT * FROM processes WHERE status IN ('starting', 'running') ORDER BY id`),
      listActiveIds: db.prepare(`SELECT id FROM processes WHERE status IN ('starting', 'running') ORDER BY id`).pluck(),
      // A run waiting for its policy restart belongs to the branch too: stopping the branch cancels it.
      listBranchActive: db.prepare(`SELECT * FROM processes WHERE spawned_by_branch = ? AND status IN ('running', 'restarting') ORDER BY id`),
      finish: db.prepare(`UPDATE processes SET status = @status, exit_code = @exitCode, signal = @signal, stopped_by = @stoppedBy,
          lost_reason = @lostReason, ended_at = @endedAt WHERE id = @id AND status IN ('starting', 'running')`),
      requestStop: db.prepare(`UPDATE processes SET stop_requested_by = ? WHERE id = ? AND status = 'running'`),
      saveOffsets: db.prepare(`UPDATE processes SET stdout_offset = @stdoutOffset, stderr_offset = @stderrOffset,
          stdout_rotated = @stdoutRotated, stderr_rotated = @stderrRotated, last_output_at = COALESCE(@lastOutputAt, last_output_at)
        WHERE id = @id`),
      recordSignal: db.prepare(`UPDATE processes SET last_signal = @signal, last_signal_by = @by, last_signal_at = @at,
          paused_at = CASE WHEN @signal = 'STOP' THEN @at WHEN @signal = 'CONT' THEN NULL ELSE paused_at END
        WHERE id = @id AND status = 'running'`),
      setProcessType: db.prepare(`UPDATE processes SET process_type = ? WHERE id = ? AND status = 'running'`),
      setStatusMessage: db.prepare('UPDATE processes SET status_channel_id = ?, discord_message_id = ? WHERE id = ?'),
      delete: db.prepare('DELETE FROM processes WHERE id = ?'),
      markReady: db.prepare(`UPDATE processes SET ready_at = ? WHERE id = ? AND ready_at IS NULL AND ready_error IS NULL`),
      markReadyFailed: db.prepare(`UPDATE processes SET ready_error = ? WHERE id = ? AND ready_at IS NULL AND ready_error IS NULL`),
      finishRestarting: db.prepare(`UPDATE processes SET status = 'restarting', exit_code = @exitCode, signal = @signal,
          stopped_by = @stoppedBy, lost_reason = @lostReason, ended_at = @endedAt, restart_due_at = @dueAt
        WHERE id = @id AND status IN ('starting', 'running')`),
      finishCrashLoop: db.prepare(`UPDATE processes SET status = 'crash_loop', exit_code = @exitCode, signal = @signal,
          stopped_by = @stoppedBy, lost_reason = @lostReason, ended_at = @endedAt WHERE id = @id AND status IN ('starting', 'running')`),
      // A superseded run keeps how it ended: killed when a stop was asked for, lost without a code, else exited.
      supersede: db.prepare(`UPDATE processes SET superseded_by = @next, restart_due_at = NULL,
          status = CASE WHEN stopped_by IS NOT NULL THEN 'killed' WHEN exit_code IS NULL THEN 'lost' ELSE 'exited' END
        WHERE id = @id AND status = 'restarting'`),
      cancelRestart: db.prepare(`UPDATE processes SET status = 'killed', stopped_by = @by, restart_due_at = NULL
        WHERE id = @id AND status = 'restarting'`),
      giveUpRestart: db.prepare(`UPDATE processes SET status = 'crash_loop', restart_due_at = NULL, lost_reason = COALESCE(lost_reason, @reason)
        WHERE id = @id AND status = 'restarting'`),
      listRestarting: db.prepare(`SELECT * FROM processes WHERE status = 'restarting' ORDER BY id`),
      requestRestart: db.prepare(`UPDATE processes SET restart_requested_by = ?, stop_requested_by = ? WHERE id = ? AND status = 'running'`),
      resetStreak: db.prepare('UPDATE processes SET restart_streak = 0 WHERE id = ?'),
      setStatusMessageFrom: db.prepare(`UPDATE processes SET (status_channel_id, discord_message_id) =
          (SELECT status_channel_id, discord_message_id FROM processes WHERE id = @from) WHERE id = @id`),
      previousRuns: db.prepare(`WITH RECURSIVE runs(id, n) AS (SELECT restarted_from, 1 FROM processes WHERE id = @id
          UNION ALL SELECT p.restarted_from, runs.n + 1 FROM processes p JOIN runs ON p.id = runs.id WHERE runs.n < @limit)
        SELECT p.* FROM processes p JOIN runs ON p.id = runs.id WHERE p.superseded_by IS NOT NULL ORDER BY p.id DESC`),
    };
  }

  /**
   * Inserts a row in state `starting`, invisible to lists until it is running. `spawner` is the lease: while that
   * process lives, the spawn is in progress and no supervisor may judge the row.
   */
  insertStarting(p: NewProcess, startedAt: string, spawner?: { pid: number; startTicks: number; bootId: string }): number {
    const { isInteractive, isTty, ...rest } = p;
    return Number(this.statements.insert.run({
      readyJson: null, restartJson: null, restartCount: 0, restartStreak: 0,
      ...rest, interactive: isInteractive ? 1 : 0, tty: isTty ? 1 : 0, startedAt,
      spawnerPid: spawner?.pid ?? null, spawnerStartTicks: spawner?.startTicks ?? null, spawnerBootId: spawner?.bootId ?? null,
    }).lastInsertRowid);
  }

  setPaths(id: number, runDir: string, stdoutLog: string, stderrLog: string): void {
    this.statements.setPaths.run(runDir, stdoutLog, stderrLog, id);
  }

  markRunning(id: number, identity: { pid: number; pgid: number; startTicks: number; bootId: string }, startedAt: string): boolean {
    return this.statements.markRunning.get({ id, ...identity, startedAt }) !== undefined;
  }

  /**
   * markRunning in one statement (its own transaction) that also reads the row back: the row as it now is, or
   * undefined when another writer had already moved it on from starting.
   */
  markRunningRecord(id: number, identity: { pid: number; pgid: number; startTicks: number; bootId: string }, startedAt: string): ProcessRecord | undefined {
    const row = this.statements.markRunning.get({ id, ...identity, startedAt }) as Row | undefined;
    return row && toRecord(row);
  }

  get(id: number): ProcessRecord | undefined {
    const row = this.statements.byId.get(id) as Row | undefined;
    return row && toRecord(row);
  }

  getByPid(pid: number, agentName?: string): ProcessRecord | undefined {
    const row = (agentName === undefined ? this.statements.byPid.get(pid) : this.statements.byAgentPid.get(agentName, pid)) as Row | undefined;
    return row && toRecord(row);
  }

  /** The current run of the logical process a row belongs to (the row itself unless a policy restart followed it). */
  current(record: ProcessRecord): ProcessRecord {
    let current = record;
    for (let hops = 0; current.supersededBy !== null && hops < 10_000; hops += 1) {
      const next = this.get(current.supersededBy);
      if (!next) break;
      current = next;
    }
    return current;
  }

  /** The first run of the logical process a row belongs to (the row itself unless a policy restart started it). */
  firstRun(record: ProcessRecord): ProcessRecord {
    let first = record;
    for (let hops = 0; first.restartedFrom !== null && hops < 10_000; hops += 1) {
      const previous = this.get(first.restartedFrom);
      if (!previous || previous.supersededBy !== first.id) break;
      first = previous;
    }
    return first;
  }

  markReady(id: number, at: string): boolean {
    return this.statements.markReady.run(at, id).changes === 1;
  }

  markReadyFailed(id: number, reason: string): boolean {
    return this.statements.markReadyFailed.run(reason, id).changes === 1;
  }

  /** Records a run's end with a restart due (first writer wins, like finish). */
  finishRestarting(id: number, end: ProcessEnd, dueAt: string): boolean {
    const { status: _status, ...fields } = end;
    return this.statements.finishRestarting.run({ id, ...fields, dueAt }).changes === 1;
  }

  finishCrashLoop(id: number, end: ProcessEnd): boolean {
    const { status: _status, ...fields } = end;
    return this.statements.finishCrashLoop.run({ id, ...fields }).changes === 1;
  }

  /** Inside the transaction that inserts the next run: false when another writer already moved the row on. */
  supersede(id: number, next: number): boolean {
    return this.statements.supersede.run({ id, next }).changes === 1;
  }

  cancelRestart(id: number, by: string): boolean {
    return this.statements.cancelRestart.run({ id, by }).changes === 1;
  }

  giveUpRestart(id: number, reason: string): boolean {
    return this.statements.giveUpRestart.run({ id, reason }).changes === 1;
  }

  listRestarting(): ProcessRecord[] {
    return (this.statements.listRestarting.all() as Row[]).map(toRecord);
  }

  requestRestart(id: number, by: string): void {
    this.statements.requestRestart.run(by, by, id);
  }

  resetStreak(id: number): void {
    this.statements.resetStreak.run(id);
  }

  copyStatusMessage(fromId: number, toId: number): void {
    this.statements.setStatusMessageFrom.run({ from: fromId, id: toId });
  }

  /** The runs before this one in its policy-restart chain, newest first. */
  previousRuns(id: number, limit: number): ProcessRecord[] {
    return (this.statements.previousRuns.all({ id, limit }) as Row[]).map(toRecord);
  }

  countActive(agentName: string): number {
    return (this.statements.countActive.get(agentName) as { n: number }).n;
  }

  list(options: { agentName?: string; status?: StatusFilter; limit?: number } = {}): ProcessRecord[] {
    const limit = options.limit ?? 1000;
    const status = options.status ?? 'all';
    const s = this.statements;
    const rows = options.agentName === undefined
      ? status === 'all' ? s.listAll.all(limit) : s.listByStatus.all(status, limit)
      : status === 'all' ? s.listAgent.all(options.agentName, limit) : s.listAgentStatus.all(options.agentName, status, limit);
    return (rows as Row[]).map(toRecord);
  }

  /** The ids of the active rows: cheaper than their records where most are known already. */
  listActiveIds(): number[] {
    return this.statements.listActiveIds.all() as number[];
  }

  /** Rows the supervisor must watch: running, and starting (a spawn that may have been cut short). */
  listActive(): ProcessRecord[] {
    return (this.statements.listActive.all() as Row[]).map(toRecord);
  }

  listRunningForBranch(branchId: string): ProcessRecord[] {
    return (this.statements.listBranchActive.all(branchId) as Row[]).map(toRecord);
  }

  /** Records the end once: the first writer wins, later ones change nothing and get false. */
  finish(id: number, end: ProcessEnd): boolean {
    return this.statements.finish.run({ id, ...end }).changes === 1;
  }

  requestStop(id: number, by: string): void {
    this.statements.requestStop.run(by, id);
  }

  saveOffsets(id: number, offsets: { stdoutOffset: number; stderrOffset: number; stdoutRotated: number; stderrRotated: number; lastOutputAt?: string | null }): void {
    this.statements.saveOffsets.run({ id, ...offsets, lastOutputAt: offsets.lastOutputAt ?? null });
  }

  /** Records a signal someone sent (`STOP` marks the process paused, `CONT` resumes it). */
  recordSignal(id: number, signal: string, by: string, at: string): void {
    this.statements.recordSignal.run({ id, signal, by, at });
  }

  /** A foreground command that goes on in the background. */
  setProcessType(id: number, type: ProcessType): boolean {
    return this.statements.setProcessType.run(type, id).changes === 1;
  }

  setStatusMessage(id: number, channelId: string | null, messageId: string | null): void {
    this.statements.setStatusMessage.run(channelId, messageId, id);
  }

  delete(id: number): void {
    this.statements.delete.run(id);
  }
}

import type { Db } from './database.js';

export type ProcessStatus = 'starting' | 'running' | 'exited' | 'killed' | 'lost';
export type ProcessType = 'background' | 'concurrent' | 'foreground';
export type ProcessCategory = 'test_suite' | 'build' | 'server' | 'analysis' | 'custom';
export type StatusFilter = 'all' | 'running' | 'exited' | 'killed' | 'lost';
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
  };
}

/** All SQL about processes. Statements are prepared once. */
export class ProcessRepo {
  private readonly statements;

  constructor(private readonly db: Db) {
    this.statements = {
      insert: db.prepare(`INSERT INTO processes (command, name, category, working_directory, agent_name, started_at,
          process_type, spawned_by_branch, run_dir, stdout_log, stderr_log, status, context_json, model_for_hooks,
          hook_recursion_depth, timeout_seconds, restarted_from, sandbox, spawner_pid, spawner_start_ticks, spawner_boot_id, interactive, tty)
        VALUES (@command, @name, @category, @workingDirectory, @agentName, @startedAt, @processType, @spawnedByBranch,
          '', '', '', 'starting', @contextJson, @modelForHooks, @hookRecursionDepth, @timeoutSeconds, @restartedFrom, @sandbox,
          @spawnerPid, @spawnerStartTicks, @spawnerBootId, @interactive, @tty)`),
      setPaths: db.prepare('UPDATE processes SET run_dir = ?, stdout_log = ?, stderr_log = ? WHERE id = ?'),
      markRunning: db.prepare(`UPDATE processes SET status = 'running', pid = @pid, pgid = @pgid, start_ticks = @startTicks,
          boot_id = @bootId, started_at = @startedAt WHERE id = @id AND status = 'starting'`),
      byId: db.prepare('SELECT * FROM processes WHERE id = ?'),
      // The live row wins for a reused pid; then the newest.
      byPid: db.prepare(`SELECT * FROM processes WHERE pid = ? ORDER BY (status = 'running') DESC, id DESC LIMIT 1`),
      byAgentPid: db.prepare(`SELECT * FROM processes WHERE agent_name = ? AND pid = ? ORDER BY (status = 'running') DESC, id DESC LIMIT 1`),
      countActive: db.prepare(`SELECT COUNT(*) AS n FROM processes WHERE agent_name = ? AND status IN ('starting', 'running')`),
      listAll: db.prepare(`SELECT * FROM processes WHERE status != 'starting' ORDER BY id DESC LIMIT ?`),
      listByStatus: db.prepare('SELECT * FROM processes WHERE status = ? ORDER BY id DESC LIMIT ?'),
      listAgent: db.prepare(`SELECT * FROM processes WHERE agent_name = ? AND status != 'starting' ORDER BY id DESC LIMIT ?`),
      listAgentStatus: db.prepare('SELECT * FROM processes WHERE agent_name = ? AND status = ? ORDER BY id DESC LIMIT ?'),
      listActive: db.prepare(`SELECT * FROM processes WHERE status IN ('starting', 'running') ORDER BY id`),
      listBranchActive: db.prepare(`SELECT * FROM processes WHERE spawned_by_branch = ? AND status = 'running' ORDER BY id`),
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
    };
  }

  /**
   * Inserts a row in state `starting`, invisible to lists until it is running. `spawner` is the lease: while that
   * process lives, the spawn is in progress and no supervisor may judge the row.
   */
  insertStarting(p: NewProcess, startedAt: string, spawner?: { pid: number; startTicks: number; bootId: string }): number {
    const { isInteractive, isTty, ...rest } = p;
    return Number(this.statements.insert.run({
      ...rest, interactive: isInteractive ? 1 : 0, tty: isTty ? 1 : 0, startedAt,
      spawnerPid: spawner?.pid ?? null, spawnerStartTicks: spawner?.startTicks ?? null, spawnerBootId: spawner?.bootId ?? null,
    }).lastInsertRowid);
  }

  setPaths(id: number, runDir: string, stdoutLog: string, stderrLog: string): void {
    this.statements.setPaths.run(runDir, stdoutLog, stderrLog, id);
  }

  markRunning(id: number, identity: { pid: number; pgid: number; startTicks: number; bootId: string }, startedAt: string): boolean {
    return this.statements.markRunning.run({ id, ...identity, startedAt }).changes === 1;
  }

  get(id: number): ProcessRecord | undefined {
    const row = this.statements.byId.get(id) as Row | undefined;
    return row && toRecord(row);
  }

  getByPid(pid: number, agentName?: string): ProcessRecord | undefined {
    const row = (agentName === undefined ? this.statements.byPid.get(pid) : this.statements.byAgentPid.get(agentName, pid)) as Row | undefined;
    return row && toRecord(row);
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

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }
}

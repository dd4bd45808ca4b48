import { AppError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ProcessEnd, ProcessRecord, ProcessRepo } from '../store/process-repo.js';
import { RESTART_DEFAULTS, restartPolicyOf, type RestartPolicy } from './supervision-spec.js';

/** What the engine needs of the manager: start the next run of a row (its withRow runs inside the insert). */
export type SpawnNextRun = (previous: ProcessRecord, next: { restartCount: number; restartStreak: number; withRow: (processId: number) => void }) => Promise<ProcessRecord>;

export interface RestartEngineOptions {
  repo: ProcessRepo;
  log: Logger;
  spawnNext: SpawnNextRun;
  /** A run ended and its next run is due (stored as `restarting`). */
  onRestarting: (record: ProcessRecord) => void;
  /** The restarts ran out (or the next run could not start): the logical process ended as `crash_loop`. */
  onCrashLoop: (record: ProcessRecord) => void;
}

export type SettledAs = 'final' | 'restarting' | 'crash_loop';

/** The delay before restart number `streak + 1` in a row: backoff doubling up to the cap. */
export function backoffSeconds(policy: RestartPolicy, streak: number): number {
  return Math.min(policy.max_backoff_seconds, policy.backoff_seconds * 2 ** Math.min(streak, 30));
}

function uptimeMs(record: ProcessRecord, endedAt: string): number {
  return Date.parse(endedAt) - Date.parse(record.startedAt);
}

/**
 * Restart policies: decides at each end whether the logical process runs again, stores the pending restart and its
 * due time (so a supervisor restart neither loses nor doubles it), starts the next run when it is due, and resets the
 * count once a run has stayed up for min_uptime_seconds.
 */
export class RestartEngine {
  private readonly pending = new Map<number, NodeJS.Timeout>();
  private readonly uptimeTimers = new Map<number, NodeJS.Timeout>();
  private readonly runListeners: Array<(fromId: number, toId: number) => void> = [];
  private isClosed = false;

  constructor(private readonly options: RestartEngineOptions) {}

  /** Runs inside the transaction that inserts a policy restart's next run (the hook layer copies hooks here). */
  onNewRun(listener: (fromId: number, toId: number) => void): void {
    this.runListeners.push(listener);
  }

  /** The policy that applies to a run's end: its own, or the defaults for a restart someone asked for. */
  private policyFor(record: ProcessRecord): RestartPolicy | undefined {
    try {
      return restartPolicyOf(record.restartJson);
    } catch (error) {
      this.options.log.error({ id: record.id, err: error }, 'stored restart policy is invalid; not restarting');
      return undefined;
    }
  }

  /** Records the end of a run: final, a restart due, or the crash loop. First writer wins, as with finish. */
  settle(record: ProcessRecord, end: ProcessEnd): SettledAs | undefined {
    const { repo } = this.options;
    const fresh = repo.get(record.id) ?? record;
    const decision = this.decide(fresh, end);
    if (decision.kind !== 'restart') {
      if (decision.kind === 'final') return repo.finish(fresh.id, end) ? 'final' : undefined;
      return repo.finishCrashLoop(fresh.id, end) ? 'crash_loop' : undefined;
    }
    return repo.finishRestarting(fresh.id, end, decision.dueAt) ? 'restarting' : undefined;
  }

  private decide(record: ProcessRecord, end: ProcessEnd): { kind: 'final' } | { kind: 'crash_loop' } | { kind: 'restart'; dueAt: string } {
    const isRequested = record.restartRequestedBy !== null;
    const policy = this.policyFor(record);
    if (!isRequested) {
      // A stop someone asked for never restarts.
      if (end.status === 'killed' || !policy || policy.on === 'never') return { kind: 'final' };
      if (policy.on === 'failure' && end.status === 'exited' && end.exitCode === 0) return { kind: 'final' };
    }
    const effective = policy ?? RESTART_DEFAULTS;
    const streak = this.streakAtEnd(record, effective, end.endedAt);
    if (streak >= effective.max_restarts) return { kind: 'crash_loop' };
    const dueAt = Date.parse(end.endedAt) + backoffSeconds(effective, streak) * 1000;
    return { kind: 'restart', dueAt: new Date(dueAt).toISOString() };
  }

  private streakAtEnd(record: ProcessRecord, policy: RestartPolicy, endedAt: string): number {
    return uptimeMs(record, endedAt) >= policy.min_uptime_seconds * 1000 ? 0 : record.restartStreak;
  }

  /** Arms the next run of a `restarting` row at its stored due time (at once when it is past). Idempotent. */
  schedule(record: ProcessRecord): void {
    if (this.isClosed || record.status !== 'restarting' || this.pending.has(record.id)) return;
    const delayMs = Math.max(0, Date.parse(record.restartDueAt ?? record.endedAt ?? '') - Date.now() || 0);
    const timer = setTimeout(() => {
      this.pending.delete(record.id);
      void this.startNext(record.id);
    }, delayMs);
    timer.unref();
    this.pending.set(record.id, timer);
  }

  /** Every stored pending restart (at supervisor start, and when a client recorded one). */
  resume(): void {
    for (const record of this.options.repo.listRestarting()) this.schedule(record);
  }

  /** A stop asked for while a restart is pending: the logical process ends there. */
  cancel(record: ProcessRecord, by: string): ProcessRecord | undefined {
    clearTimeout(this.pending.get(record.id));
    this.pending.delete(record.id);
    if (!this.options.repo.cancelRestart(record.id, by)) return undefined;
    return this.options.repo.get(record.id);
  }

  /** A run with restarts behind it: once it has stayed up min_uptime_seconds, the count in a row starts again. */
  armUptime(record: ProcessRecord): void {
    if (record.restartStreak === 0 || this.uptimeTimers.has(record.id)) return;
    const policy = this.policyFor(record) ?? RESTART_DEFAULTS;
    const delayMs = Math.max(0, Date.parse(record.startedAt) + policy.min_uptime_seconds * 1000 - Date.now());
    const timer = setTimeout(() => {
      this.uptimeTimers.delete(record.id);
      const fresh = this.options.repo.get(record.id);
      if (fresh?.status === 'running') this.options.repo.resetStreak(record.id);
    }, delayMs);
    timer.unref();
    this.uptimeTimers.set(record.id, timer);
  }

  disarmUptime(processId: number): void {
    clearTimeout(this.uptimeTimers.get(processId));
    this.uptimeTimers.delete(processId);
  }

  close(): void {
    this.isClosed = true;
    for (const timer of [...this.pending.values(), ...this.uptimeTimers.values()]) clearTimeout(timer);
    this.pending.clear();
    this.uptimeTimers.clear();
  }

  private async startNext(previousId: number): Promise<void> {
    const { repo, log } = this.options;
    const previous = repo.get(previousId);
    if (this.isClosed || !previous || previous.status !== 'restarting') return;
    const policy = this.policyFor(previous) ?? RESTART_DEFAULTS;
    const streak = this.streakAtEnd(previous, policy, previous.endedAt ?? new Date().toISOString()) + 1;
    try {
      const next = await this.options.spawnNext(previous, {
        restartCount: previous.restartCount + 1,
        restartStreak: streak,
        withRow: (processId) => {
          // In the insert's transaction: the old row moves on exactly once, or the new row is rolled back.
          if (!repo.supersede(previous.id, processId)) throw new AppError('PROCESS_NOT_RUNNING', `the restart of #${previous.id} was cancelled`);
          repo.copyStatusMessage(previous.id, processId);
          for (const listener of this.runListeners) listener(previous.id, processId);
        },
      });
      log.info({ id: next.id, previous: previous.id, pid: next.pid, restarts: next.restartCount, streak }, 'process restarted by its policy');
    } catch (error) {
      const fresh = repo.get(previousId);
      if (fresh?.status !== 'restarting') return;
      log.warn({ id: previousId, err: error }, 'a policy restart could not start the next run');
      if (repo.giveUpRestart(previousId, `the next run could not start: ${errorMessage(error)}`)) this.options.onCrashLoop(repo.get(previousId)!);
    }
  }
}

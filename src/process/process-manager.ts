import { existsSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { DEFAULT_KILL_GRACE_MS, DEFAULT_LOG_CAP_BYTES } from '../config.js';
import { AppError, errorMessage, isAppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { Checkpointer } from '../store/checkpointer.js';
import type { Db } from '../store/database.js';
import { ProcessRepo, type LogStream, type ProcessEnd, type ProcessRecord, type StatusFilter } from '../store/process-repo.js';
import { SupervisorRepo } from '../store/supervisor-repo.js';
import { TypedEmitter, type LineEvent, type LineReader, type LineWindow, type ProcessEvents, type ResourceSample } from './events.js';
import { checkIdentity, inspectIdentity, isForbiddenPid, type IdentityState, type ProcessIdentity } from './identity.js';
import { killTree } from './kill.js';
import { OutputMonitor } from './output-monitor.js';
import { environHas, isPidPresent, readAllStats, type ProcStat } from './proc-fs.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { ResourceSampler } from './resource-sampler.js';
import { SpreadRound } from './spread-round.js';
import { parseExitFile } from './shim.js';
import type { OwnerLoader, ProcessOwner } from './owner.js';
import { exitFilePath, findByRunMarker, runMarker, spawnProcess, type SpawnRequest } from './spawn.js';
import { ShimLaunchers } from './forker.js';
import { acquireSupervisorLock, releaseSupervisorLock, runningSupervisor } from './supervisor-lock.js';
import type { SupervisorRow } from '../store/supervisor-repo.js';
import { RollingTail, TAIL_LINES, type TailLine } from './tail.js';
import { captureIdentity } from './identity.js';
import { inputFiles, sendInput } from './input.js';
import { signalProcess, type SendableSignal } from './signals.js';
import { stripTerminal } from './terminal.js';
import { SandboxHost, type SandboxSettings } from './sandbox.js';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Readiness } from './readiness.js';
import { RestartEngine } from './restart-policy.js';

export interface ProcessManagerOptions {
  home: string;
  db: Db;
  log: Logger;
  graceMs?: number;
  logCapBytes?: number;
  /**
   * The slow poll while nothing changes: a slice of the safety net and of the identity round, and rows another
   * process (the CLI) wrote whose write event was missed. Rows written are seen at once through the store's write
   * events; ends through the exit files' events. While a spawn is in progress, or a run directory could not be
   * watched, the poll runs at least once a second.
   */
  pollIntervalMs?: number;
  /**
   * Ends are seen through the exit file's directory event; as a safety net every watched process is also probed
   * (`kill(pid, 0)`) once per this period, spread over the polls: an end whose event was missed is seen within this
   * period plus one poll.
   */
  safetyNetMs?: number;
  /** The resource sampling rate while someone looks (a status message, a CPU watchdog); nothing is sampled while nobody does. */
  resourceIntervalMs?: number;
  /** The sampling rate a memory watchdog (on_resource with memory_mb only) asks for: 10 s by default. */
  resourceWatchIntervalMs?: number;
  /** Every watched process's full identity (start time) is re-checked once per this period, spread over the polls. */
  identityCheckMs?: number;
  offsetFlushMs?: number;
  /** How often the supervisor's checkpoint thread looks at the store's log (src/store/checkpointer.ts); 1 s by default. */
  checkpointIntervalMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Reads an owner's current settings by name (for restarts and spawns that name the agent). */
  loadOwner: OwnerLoader;
  /** How processes are confined; by default `auto`, protecting the home and hiding the credentials of env.HOME. */
  sandbox?: Partial<SandboxSettings> | undefined;
  /**
   * How shims are started: `forker` (the default: the native forker where it was built, else the perl forker; a small
   * process forks them, so the supervisor never forks its own heap), `perl` (the perl forker and the sh shim, even
   * where the native one was built) or `node` (Node's spawn, the last fallback).
   */
  launcher?: 'forker' | 'perl' | 'node';
}

export interface StopOptions {
  force?: boolean;
  /** Stop this run and start the next one through the restart policy (counted, with backoff). */
  isRestart?: boolean;
  /** Who asked: a user id, `agent:<name>`, `hook:<id>`, `cli`, `timeout`. */
  by: string;
}

export type ProcessLookup = { id: number } | { pid: number; agentName?: string };

interface Entry {
  record: ProcessRecord;
  identity: ProcessIdentity;
  monitor: OutputMonitor;
  tail: RollingTail;
  isStopping: boolean;
  ending: Promise<void> | null;
  timeoutTimer: NodeJS.Timeout | undefined;
  /** When output was last read (epoch ms: a Date per read, not per line); stored with the offsets. */
  lastOutputAtMs: number | null;
  /** Whether 'line' has listeners, as of the last read (see wantsLines). */
  hasLineListeners: boolean;
}

/** Default slow poll, and the rate the poll never falls below while a spawn is in progress or a monitor has no watch. */
const DEFAULT_POLL_MS = 5_000;
const BUSY_POLL_MS = 1_000;
/** A write to the store is looked at this long after its event, so one look covers a spawner's few transactions. */
const STORE_SETTLE_MS = 20;

/** How long a paused group may take to stop entirely before the rotation goes ahead without the pause. */
const PAUSE_CONFIRM_MS = 200;

function readExitCode(runDir: string): number | undefined {
  try {
    return parseExitFile(readFileSync(exitFilePath(runDir), 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Whether a row's process still runs, with the /proc stat that says so; a row without a stored identity can prove
 * nothing, so it counts as a mismatch.
 */
function inspectRecord(record: ProcessRecord): { state: IdentityState; stat: ProcStat | undefined } {
  const identity = identityOf(record);
  return identity ? inspectIdentity(identity) : { state: 'mismatch', stat: undefined };
}

function identityState(record: ProcessRecord): IdentityState {
  return inspectRecord(record).state;
}

function identityOf(record: ProcessRecord): ProcessIdentity | undefined {
  if (record.pid === null || record.startTicks === null || record.bootId === null) return undefined;
  return { pid: record.pid, pgid: record.pgid ?? record.pid, startTicks: record.startTicks, bootId: record.bootId };
}

/** Whether a starting row's spawner (its lease) still runs: until it ends, the spawn is in progress. */
function isSpawnInProgress(record: ProcessRecord): boolean {
  if (!record.spawner) return false;
  return checkIdentity({ ...record.spawner, pgid: 0 }, { checkGroup: false }) === 'alive';
}

function signalName(exitCode: number | null): string | null {
  if (exitCode === null || exitCode <= 128) return null;
  const found = Object.entries(osConstants.signals).find(([, n]) => n === exitCode - 128);
  return found ? found[0] : null;
}

/** How a process that is no longer running ended, from what can be observed; writes nothing. */
export function observedEnd(record: ProcessRecord, state: IdentityState, exitCode: number | undefined): ProcessEnd {
  const endedAt = new Date().toISOString();
  if (record.stopRequestedBy) {
    return { status: 'killed', exitCode: exitCode ?? null, signal: signalName(exitCode ?? null), stoppedBy: record.stopRequestedBy, lostReason: null, endedAt };
  }
  if (exitCode !== undefined) return { status: 'exited', exitCode, signal: null, stoppedBy: null, lostReason: null, endedAt };
  const lostReason = state === 'mismatch'
    ? 'its pid now belongs to another process (or the machine rebooted); it was not signalled'
    : 'it vanished without an exit status';
  return { status: 'lost', exitCode: null, signal: null, stoppedBy: null, lostReason, endedAt };
}

/**
 * The process core: spawns, follows, stops and recovers processes. Without `startSupervising()` it is a client
 * (the CLI): it spawns, stops and reads, and leaves watching to the supervisor.
 */
export class ProcessManager extends TypedEmitter<ProcessEvents> {
  readonly repo: ProcessRepo;
  readonly home: string;
  private readonly supervisorRepo: SupervisorRepo;
  private readonly log: Logger;
  private readonly graceMs: number;
  private readonly logCapBytes: number;
  private readonly pollIntervalMs: number;
  private readonly offsetFlushMs: number;
  /** CPU and memory of the watched processes; upper layers declare interest or subscribe to a process's samples here. */
  readonly resources: ResourceSampler;
  private readonly safetyNet: SpreadRound<Entry>;
  private readonly identityRound: SpreadRound<Entry>;
  /** Processes that read output since their position was last stored. */
  private readonly dirtyOffsets = new Set<Entry>();
  private readonly lineReaders: LineReader[] = [];
  private readonly env: NodeJS.ProcessEnv;
  private readonly loadOwner: OwnerLoader;
  /** Decides, for every spawn (and run_command), whether and how the process is confined. */
  readonly sandbox: SandboxHost;
  /** Starts the shims (src/process/forker.ts). */
  readonly launcher: ShimLaunchers;
  /** Restart policies: pending restarts, backoff, the crash loop. */
  readonly restarts: RestartEngine;
  private readonly readiness: Readiness;
  private readonly entries = new Map<number, Entry>();
  private readonly positionListeners: Array<(processIds: readonly number[]) => void> = [];
  private pollTimer: NodeJS.Timeout | undefined;
  private storeTimer: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private storeWatcher: FSWatcher | undefined;
  /** The supervisor checkpoints the store's log on a thread of its own, so no commit here waits for an fsync. */
  private checkpointer: Checkpointer | undefined;
  /** Whether write events of the store arrive (its watch is dropped for a moment while a look is due). */
  private isStoreWatched = false;
  private isSupervising = false;
  private isClosed = false;
  private hasSpawnsInProgress = false;
  private dataVersion = -1;
  private lastReconcileAt = 0;
  private reconciling: Promise<void> | undefined;

  constructor(private readonly options: ProcessManagerOptions) {
    super();
    this.home = options.home;
    this.repo = new ProcessRepo(options.db);
    this.supervisorRepo = new SupervisorRepo(options.db);
    this.log = options.log.child({ module: 'process' });
    this.graceMs = options.graceMs ?? DEFAULT_KILL_GRACE_MS;
    this.logCapBytes = options.logCapBytes ?? DEFAULT_LOG_CAP_BYTES;
    this.pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_MS;
    this.safetyNet = new SpreadRound(options.safetyNetMs ?? 10_000, this.pollIntervalMs);
    this.identityRound = new SpreadRound(options.identityCheckMs ?? 300_000, this.pollIntervalMs);
    this.resources = new ResourceSampler({
      activeIntervalMs: options.resourceIntervalMs ?? 3_000,
      watchIntervalMs: options.resourceWatchIntervalMs ?? 10_000,
      processes: () => [...this.entries.values()].filter((e) => !e.ending).map((e) => ({ processId: e.record.id, identity: e.identity })),
      onChanged: (sample) => this.emit('resources', sample),
      onMissing: (ids) => {
        for (const id of ids) {
          const entry = this.entries.get(id);
          if (entry) this.checkEnded(entry);
        }
      },
      log: this.log,
    });
    this.offsetFlushMs = options.offsetFlushMs ?? 1_000;
    this.env = options.env ?? process.env;
    this.loadOwner = options.loadOwner;
    this.sandbox = new SandboxHost({
      mode: 'auto', userHome: this.env.HOME ?? homedir(), emptyFile: join(this.home, 'sandbox-empty'), ...options.sandbox,
      protectedDirs: [this.home, ...(options.sandbox?.protectedDirs ?? [])],
    });
    this.launcher = new ShimLaunchers({
      useForker: (options.launcher ?? 'forker') !== 'node',
      ...(options.launcher === 'perl' ? { native: false as const } : {}),
      path: this.env.PATH,
      onFallback: (why, next) => this.log.warn({ why }, next === 'perl'
        ? 'processes are started by the perl forker and the sh shim (about 2 ms more CPU a spawn)'
        : 'the forker cannot run here; processes are started with Node\'s spawn'),
    });
    this.restarts = new RestartEngine({
      repo: this.repo,
      log: this.log,
      spawnNext: (previous, next) => this.spawn({ ...this.requestFrom(previous), ...next, restartedFrom: previous.id }),
      onRestarting: (record) => this.emit('restarting', record),
      onCrashLoop: (record) => this.emit('exited', record),
    });
    this.readiness = new Readiness({
      repo: this.repo,
      log: this.log,
      onReady: (record) => {
        this.log.info({ id: record.id, pid: record.pid }, 'process ready');
        this.emit('ready', record);
      },
      onFailed: (record, reason) => {
        this.log.info({ id: record.id, pid: record.pid, reason }, 'process not ready');
        this.emit('readyFailed', record, reason);
      },
    });
  }

  /** The store connection; layers above share it, so their writes can join the core's transactions. */
  get db(): Db {
    return this.options.db;
  }

  get supervising(): boolean {
    return this.isSupervising;
  }

  /** The supervisor of this home, in this process or another, if one runs. */
  runningSupervisor(): SupervisorRow | undefined {
    return runningSupervisor(this.supervisorRepo);
  }

  /** Takes the home's supervisor lock, settles or adopts every row left running, then watches. */
  async startSupervising(): Promise<void> {
    acquireSupervisorLock(this.supervisorRepo, this.home);
    this.isSupervising = true;
    this.checkpointer = Checkpointer.start(this.options.db, {
      ...(this.options.checkpointIntervalMs === undefined ? {} : { intervalMs: this.options.checkpointIntervalMs }),
      onError: (message, isFatal) => this.log.warn({ why: message }, isFatal
        ? 'the checkpoint thread ended: the store is checkpointed by the supervisor\'s own commits again'
        : 'checkpointing the store failed; the checkpoint thread tries again'),
    });
    // The probe runs once, here, so no spawn pays for it; auto without a working bwrap says so once.
    const warning = this.sandbox.warning();
    if (warning) this.log.warn({ fix: 'apt-get install bubblewrap, or CHORUS_SANDBOX=off to silence this' }, warning);
    await this.reconcile();
    this.watchStore();
    this.schedulePoll();
    this.resources.start();
    this.log.info({ processes: this.entries.size, sandbox: this.sandbox.kind() }, 'supervising');
  }

  async spawn(request: Omit<SpawnRequest, 'agent'> & { agent: ProcessOwner | string }): Promise<ProcessRecord> {
    const agent = typeof request.agent === 'string' ? this.loadOwner(request.agent) : request.agent;
    const record = await spawnProcess(this.home, this.repo, { ...request, agent }, this.sandbox, this.launcher, this.env);
    this.log.info({ id: record.id, pid: record.pid, agent: agent.name, type: record.processType, sandbox: record.sandbox }, 'process started');
    if (this.isSupervising) {
      this.attach(record, { mayBePaused: false });
      this.emit('started', record);
    }
    return record;
  }

  /** Finds a row by id, or by pid (the live row wins when the OS reused a pid), optionally within one agent. */
  find(lookup: ProcessLookup): ProcessRecord | undefined {
    const found = 'id' in lookup ? this.repo.get(lookup.id) : this.repo.getByPid(lookup.pid, lookup.agentName);
    // One handle across policy restarts: an earlier run's pid or id names the current run.
    return found && this.repo.current(found);
  }

  /** Like find, but a missing row, or one of another agent, is a user-facing error. */
  resolve(lookup: ProcessLookup): ProcessRecord {
    const record = this.find(lookup);
    if (!record || record.status === 'starting') {
      const what = 'id' in lookup ? `process #${lookup.id}` : `pid ${lookup.pid}`;
      const scope = 'agentName' in lookup && lookup.agentName ? ` for agent ${lookup.agentName}` : '';
      throw new AppError('PROCESS_NOT_FOUND', `${what}${scope}; list processes to see valid pids`);
    }
    return record;
  }

  list(options: { agentName?: string; status?: StatusFilter; limit?: number } = {}): ProcessRecord[] {
    return this.repo.list(options);
  }

  /** The last lines across both streams, oldest first; only the supervisor keeps them in memory. */
  tail(id: number, limit?: number): TailLine[] | undefined {
    return this.entries.get(id)?.tail.toArray(limit);
  }

  /** The last CPU and memory sample of a watched process; `maxAgeMs` samples first when the last one is older. */
  usage(id: number, options: { maxAgeMs?: number } = {}): ResourceSample | undefined {
    return this.entries.has(id) ? this.resources.usage(id, options) : undefined;
  }

  isWatching(id: number): boolean {
    return this.entries.has(id);
  }

  /** The logical read position of a stream (bytes since the process started), for cursors. */
  readPosition(id: number, stream: LogStream): number | undefined {
    return this.entries.get(id)?.monitor.logicalOffset(stream);
  }

  /**
   * Stops a process and everything it started: identity check, SIGTERM, grace, SIGKILL, confirm. A process whose
   * identity no longer holds is marked ended and never signalled.
   */
  async kill(lookup: ProcessLookup, options: StopOptions): Promise<ProcessRecord> {
    const record = this.resolve(lookup);
    if (record.status === 'restarting' && !options.isRestart) {
      const cancelled = this.restarts.cancel(record, options.by);
      if (cancelled) {
        this.log.info({ id: record.id, by: options.by }, 'pending restart cancelled');
        this.emit('killed', cancelled);
        return cancelled;
      }
    }
    if (record.status !== 'running') throw new AppError('PROCESS_NOT_RUNNING', `pid ${record.pid} already ended (${describeEnd(record)})`);
    if (record.pid === null || isForbiddenPid(record.pid)) throw new AppError('PID_FORBIDDEN', `pid ${record.pid} is never signalled`);
    const state = identityState(record);
    const entry = this.entries.get(record.id);
    if (state !== 'alive') {
      const ended = await this.settleEnded(record, state);
      const why = ended.status === 'lost' ? `it is gone (${ended.lostReason})` : `it already ended (${describeEnd(ended)})`;
      throw new AppError(state === 'mismatch' ? 'PROCESS_IDENTITY_MISMATCH' : 'PROCESS_NOT_RUNNING', `pid ${record.pid}: ${why}; nothing was signalled`);
    }
    if (options.isRestart) this.repo.requestRestart(record.id, options.by);
    else this.repo.requestStop(record.id, options.by);
    if (entry) entry.isStopping = true;
    // A paused process acts on SIGTERM only once it runs again.
    if (record.pausedAt) signalProcess(identityOf(record)!, null, 'CONT', { isTty: false });
    let signal: string;
    try {
      ({ signal } = await killTree(identityOf(record)!, runMarker(record.runDir), { graceMs: this.graceMs, force: options.force ?? false }));
    } catch (error) {
      if (entry) entry.isStopping = false;
      throw error;
    }
    const end: ProcessEnd = {
      status: 'killed', exitCode: readExitCode(record.runDir) ?? null, signal, stoppedBy: options.by, lostReason: null,
      endedAt: new Date().toISOString(),
    };
    if (entry) await this.finishEntry(entry, end);
    else this.restarts.settle(record, end);
    this.log.info({ id: record.id, pid: record.pid, signal, by: options.by }, 'process stopped');
    return this.repo.get(record.id)!;
  }

  async killAllForAgent(agentName: string, options: StopOptions): Promise<ProcessRecord[]> {
    // A run waiting for its policy restart is stopped too: its restart is cancelled.
    const running = [...this.repo.list({ agentName, status: 'running' }), ...this.repo.list({ agentName, status: 'restarting' })];
    const results = await Promise.allSettled(running.map((r) => this.kill({ id: r.id }, options)));
    const failed = results.flatMap((r, i) => (r.status === 'rejected' && !isAppError(r.reason, 'PROCESS_NOT_RUNNING') ? [{ id: running[i]!.id, reason: r.reason as unknown }] : []));
    if (failed.length) {
      this.log.error({ agent: agentName, failed: failed.map((f) => ({ id: f.id, err: errorMessage(f.reason) })) }, 'some processes could not be stopped');
      throw new AppError('KILL_FAILED', `${failed.length} of ${running.length} processes of agent ${agentName}: ${failed.map((f) => errorMessage(f.reason)).join('; ')}`);
    }
    return results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  }

  /**
   * Sends a signal to a running process (its group, and the processes of its terminal) after the identity check, and
   * records who sent what; STOP marks it paused until CONT. A stop someone asked for goes through kill().
   */
  signal(lookup: ProcessLookup, signal: SendableSignal, options: { by: string }): ProcessRecord {
    const record = this.resolve(lookup);
    if (record.status !== 'running') throw new AppError('PROCESS_NOT_RUNNING', `pid ${record.pid} already ended (${describeEnd(record)}); nothing was signalled`);
    const identity = identityOf(record);
    if (!identity || isForbiddenPid(identity.pid)) throw new AppError('PID_FORBIDDEN', `pid ${record.pid} is never signalled`);
    signalProcess(identity, runMarker(record.runDir), signal, { isTty: record.isTty });
    this.repo.recordSignal(record.id, signal, options.by, new Date().toISOString());
    const fresh = this.repo.get(record.id)!;
    const entry = this.entries.get(record.id);
    if (entry) entry.record = { ...entry.record, pausedAt: fresh.pausedAt };
    this.log.info({ id: record.id, pid: record.pid, signal, by: options.by }, 'signal sent');
    this.emit('changed', fresh);
    return fresh;
  }

  /** Writes to the stdin of a running interactive process (whole, or refused); `eof` closes it after the text. */
  async input(lookup: ProcessLookup, text: string, options: { isEof?: boolean } = {}): Promise<{ record: ProcessRecord; bytes: number }> {
    const record = this.resolve(lookup);
    if (!record.isInteractive) {
      throw new AppError('NOT_INTERACTIVE', `pid ${record.pid} reads no input (its stdin is /dev/null); start it with interactive (or tty) to send it input`);
    }
    if (record.status !== 'running' || this.observe(record).status !== 'running') {
      throw new AppError('PROCESS_NOT_RUNNING', `pid ${record.pid} already ended (${describeEnd(this.observe(record))}); nothing was sent`);
    }
    const { bytes } = await sendInput(inputFiles(record.runDir), text, options);
    this.log.info({ id: record.id, pid: record.pid, bytes, eof: options.isEof ?? false }, 'input sent');
    return { record, bytes };
  }

  /** A foreground command that goes on as a background process (with its status message). */
  moveToBackground(id: number): ProcessRecord | undefined {
    if (!this.repo.setProcessType(id, 'background')) return undefined;
    const fresh = this.repo.get(id)!;
    const entry = this.entries.get(id);
    if (entry) entry.record = { ...entry.record, processType: 'background' };
    this.emit('changed', fresh);
    return fresh;
  }

  /** Stops the process if it runs, then starts the same command again (same directory, type, name), linked to the old row. */
  async restart(lookup: ProcessLookup, options: StopOptions & { withRow?: SpawnRequest['withRow'] }): Promise<ProcessRecord> {
    const old = this.resolve(lookup);
    // A person's restart replaces a pending policy restart rather than adding a second run.
    if (old.status === 'restarting') this.restarts.cancel(old, options.by);
    if (old.status === 'running') {
      try {
        await this.kill({ id: old.id }, options);
      } catch (error) {
        if (!(error instanceof AppError) || !['PROCESS_NOT_RUNNING', 'PROCESS_IDENTITY_MISMATCH'].includes(error.code)) throw error;
      }
    }
    return this.spawn({ ...this.requestFrom(old), restartedFrom: old.id, withRow: options.withRow });
  }

  /** The same command, directory, type, name, readiness and restart policy as a row: for restarts of every kind. */
  private requestFrom(old: ProcessRecord): Omit<SpawnRequest, 'agent'> & { agent: string } {
    return {
      agent: old.agentName,
      command: old.command,
      workingDirectory: old.workingDirectory,
      processType: old.processType === 'foreground' ? 'background' : old.processType,
      name: old.name ?? undefined,
      category: old.category ?? undefined,
      spawnedByBranch: old.spawnedByBranch ?? undefined,
      contextJson: old.contextJson ?? undefined,
      modelForHooks: old.modelForHooks ?? undefined,
      hookRecursionDepth: old.hookRecursionDepth,
      timeoutSeconds: old.timeoutSeconds ?? undefined,
      readyJson: old.readyJson ?? undefined,
      restartJson: old.restartJson ?? undefined,
      interactive: old.isInteractive,
      tty: old.isTty,
    };
  }

  /** What is true of a row now, from /proc and the exit file, without writing (the CLI's view). */
  observe(record: ProcessRecord): ProcessRecord {
    if (record.status !== 'running') return record;
    const state = identityState(record);
    const exitCode = readExitCode(record.runDir);
    if (state === 'alive' && exitCode === undefined) return record;
    return { ...record, ...observedEnd(record, state, exitCode) };
  }

  /**
   * Records now an end that `observe` saw (its exit file), when this supervisor watches the process, rather than on
   * the file's event a moment later; the stored row after.
   */
  async settleObserved(id: number): Promise<ProcessRecord | undefined> {
    const entry = this.entries.get(id);
    if (entry) {
      this.checkEnded(entry);
      if (entry.ending) await entry.ending;
    }
    return this.repo.get(id);
  }

  /** Stops watching; the processes keep running and a later supervisor adopts them. */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    clearTimeout(this.pollTimer);
    clearTimeout(this.storeTimer);
    clearTimeout(this.flushTimer);
    this.dropStoreWatch();
    this.resources.stop();
    this.readiness.close();
    this.restarts.close();
    this.launcher.close();
    await Promise.allSettled([...this.entries.values()].map((e) => e.ending));
    for (const entry of this.entries.values()) {
      clearTimeout(entry.timeoutTimer);
      await entry.monitor.drain();
      entry.monitor.close();
    }
    this.flushOffsets(true);
    this.entries.clear();
    if (this.isSupervising) releaseSupervisorLock(this.supervisorRepo);
    this.isSupervising = false;
    await this.checkpointer?.stop();
  }

  /**
   * Watches a process: its output, its end, its timeout. `isSettling` is for a process that already ended: its output
   * since the stored offsets is read once, with nothing armed. `mayBePaused: false` (a process this supervisor just
   * started, or one seen running) skips the look for a group a dead supervisor left paused.
   */
  private attach(record: ProcessRecord, options: { isSettling?: boolean; mayBePaused?: boolean } = {}): Entry | undefined {
    // A row cut short before its pid was stored has no identity; a settling entry signals nothing anyway.
    const identity = identityOf(record) ?? (options.isSettling ? { pid: -1, pgid: -1, startTicks: -1, bootId: '' } : undefined);
    if (!identity || this.entries.has(record.id)) return this.entries.get(record.id);
    const tail = new RollingTail();
    const entry: Entry = {
      record,
      identity,
      tail,
      isStopping: false,
      ending: null,
      timeoutTimer: undefined,
      lastOutputAtMs: null,
      hasLineListeners: false,
      monitor: new OutputMonitor({
        stdoutLog: record.stdoutLog,
        stderrLog: record.stderrLog,
        start: {
          stdout: { offset: record.stdoutOffset, rotated: record.stdoutRotated },
          stderr: { offset: record.stderrOffset, rotated: record.stderrRotated },
        },
        capBytes: this.logCapBytes,
        log: this.log.child({ id: record.id }),
        onRead: (stream) => {
          this.dirtyOffsets.add(entry);
          this.flushTimer ??= this.scheduleOffsetFlush();
          entry.lastOutputAtMs = Date.now();
          this.emit('output', { processId: record.id, stream });
        },
        wantsLines: () => this.wantsLines(entry),
        canPass: (stream, window) => this.canPass(entry, stream, window),
        tailLines: TAIL_LINES,
        // A terminal's lines are stripped of their escape sequences when made: they come through onLine.
        ...(record.isTty ? {} : { onTailBytes: (stream: LogStream, bytes: Buffer, lines: number) => tail.pushAscii(stream, bytes, lines) }),
        onLine: (stream, raw, offset, isCut, isEvery) => {
          // A terminal's escape sequences stay in the file; the tail, hooks and readers get the text.
          const text = record.isTty ? stripTerminal(raw) : raw;
          tail.push(stream, text);
          if (!isEvery) return;
          this.readiness.noteLine(record.id, text);
          const event: LineEvent = { processId: record.id, agentName: record.agentName, stream, text, offset, isCut };
          for (const reader of this.lineReaders) reader.onLine(event);
          if (entry.hasLineListeners) this.emit('line', event);
        },
        onRotated: () => this.saveOffsets(entry),
        onExitFile: () => this.checkEnded(entry),
        // A group someone paused writes nothing, and must not be resumed by the rotation.
        pauseWriters: async () => (entry.record.pausedAt ? 'none' : pauseGroup(entry.identity)),
      }),
    };
    this.entries.set(record.id, entry);
    if (options.isSettling) return entry;
    // Before the first read: lines already in the log (an adopted process) count for its readiness.
    this.readiness.watch(record);
    entry.monitor.watch();
    // A supervisor that died inside a rotation left the group paused: resume it once the rotation is resolved.
    entry.monitor.drain().then(() => {
      if ((options.mayBePaused ?? true) && !entry.record.pausedAt) resumeIfPaused(entry.identity, this.log);
    }, (error: unknown) => {
      this.log.error({ id: record.id, err: error }, 'reading the output failed');
    });
    this.armTimeout(entry);
    this.restarts.armUptime(record);
    return entry;
  }

  /** Adds a reader of every line of the processes it wants (see LineReader); returns its removal. */
  readLines(reader: LineReader): () => void {
    this.lineReaders.push(reader);
    return () => {
      const at = this.lineReaders.indexOf(reader);
      if (at >= 0) this.lineReaders.splice(at, 1);
    };
  }

  /** Whether anyone reads every line of a process: asked once per read of its output (and before a last line). */
  private wantsLines(entry: Entry): boolean {
    // Counted here, once per read, rather than for every line.
    entry.hasLineListeners = this.hasListeners('line');
    if (entry.hasLineListeners || this.readiness.wantsLines(entry.record.id)) return true;
    for (const reader of this.lineReaders) if (reader.wantsLines(entry.record.id)) return true;
    return false;
  }

  /** Whether none of the lines in `window` concerns anyone who reads lines of the process (see LineReader.canPass). */
  private canPass(entry: Entry, stream: LogStream, window: LineWindow): boolean {
    // A terminal's lines are matched without their escape sequences, which the raw text still has.
    if (entry.hasLineListeners || entry.record.isTty || this.readiness.wantsLines(entry.record.id)) return false;
    for (const reader of this.lineReaders) {
      if (reader.wantsLines(entry.record.id) && !reader.canPass?.(entry.record.id, stream, window)) return false;
    }
    return true;
  }

  private armTimeout(entry: Entry): void {
    const { timeoutSeconds, startedAt } = entry.record;
    if (!timeoutSeconds) return;
    // Measured from the stored start, so a restart of the supervisor neither loses nor extends it.
    const delayMs = Math.max(0, Date.parse(startedAt) + timeoutSeconds * 1000 - Date.now());
    entry.timeoutTimer = setTimeout(() => {
      void this.kill({ id: entry.record.id }, { by: 'timeout' }).catch((error) => {
        this.log.warn({ id: entry.record.id, err: error }, 'timeout stop failed');
      });
    }, delayMs);
    entry.timeoutTimer.unref();
  }

  private checkEnded(entry: Entry): void {
    if (entry.ending || entry.isStopping || this.isClosed) return;
    // Identity first: the shim writes the exit file before it exits, so "gone" with no file means no status.
    const state = checkIdentity(entry.identity);
    if (state === 'alive' && !existsSync(exitFilePath(entry.record.runDir))) return;
    const exitCode = readExitCode(entry.record.runDir);
    if (state === 'alive' && exitCode === undefined) return;
    const fresh = this.repo.get(entry.record.id) ?? entry.record;
    void this.finishEntry(entry, observedEnd(fresh, state, exitCode));
  }

  /** Reads what is left of the output, records the end (first writer wins), forgets the entry, tells listeners. */
  private finishEntry(entry: Entry, end: ProcessEnd): Promise<void> {
    entry.ending ??= (async () => {
      clearTimeout(entry.timeoutTimer);
      this.readiness.unwatch(entry.record.id);
      this.restarts.disarmUptime(entry.record.id);
      await entry.monitor.finish();
      this.saveOffsets(entry);
      this.restarts.settle(entry.record, end);
      // Listeners of the end event still read the tail and usage of the entry; it is forgotten after them.
      this.announceEnd(this.repo.get(entry.record.id)!);
      this.entries.delete(entry.record.id);
      this.dirtyOffsets.delete(entry);
      this.resources.forget(entry.record.id);
    })().catch((error) => {
      this.log.error({ id: entry.record.id, err: error }, 'failed to record the end of a process');
    });
    return entry.ending;
  }

  private announceEnd(record: ProcessRecord): void {
    this.log.info({ id: record.id, pid: record.pid, status: record.status, exitCode: record.exitCode, signal: record.signal }, 'process ended');
    if (record.status === 'exited' || record.status === 'crash_loop') this.emit('exited', record);
    else if (record.status === 'killed') this.emit('killed', record);
    else if (record.status === 'lost') this.emit('lost', record);
    else if (record.status === 'restarting') {
      this.emit('restarting', record);
      if (this.isSupervising) this.restarts.schedule(record);
    }
  }

  /** A row found not running: as supervisor, scan its output and finish it; as client, just record it. */
  private async settleEnded(record: ProcessRecord, state: IdentityState): Promise<ProcessRecord> {
    const end = observedEnd(record, state, readExitCode(record.runDir));
    const entry = this.entries.get(record.id);
    if (entry) await this.finishEntry(entry, end);
    else if (this.isSupervising) await this.finishEntry(this.attach(record, { isSettling: true })!, end);
    else this.restarts.settle(record, end);
    return this.repo.get(record.id)!;
  }

  /** Settles or adopts every row the store says is active and this supervisor does not watch yet. */
  private async reconcile(): Promise<void> {
    this.dataVersion = this.supervisorRepo.dataVersion();
    this.lastReconcileAt = Date.now();
    this.hasSpawnsInProgress = false;
    const pending: Promise<boolean>[] = [];
    const activeIds = this.repo.listActiveIds();
    // Only the rows not followed yet are read whole: a client starting 1,000 makes a reconcile a second.
    for (const id of activeIds) {
      if (this.entries.has(id)) continue;
      const record = this.repo.get(id);
      if (record) pending.push(this.adopt(record));
    }
    // A followed row another process ended (a client's forced stop ends the shim too, so no exit file tells us): its
    // end is settled now, not when the safety net comes round to it.
    const active = new Set(activeIds);
    for (const entry of this.entries.values()) {
      if (!active.has(entry.record.id)) this.checkEnded(entry);
    }
    const adopted = (await Promise.all(pending)).filter((isAdopted) => isAdopted).length;
    // One line a look, not one a process: a restart or a client's burst adopts hundreds (each is said at debug).
    if (adopted) this.log.info({ count: adopted }, 'processes adopted');
    // Pending restarts stored by an earlier supervisor or a client: each is armed once, at its stored due time.
    if (this.isSupervising) this.restarts.resume();
  }

  /** Follows a row's process from now on, or settles its end; true when it is followed. */
  private async adopt(initial: ProcessRecord): Promise<boolean> {
    let record = initial;
    if (record.status === 'starting') {
      // A spawn in progress is never judged: its spawner records it, or dies and leaves it to the next look.
      if (isSpawnInProgress(record)) {
        this.hasSpawnsInProgress = true;
        return false;
      }
      // Checked after the lease ended, so no spawner can start the shim after this look.
      const found = this.findStartingProcess(record);
      if (!found) {
        const ended = await this.settleEnded(record, 'gone');
        if (ended.status === 'lost') this.log.warn({ id: record.id }, 'a spawn was cut short before the process ran');
        return false;
      }
      this.repo.transaction(() => this.repo.markRunning(record.id, found, record.startedAt));
      record = this.repo.get(record.id)!;
    }
    const { state, stat } = inspectRecord(record);
    if (state !== 'alive') {
      await this.settleEnded(record, state);
      return false;
    }
    // Only a stopped shim can be in a group a dead supervisor paused for a rotation (a stop reaches the whole group).
    if (!this.attach(record, { mayBePaused: stat?.state === 'T' })) return false;
    this.log.debug({ id: record.id, pid: record.pid }, 'process adopted');
    this.emit('adopted', record);
    return true;
  }

  /** A spawn cut short by a crash: the shim may run without its pid stored; its environment marker proves it. */
  private findStartingProcess(record: ProcessRecord): ProcessIdentity | undefined {
    return record.runDir ? findByRunMarker(record.runDir) : undefined;
  }

  /**
   * The slow part of following processes, cheap while they sleep: a slice of the safety net and of the identity round,
   * the few monitors that have no watch (they are polled), and rows other processes wrote whose event was missed. It
   * runs every `pollIntervalMs` (5 s by default), at least once a second while a spawn is in progress or a monitor
   * needs polling; a tick allocates nothing and touches the store only to read `PRAGMA data_version`.
   */
  private async poll(): Promise<void> {
    this.pollTimer = undefined;
    if (this.isClosed) return;
    let isBusy = false;
    try {
      this.safetyNet.visit(() => this.entries.values(), (entry) => this.probe(entry));
      this.identityRound.visit(() => this.entries.values(), (entry) => {
        if (this.entries.has(entry.record.id)) this.checkEnded(entry);
      });
      for (const entry of this.entries.values()) {
        if (entry.monitor.needsPolling && !entry.ending) {
          isBusy = true;
          entry.monitor.drainInBackground();
          this.checkEnded(entry);
        }
      }
      await this.reconcileIfWritten();
    } catch (error) {
      this.log.error({ err: error }, 'supervisor poll failed');
    }
    this.schedulePoll(isBusy);
  }

  private schedulePoll(isBusy = false): void {
    if (this.isClosed) return;
    const isFast = isBusy || this.hasSpawnsInProgress || !this.isStoreWatched;
    const delayMs = isFast ? Math.min(this.pollIntervalMs, BUSY_POLL_MS) : this.pollIntervalMs;
    this.pollTimer = setTimeout(() => void this.poll(), delayMs);
    this.pollTimer.unref();
  }

  /** Adopts or settles the rows other processes wrote since the last look (a spawn by the CLI, a stored restart). */
  private async reconcileIfWritten(): Promise<void> {
    // One reconcile at a time; a write that came during it is compared with the version it read.
    if (this.reconciling) await this.reconciling;
    // A spawner that dies mid-spawn writes nothing, so rows left to a lease are looked at again on every poll.
    if (this.supervisorRepo.dataVersion() === this.dataVersion && !this.hasSpawnsInProgress) return;
    this.reconciling = this.reconcile().finally(() => { this.reconciling = undefined; });
    await this.reconciling;
  }

  /**
   * Rows another process writes are seen through the store's write events (a write to the WAL file), not found by a
   * poll: a look `STORE_SETTLE_MS` after the event, and while writes keep coming (a client starting 1,000 processes)
   * at most one reconcile a second. Our own writes raise events too; their look only reads `PRAGMA data_version`.
   * Until the look the watch is dropped (a client starting 1,000 processes would wake us for every transaction), and
   * it is armed again before the look reads the version, so no write falls between the two. Without an inotify watch
   * the poll stays at once a second.
   */
  private watchStore(): void {
    const path = this.options.db.name;
    if (!path || path === ':memory:') return;
    const names = new Set([basename(path), `${basename(path)}-wal`]);
    try {
      const watcher = watch(dirname(path), { persistent: false }, (_event, name) => {
        if (name !== null && names.has(String(name))) this.onStoreWritten();
      });
      watcher.on('error', (error) => {
        this.log.warn({ err: error }, 'lost the watch on the store; polling it every second');
        this.isStoreWatched = false;
        this.dropStoreWatch();
      });
      this.storeWatcher = watcher;
      this.isStoreWatched = true;
    } catch (error) {
      this.isStoreWatched = false;
      this.log.warn({ err: error }, 'cannot watch the store; polling it every second');
    }
  }

  private dropStoreWatch(): void {
    this.storeWatcher?.close();
    this.storeWatcher = undefined;
  }

  private onStoreWritten(): void {
    if (this.storeTimer || this.isClosed) return;
    this.dropStoreWatch();
    const delayMs = Math.max(STORE_SETTLE_MS, this.lastReconcileAt + BUSY_POLL_MS - Date.now());
    this.storeTimer = setTimeout(() => {
      this.storeTimer = undefined;
      if (this.isClosed) return;
      this.watchStore();
      this.reconcileIfWritten().catch((error: unknown) => this.log.error({ err: error }, 'adopting written rows failed'));
    }, delayMs);
    this.storeTimer.unref();
  }

  /** Positions of processes that read output are stored `offsetFlushMs` after the first line, together. */
  private scheduleOffsetFlush(): NodeJS.Timeout | undefined {
    if (this.isClosed) return undefined;
    const timer = setTimeout(() => {
      this.flushTimer = undefined;
      try {
        this.flushOffsets(false);
      } catch (error) {
        this.log.error({ err: error }, 'storing read positions failed');
      }
    }, this.offsetFlushMs);
    timer.unref();
    return timer;
  }

  /**
   * The safety net for an end whose exit-file event was missed or that left no exit file (a SIGKILLed shim): one
   * syscall while the pid is there; the full check (identity, exit file) only when it is not. A pid reused meanwhile is
   * caught by the slower identity round (or a resource pass), which compare start times.
   */
  private probe(entry: Entry): void {
    if (entry.ending || !this.entries.has(entry.record.id)) return;
    if (!isPidPresent(entry.identity.pid)) this.checkEnded(entry);
  }

  /**
   * Registers work that must be stored in the same transaction as a process's read position: state derived from the
   * lines read so far (a hook's gathering firing), so that after a crash the two never disagree.
   */
  onPositionsStored(listener: (processIds: readonly number[]) => void): void {
    this.positionListeners.push(listener);
  }

  private saveOffsets(entry: Entry): void {
    this.storePositions([entry]);
  }

  private storePositions(entries: Entry[]): void {
    this.repo.transaction(() => {
      for (const entry of entries) {
        const p = entry.monitor.positions();
        this.repo.saveOffsets(entry.record.id, {
          stdoutOffset: p.stdout.offset, stderrOffset: p.stderr.offset, stdoutRotated: p.stdout.rotated, stderrRotated: p.stderr.rotated,
          lastOutputAt: entry.lastOutputAtMs === null ? null : new Date(entry.lastOutputAtMs).toISOString(),
        });
        this.dirtyOffsets.delete(entry);
      }
      const ids = entries.map((e) => e.record.id);
      for (const listener of this.positionListeners) listener(ids);
    });
  }

  /** Offsets are stored a second after a process read output, in one transaction for all that did, and at every end. */
  private flushOffsets(isAll: boolean): void {
    const dirty = isAll ? [...this.entries.values()] : [...this.dirtyOffsets];
    // Our own writes bump data_version for other connections only, so no reconcile is triggered by this.
    if (dirty.length) this.storePositions(dirty);
  }
}

/** Stops a proven process group and waits until every member has stopped (one may still be mid-write on another core). */
async function pauseGroup(identity: ProcessIdentity): Promise<(() => void) | 'none' | null> {
  // Nothing alive (also the placeholder identity of a process settled after a crash): nothing can write any more.
  if (checkIdentity(identity) !== 'alive') return 'none';
  if (identity.pgid !== identity.pid || isForbiddenPid(identity.pgid)) return null;
  try {
    process.kill(-identity.pgid, 'SIGSTOP');
  } catch (error) {
    // Gone between the check and the signal: it ended just now, and nothing can write any more.
    return (error as NodeJS.ErrnoException).code === 'ESRCH' ? 'none' : null;
  }
  const resume = () => {
    try {
      process.kill(-identity.pgid, 'SIGCONT');
    } catch {
      // The group is gone.
    }
  };
  const deadline = Date.now() + PAUSE_CONFIRM_MS;
  while (readAllStats().some((s) => s.pgrp === identity.pgid && !['T', 't', 'Z', 'X'].includes(s.state))) {
    if (Date.now() > deadline) {
      // Something in the group does not stop (traced, or in uninterruptible sleep): resume it and rotate unpaused.
      resume();
      return null;
    }
    await sleep(1);
  }
  return resume;
}

function resumeIfPaused(identity: ProcessIdentity, log: Logger): void {
  if (identity.pgid !== identity.pid || inspectIdentity(identity).stat?.state !== 'T') return;
  log.warn({ pid: identity.pid }, 'resuming a process group a previous supervisor paused for a rotation');
  try {
    process.kill(-identity.pgid, 'SIGCONT');
  } catch {
    // The group is gone.
  }
}

export function describeEnd(record: Pick<ProcessRecord, 'status' | 'exitCode' | 'signal' | 'lostReason'>): string {
  switch (record.status) {
    case 'exited':
      return `exited with code ${record.exitCode}`;
    case 'killed':
      return `stopped with ${record.signal ?? 'a signal'}`;
    case 'lost':
      return `lost: ${record.lostReason ?? 'no exit status'}`;
    case 'restarting':
      return `${record.exitCode === null ? 'ended' : `exited with code ${record.exitCode}`}; its restart policy starts it again`;
    case 'crash_loop':
      return `crash loop: ${record.exitCode === null ? 'ended' : `exited with code ${record.exitCode}`} and its restart policy gave up`;
    default:
      return record.status;
  }
}

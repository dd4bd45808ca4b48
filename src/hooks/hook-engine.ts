import type { Logger } from '../logger.js';
import { AppError, errorMessage, isAppError } from '../errors.js';
import { HookRepo, type FiringCause, type HookRow } from '../store/hook-repo.js';
import type { LogStream, ProcessRecord } from '../store/process-repo.js';
import type { LineEvent, LineWindow, OutputEvent, ResourceSample } from '../process/events.js';
import type { ProcessManager } from '../process/process-manager.js';
import { logPath, readLastLines } from '../process/log-reader.js';
import { describeHook, hookSpecFromJson, hookSpecToJson, parseHookSpecs, type HookSpec } from './hook-spec.js';
import { compileSafePattern, matchLine, requiredLiterals, windowTwin } from '../safe-pattern.js';
import { renderContextText, TAIL_LINES_FOR_HOOKS, type HookContext, type HookPort } from './hook-port.js';
import { IdleWatch, ResourceWatch } from './watchdogs.js';

export const MAX_HOOK_DEPTH = 3;
export const DEFAULT_COOLDOWN_MS = 5_000;
const MAX_GATHERED_LINES = 200;
/** A crash loop's notice shows this many earlier runs, each with this many last lines. */
const CRASH_LOOP_RUNS_SHOWN = 5;
const CRASH_LOOP_TAIL_LINES = 5;

export interface HookEngineOptions {
  manager: ProcessManager;
  port: HookPort;
  log: Logger;
  /** Matches within this long after a firing merge into one later firing. */
  cooldownMs?: number;
  /** Hook-spawned branches that may run at once per agent. */
  maxConcurrentBranches?: number;
  /** notify_channel messages per agent per minute; more are counted and reported with the next one. */
  notifyPerMinute?: number;
}

interface Gathering {
  firingId: number;
  stream: LogStream | null;
  matched: string[];
  mergedCount: number;
  lastOffsets: Record<LogStream, number>;
  timer: NodeJS.Timeout | undefined;
  /** Lines merged since its state was last stored. */
  isDirty: boolean;
}

/** A window test (64 KiB of lines) takes about 0.1 ms for an ordinary pattern; SLOW_WINDOW_TESTS this slow in a row drop its twin for good. */
const WINDOW_TEST_BUDGET_MS = 4;
/** Slow window tests in a row that drop the twin: one alone may be a collection or the machine's load, not the pattern. */
const SLOW_WINDOW_TESTS = 3;

function needlesOf(regex: RegExp): Buffer[] | null {
  return requiredLiterals(regex)?.map((literal) => Buffer.from(literal, 'latin1')) ?? null;
}

/** An output hook that can still use lines: one gathering them, or one that can still fire. */
function readsLines(hook: LiveHook): boolean {
  return hook.spec.trigger.type === 'on_output_match' && (hook.gathering !== null || hook.row.fireCount < hook.row.maxFires);
}

interface LiveHook {
  row: HookRow;
  spec: HookSpec;
  regex: RegExp | null;
  /** Tests a window of whole lines at once, so lines that cannot match are not made (see windowTwin); null: line by line. */
  windowRegex: RegExp | null;
  /** Bytes every match contains, one per alternative (see requiredLiterals): a window without any cannot match. */
  needles: Buffer[] | null;
  slowWindowTests: number;
  gathering: Gathering | null;
  cooldownUntil: number;
  timeoutTimer: NodeJS.Timeout | undefined;
  idle: IdleWatch | null;
  resource: ResourceWatch | null;
  /** Ends the subscription to the process's resource samples (sampling runs only while someone subscribes). */
  stopSampling: (() => void) | null;
}

/** What a firing adds to its context besides the process: why it fired, the runs of a crash loop. */
interface FiringExtra {
  reason?: string;
  runs?: HookContext['runs'];
}

interface AgentLimits {
  runningBranches: number;
  waiting: Array<() => void>;
  notifyTimes: number[];
  suppressed: number;
}

/** Hooks: matched on the process core's events, decided durably, acted on through the port. */
function specOf(row: HookRow): HookSpec {
  return hookSpecFromJson(JSON.parse(row.specJson));
}

export class HookEngine {
  readonly repo: HookRepo;
  private readonly manager: ProcessManager;
  private readonly port: HookPort;
  private readonly log: Logger;
  private readonly cooldownMs: number;
  private readonly maxConcurrentBranches: number;
  private readonly notifyPerMinute: number;
  private readonly live = new Map<number, LiveHook[]>();
  private readonly limits = new Map<string, AgentLimits>();
  private readonly inFlight = new Set<Promise<void>>();
  private isClosed = false;
  /** Actions wait for this: firings resumed at start-up act only once the supervisor has adopted every process. */
  private ready: Promise<void> = Promise.resolve();
  private markReady: (() => void) | undefined;

  constructor(options: HookEngineOptions) {
    this.manager = options.manager;
    // The manager's connection: hooks are inserted inside the spawn's transaction.
    this.repo = new HookRepo(options.manager.db);
    this.port = options.port;
    this.log = options.log.child({ module: 'hooks' });
    this.cooldownMs = options.cooldownMs ?? DEFAULT_COOLDOWN_MS;
    this.maxConcurrentBranches = options.maxConcurrentBranches ?? 3;
    this.notifyPerMinute = options.notifyPerMinute ?? 6;
    // Lines are made only for processes an output hook (or someone else) reads; any output feeds the silence watchdogs.
    this.manager.readLines({
      wantsLines: (id) => this.wantsLines(id), canPass: (id, stream, window) => this.canPass(id, stream, window), onLine: (line) => this.onLine(line),
    });
    this.manager.on('output', (output) => this.onOutput(output));
    this.manager.on('started', (p) => this.onWatched(p));
    this.manager.on('adopted', (p) => this.onWatched(p));
    this.manager.on('exited', (p) => this.onEnded(p));
    this.manager.on('lost', (p) => this.onEnded(p));
    this.manager.on('killed', (p) => this.forget(p.id));
    this.manager.on('restarting', (p) => this.forget(p.id));
    this.manager.on('ready', (p) => this.onReadiness(p, 'ready'));
    this.manager.on('readyFailed', (p, reason) => this.onReadiness(p, 'ready_timeout', reason));
    // Each run of a policy-restarted process gets its hooks again, with fresh fire counts, in the run's own insert.
    this.manager.restarts.onNewRun((fromId, toId) => this.insertHooks(toId, this.repo.listForProcess(fromId).map((row) => specOf(row))));
    this.manager.onPositionsStored((ids) => this.storeGatherings(ids));
  }

  /**
   * Starts supervision in the order recovery needs: open firings first (so output and exits found by recovery reach
   * hooks in the state they had), then the manager's recovery, then the actions, then exits a crash left undecided.
   */
  async startSupervising(): Promise<void> {
    this.resumeOpenFirings();
    await this.manager.startSupervising();
    this.markReady?.();
    this.markReady = undefined;
    this.settleMissedExits();
  }

  /** Restores open firings; their actions wait until supervision has started. */
  private resumeOpenFirings(): void {
    this.ready = new Promise((resolve) => { this.markReady = resolve; });
    for (const firing of this.repo.openFirings()) {
      const hook = this.liveHooksFor(firing.processId).find((h) => h.row.id === firing.hookId);
      if (!hook) continue;
      const payload = JSON.parse(firing.payloadJson) as { matched?: string[] };
      if (firing.status === 'gathering') {
        // What it had gathered was stored with the read position, so lines read again from there merge in once.
        hook.gathering = {
          firingId: firing.id, stream: firing.stream, matched: payload.matched ?? [], mergedCount: firing.mergedCount,
          lastOffsets: { ...hook.row.seenOffsets }, timer: undefined, isDirty: false,
        };
        this.scheduleDelivery(hook, Date.parse(firing.dueAt));
      } else {
        this.track(this.execute(hook, firing.id, firing.cause, JSON.parse(firing.payloadJson) as Omit<HookContext, 'text'>));
      }
    }
  }

  /** After recovery: exit hooks of processes that ended while no decision was recorded (a crash in between). */
  private settleMissedExits(): void {
    for (const row of this.repo.undecidedExitHooks()) {
      const record = this.manager.repo.get(row.processId);
      if (record) this.fireExitHook(this.toLive(row), record);
    }
    this.settleMissedReadiness();
  }

  /** on_ready / on_ready_timeout hooks whose outcome is stored but never fired them (a crash, or added afterwards). */
  private settleMissedReadiness(processId?: number): void {
    for (const row of this.repo.undecidedReadyHooks(processId)) {
      const record = this.manager.repo.get(row.processId);
      if (!record) continue;
      const hook = this.live.get(row.processId)?.find((h) => h.row.id === row.id) ?? this.toLive(row);
      if (row.triggerType === 'on_ready') this.fireSimple(hook, record, 'ready');
      else this.fireSimple(hook, record, 'ready_timeout', { reason: record.readyError ?? 'not ready' });
    }
  }

  /** Validates and stores hooks for a process being spawned; for SpawnRequest.withRow. Throws before anything is stored. */
  prepare(input: unknown, field = 'hooks'): { specs: HookSpec[]; store: (processId: number) => void } {
    const specs = input === undefined ? [] : parseHookSpecs(input, field);
    return { specs, store: (processId) => this.insertHooks(processId, specs) };
  }

  /** For restart: the old process's hooks, stored again for the new one with fresh fire counts. */
  copyHooks(fromProcessId: number): (processId: number) => void {
    const specs = this.repo.listForProcess(fromProcessId).map((row) => specOf(row));
    return (processId) => this.insertHooks(processId, specs);
  }

  /** Restart with the old process's hooks (fresh fire counts): what every surface's restart should call. */
  restartProcess(lookup: Parameters<ProcessManager['restart']>[0], options: { by: string; force?: boolean }): Promise<ProcessRecord> {
    const old = this.manager.resolve(lookup);
    return this.manager.restart({ id: old.id }, { ...options, withRow: this.copyHooks(old.id) });
  }

  /** add_process_hooks: same validation; the process must be running. */
  addHooks(processId: number, input: unknown, field = 'hooks'): HookRow[] {
    const specs = parseHookSpecs(input, field);
    const record = this.manager.repo.get(processId);
    if (!record || record.status !== 'running') throw new AppError('PROCESS_NOT_RUNNING', 'hooks can only be added to a running process');
    const ids = this.repo.transaction(() => this.insertHooks(processId, specs));
    const rows = ids.map((id) => this.repo.get(id)!);
    const live = this.live.get(processId);
    if (live) {
      for (const row of rows) {
        const hook = this.toLive(row);
        live.push(hook);
        this.arm(hook, record);
      }
    } else this.onWatched(record);
    // Added to a process whose readiness is already decided: they fire now rather than never.
    if (record.readyAt || record.readyError) this.settleMissedReadiness(processId);
    return rows.map((row) => this.repo.get(row.id) ?? row);
  }

  hooksFor(processId: number): Array<{ row: HookRow; spec: HookSpec; description: string }> {
    return this.repo.listForProcess(processId).map((row) => {
      const spec = specOf(row);
      return { row, spec, description: describeHook(spec) };
    });
  }

  /** Waits for actions under way (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }

  async close(): Promise<void> {
    this.isClosed = true;
    for (const hooks of this.live.values()) for (const hook of hooks) this.clearTimers(hook);
    await this.idle();
  }

  private insertHooks(processId: number, specs: HookSpec[]): number[] {
    return specs.map((spec) => this.repo.insert(processId, spec.trigger.type, spec.action, JSON.stringify(hookSpecToJson(spec)), spec.maxFires));
  }

  private toLive(row: HookRow): LiveHook {
    const spec = specOf(row);
    const regex = spec.trigger.type === 'on_output_match' ? compileSafePattern(spec.trigger.pattern, 'pattern') : null;
    const { trigger } = spec;
    const resource = trigger.type === 'on_resource' ? new ResourceWatch({ memoryMb: trigger.memoryMb, cpuPercent: trigger.cpuPercent, forSeconds: trigger.forSeconds }) : null;
    return { row, spec, regex, windowRegex: regex && windowTwin(regex), needles: regex && needlesOf(regex), slowWindowTests: 0, gathering: null, cooldownUntil: 0, timeoutTimer: undefined, idle: null, resource, stopSampling: null };
  }

  private liveHooksFor(processId: number): LiveHook[] {
    let hooks = this.live.get(processId);
    if (!hooks) {
      hooks = this.repo.listForProcess(processId).map((row) => this.toLive(row));
      this.live.set(processId, hooks);
    }
    return hooks;
  }

  private onWatched(record: ProcessRecord): void {
    for (const hook of this.liveHooksFor(record.id)) this.arm(hook, record);
  }

  /** Timers of a running process's hook: its timeout, its silence watchdog, its subscription to resource samples. */
  private arm(hook: LiveHook, record: ProcessRecord): void {
    this.armTimeout(hook, record);
    const { trigger } = hook.spec;
    if (hook.resource && !hook.stopSampling && hook.row.fireCount < hook.row.maxFires && !this.isClosed) {
      // Memory alone is looked at every 10 s (pm2 every 30 s); a CPU bound with its duration at the active rate.
      const isMemoryOnly = trigger.type === 'on_resource' && trigger.cpuPercent === null;
      const options = isMemoryOnly ? { intervalMs: this.manager.resources.watchIntervalMs } : {};
      hook.stopSampling = this.manager.resources.subscribe(record.id, (sample) => this.onResourceSample(hook, sample), options);
    }
    if (trigger.type !== 'on_idle' || hook.idle || hook.row.fireCount >= hook.row.maxFires || this.isClosed) return;
    hook.idle = new IdleWatch(trigger.idleSeconds * 1000, (silentMs) => {
      const fresh = this.manager.repo.get(record.id);
      if (!fresh || fresh.status !== 'running' || this.isClosed) return;
      this.fireSimple(hook, fresh, 'idle', { reason: `for ${Math.round(silentMs / 1000)}s` });
    });
  }

  private onReadiness(record: ProcessRecord, cause: 'ready' | 'ready_timeout', reason?: string): void {
    const type = cause === 'ready' ? 'on_ready' : 'on_ready_timeout';
    for (const hook of this.liveHooksFor(record.id)) {
      if (hook.spec.trigger.type === type) this.fireSimple(hook, record, cause, reason === undefined ? {} : { reason });
    }
  }

  private onResourceSample(hook: LiveHook, sample: ResourceSample): void {
    if (!hook.resource) return;
    if (hook.row.fireCount >= hook.row.maxFires) {
      this.stopSampling(hook);
      return;
    }
    const reason = hook.resource.check(sample);
    // Flood control: within the cooldown after a firing, a new crossing is not another firing.
    if (reason === undefined || Date.now() < hook.cooldownUntil) return;
    const record = this.manager.repo.get(sample.processId);
    if (!record || record.status !== 'running') return;
    hook.cooldownUntil = Date.now() + this.cooldownMs;
    this.fireSimple(hook, record, 'resource', { reason });
  }

  private stopSampling(hook: LiveHook): void {
    hook.stopSampling?.();
    hook.stopSampling = null;
  }

  private forget(processId: number): void {
    const hooks = this.live.get(processId);
    if (!hooks) return;
    for (const hook of hooks) {
      if (hook.timeoutTimer) clearTimeout(hook.timeoutTimer);
      hook.idle?.stop();
      this.stopSampling(hook);
      // A gathering firing still delivers: the output that caused it happened.
      if (hook.gathering) this.deliverNow(hook);
    }
    this.live.delete(processId);
  }

  private clearTimers(hook: LiveHook): void {
    if (hook.timeoutTimer) clearTimeout(hook.timeoutTimer);
    hook.idle?.stop();
    this.stopSampling(hook);
    if (hook.gathering?.timer) clearTimeout(hook.gathering.timer);
  }

  private armTimeout(hook: LiveHook, record: ProcessRecord): void {
    if (hook.spec.trigger.type !== 'on_timeout' || hook.timeoutTimer || hook.row.fireCount >= hook.row.maxFires) return;
    // From the stored start time: a supervisor restart neither loses nor doubles it, and a passed deadline fires at once.
    const dueAt = Date.parse(record.startedAt) + hook.spec.trigger.timeoutSeconds * 1000;
    hook.timeoutTimer = setTimeout(() => {
      hook.timeoutTimer = undefined;
      const fresh = this.manager.repo.get(record.id);
      if (!fresh || fresh.status !== 'running' || this.isClosed) return;
      this.fireSimple(hook, fresh, 'timeout');
    }, Math.max(0, dueAt - Date.now()));
    hook.timeoutTimer.unref();
  }

  /** Whether an output hook of the process can still use its lines: one gathering them, or one that can still fire. */
  private wantsLines(processId: number): boolean {
    return this.liveHooksFor(processId).some((hook) => readsLines(hook));
  }

  /**
   * Whether the output hooks of a process can pass over these whole lines: none gathers the lines after a match, and
   * each that can still fire (or gathers matches) cannot match in them: the window holds none of the text every match
   * of its pattern contains (a byte search, nothing decoded), or the pattern's window twin matches nowhere in it.
   */
  private canPass(processId: number, stream: LogStream, window: LineWindow): boolean {
    for (const hook of this.liveHooksFor(processId)) {
      const { trigger } = hook.spec;
      if (!readsLines(hook) || (trigger.type === 'on_output_match' && trigger.stream !== 'both' && trigger.stream !== stream)) continue;
      // A firing that gathers the lines after its match needs every line; one that gathers only matches does not.
      if (hook.gathering && hook.spec.outputDelaySeconds > 0) return false;
      if (hook.needles && !hook.needles.some((needle) => window.bytes.includes(needle))) continue;
      if (!hook.windowRegex) return false;
      const startedAt = performance.now();
      const isMatch = hook.windowRegex.test(window.text());
      // A pattern that backtracks over a whole window costs more than line by line (up to 7× measured): it goes back to lines.
      hook.slowWindowTests = performance.now() - startedAt > WINDOW_TEST_BUDGET_MS ? hook.slowWindowTests + 1 : 0;
      if (hook.slowWindowTests >= SLOW_WINDOW_TESTS) hook.windowRegex = null;
      if (isMatch) return false;
    }
    return true;
  }

  private onOutput(output: OutputEvent): void {
    for (const hook of this.liveHooksFor(output.processId)) hook.idle?.noteOutput();
  }

  private onLine(line: LineEvent): void {
    for (const hook of this.liveHooksFor(line.processId)) {
      if (hook.spec.trigger.type !== 'on_output_match') continue;
      const { stream } = hook.spec.trigger;
      if (stream !== 'both' && stream !== line.stream) continue;
      // Read again after a crash: this line was already part of a firing.
      if (line.offset <= hook.row.seenOffsets[line.stream]) continue;
      const isMatch = matchLine(hook.regex!, line.text);
      const gathering = hook.gathering;
      if (gathering) {
        gathering.isDirty = true;
        gathering.lastOffsets[line.stream] = Math.max(gathering.lastOffsets[line.stream], line.offset);
        if (isMatch) gathering.mergedCount += 1;
        if (gathering.matched.length < MAX_GATHERED_LINES && (isMatch || hook.spec.outputDelaySeconds > 0)) gathering.matched.push(line.text);
        continue;
      }
      if (!isMatch || hook.row.fireCount >= hook.row.maxFires) continue;
      this.startGathering(hook, line);
    }
  }

  private startGathering(hook: LiveHook, line: LineEvent): void {
    const now = Date.now();
    // In the cooldown after a firing, matches gather until it ends and then fire once, merged.
    const dueAt = Math.max(now + hook.spec.outputDelaySeconds * 1000, hook.cooldownUntil);
    const record = this.manager.repo.get(line.processId);
    if (!record) return;
    const seen = { ...hook.row.seenOffsets, [line.stream]: line.offset };
    const firingId = this.repo.recordFiring({
      hookId: hook.row.id, processId: line.processId, cause: 'output', stream: line.stream, logOffset: line.offset,
      payloadJson: JSON.stringify({ matched: [line.text] }), status: 'gathering', dueAt: new Date(dueAt).toISOString(),
    }, seen);
    if (firingId === undefined) return;
    hook.row.fireCount += 1;
    hook.row.seenOffsets = seen;
    hook.gathering = { firingId, stream: line.stream, matched: [line.text], mergedCount: 1, lastOffsets: { ...seen }, timer: undefined, isDirty: false };
    this.scheduleDelivery(hook, dueAt);
  }

  /** Inside the manager's offset transaction: what open firings gathered up to the position being stored. */
  private storeGatherings(processIds: readonly number[]): void {
    for (const id of processIds) {
      for (const hook of this.live.get(id) ?? []) {
        const gathering = hook.gathering;
        if (!gathering?.isDirty) continue;
        this.repo.updateFiring(gathering.firingId, {
          status: 'gathering', payloadJson: JSON.stringify({ matched: gathering.matched }), mergedCount: gathering.mergedCount,
        });
        this.repo.markSeen(hook.row.id, gathering.lastOffsets);
        gathering.isDirty = false;
      }
    }
  }

  private scheduleDelivery(hook: LiveHook, dueAt: number): void {
    const gathering = hook.gathering!;
    // Even with no delay, wait one turn of the loop so the rest of the chunk being read merges in.
    gathering.timer = setTimeout(() => this.deliverNow(hook), Math.max(0, dueAt - Date.now()));
  }

  private deliverNow(hook: LiveHook): void {
    const gathering = hook.gathering;
    if (!gathering) return;
    if (gathering.timer) clearTimeout(gathering.timer);
    hook.gathering = null;
    hook.cooldownUntil = Date.now() + this.cooldownMs;
    hook.row.seenOffsets = { ...gathering.lastOffsets };
    // The position seen and the firing made pending are one commit: one write to the log, not two, per firing.
    const context = this.repo.transaction(() => {
      this.repo.markSeen(hook.row.id, gathering.lastOffsets);
      const record = this.manager.repo.get(hook.row.processId);
      if (!record) return undefined;
      const built = this.buildContext(hook, record, gathering.firingId, 'output', gathering.matched, gathering.mergedCount);
      this.repo.updateFiring(gathering.firingId, { status: 'pending', payloadJson: JSON.stringify(built), mergedCount: gathering.mergedCount });
      return built;
    });
    if (!context) return;
    this.track(this.execute(hook, gathering.firingId, 'output', context));
  }

  private onEnded(record: ProcessRecord): void {
    const hooks = this.liveHooksFor(record.id);
    for (const hook of hooks) {
      if (hook.spec.trigger.type === 'on_exit') this.fireExitHook(hook, record);
    }
    this.forget(record.id);
  }

  private fireExitHook(hook: LiveHook, record: ProcessRecord): void {
    if (hook.spec.trigger.type !== 'on_exit' || hook.row.fireCount >= hook.row.maxFires) return;
    const filter = hook.spec.trigger.exitFilter;
    const isSuccess = record.status === 'exited' && record.exitCode === 0;
    if ((filter === 'success' && !isSuccess) || (filter === 'failure' && isSuccess)) {
      this.repo.recordRefusal({
        hookId: hook.row.id, processId: record.id, cause: 'exit', stream: null, logOffset: null, payloadJson: '{}', dueAt: new Date().toISOString(),
      }, `exit filter ${filter} did not match (${record.status === 'lost' ? 'lost' : `exit code ${record.exitCode}`})`);
      return;
    }
    this.fireSimple(hook, record, 'exit', record.status === 'crash_loop' ? { runs: this.earlierRuns(record) } : {});
  }

  /** The runs before a crash loop's last one, with their exit codes and last lines: the one notice says it all. */
  private earlierRuns(record: ProcessRecord): NonNullable<HookContext['runs']> {
    return this.manager.repo.previousRuns(record.id, CRASH_LOOP_RUNS_SHOWN).map((run) => ({
      pid: run.pid,
      status: run.status,
      exitCode: run.exitCode,
      tail: [
        ...readLastLines(logPath(run, 'stdout'), CRASH_LOOP_TAIL_LINES, 64 * 1024),
        ...readLastLines(logPath(run, 'stderr'), CRASH_LOOP_TAIL_LINES, 64 * 1024).map((l) => `[stderr] ${l}`),
      ].slice(-CRASH_LOOP_TAIL_LINES),
    }));
  }

  private fireSimple(hook: LiveHook, record: ProcessRecord, cause: FiringCause, extra: FiringExtra = {}): void {
    const dueAt = new Date().toISOString();
    const firingId = this.repo.recordFiring({
      hookId: hook.row.id, processId: record.id, cause, stream: null, logOffset: null, payloadJson: '{}', status: 'pending', dueAt,
    });
    if (firingId === undefined) return;
    hook.row.fireCount += 1;
    const context = this.buildContext(hook, record, firingId, cause, [], 0, extra);
    this.repo.updateFiring(firingId, { status: 'pending', payloadJson: JSON.stringify(context) });
    this.track(this.execute(hook, firingId, cause, context));
  }

  private buildContext(hook: LiveHook, record: ProcessRecord, firingId: number, cause: FiringCause, matched: string[], mergedCount: number, extra: FiringExtra = {}): HookContext {
    const base: Omit<HookContext, 'text'> = {
      hookId: hook.row.id,
      firingId,
      processId: record.id,
      pid: record.pid,
      agentName: record.agentName,
      command: record.command,
      processName: record.name,
      branchId: record.spawnedByBranch,
      action: hook.spec.action,
      message: hook.spec.contextMessage ?? `A hook on this process fired (${describeHook(hook.spec)}).`,
      trigger: describeHook(hook.spec),
      cause,
      matchedLines: matched,
      mergedCount,
      exitCode: record.exitCode,
      signal: record.signal,
      status: record.status,
      outputTail: this.outputTail(record),
      modelForHooks: record.modelForHooks,
      depth: record.hookRecursionDepth + 1,
      ...(extra.reason !== undefined && { reason: extra.reason }),
      ...(extra.runs !== undefined && { runs: extra.runs }),
    };
    return { ...base, text: renderContextText(base) };
  }

  private outputTail(record: ProcessRecord): string[] {
    const tail = this.manager.tail(record.id, TAIL_LINES_FOR_HOOKS);
    if (tail?.length) return tail.map((l) => (l.stream === 'stderr' ? `[stderr] ${l.text}` : l.text));
    const out = readLastLines(logPath(record, 'stdout'), TAIL_LINES_FOR_HOOKS, 256 * 1024);
    const err = readLastLines(logPath(record, 'stderr'), TAIL_LINES_FOR_HOOKS, 256 * 1024).map((l) => `[stderr] ${l}`);
    return [...out, ...err].slice(-TAIL_LINES_FOR_HOOKS);
  }

  private track(work: Promise<void>): void {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  private async execute(hook: LiveHook, firingId: number, cause: FiringCause, stored: Omit<HookContext, 'text'> & { text?: string }): Promise<void> {
    await this.ready;
    const context: HookContext = { ...stored, text: stored.text ?? renderContextText(stored) };
    const log = this.log.child({ hookId: hook.row.id, firingId, processId: context.processId, action: hook.spec.action });
    try {
      const result = await this.runAction(hook, context);
      this.repo.updateFiring(firingId, { status: 'done', result });
      log.info({ cause, merged: context.mergedCount, result }, 'hook fired');
    } catch (error) {
      const isRefusal = isAppError(error, 'HOOK_DEPTH_EXCEEDED');
      this.repo.updateFiring(firingId, { status: isRefusal ? 'refused' : 'failed', result: errorMessage(error) });
      if (isRefusal) log.warn({ reason: errorMessage(error) }, 'hook refused');
      else log.error({ err: error }, 'hook action failed');
    }
  }

  private async runAction(hook: LiveHook, context: HookContext): Promise<string> {
    switch (hook.spec.action) {
      case 'stop_process':
        try {
          const stopped = await this.manager.kill({ id: context.processId }, { by: `hook:${hook.row.id}` });
          return `stopped with ${stopped.signal}`;
        } catch (error) {
          if (isAppError(error, 'PROCESS_NOT_RUNNING')) return 'already ended';
          throw error;
        }
      case 'stop_branch':
        await this.port.stopBranch(context);
        return 'branch stopped';
      case 'inject_context':
        if (context.branchId && (await this.port.injectContext(context))) return 'injected';
        return `no branch to inject into; ${await this.spawnBranch(context)}`;
      case 'spawn_branch':
        return this.spawnBranch(context);
      case 'notify_channel':
        return this.notify(context);
      case 'restart_process':
        try {
          // Through the restart policy: counted, with backoff, and a crash loop when the restarts run out.
          await this.manager.kill({ id: context.processId }, { by: `hook:${hook.row.id}`, isRestart: true });
          return 'stopped; the next run follows the restart policy';
        } catch (error) {
          if (isAppError(error, 'PROCESS_NOT_RUNNING')) return 'already ended';
          throw error;
        }
    }
  }

  private agentLimits(agentName: string): AgentLimits {
    let limits = this.limits.get(agentName);
    if (!limits) {
      limits = { runningBranches: 0, waiting: [], notifyTimes: [], suppressed: 0 };
      this.limits.set(agentName, limits);
    }
    return limits;
  }

  private async spawnBranch(context: HookContext): Promise<string> {
    if (context.depth > MAX_HOOK_DEPTH) {
      throw new AppError('HOOK_DEPTH_EXCEEDED', `a branch at depth ${context.depth} would pass the limit of ${MAX_HOOK_DEPTH} (hooks started by hook-started branches)`);
    }
    const limits = this.agentLimits(context.agentName);
    if (limits.runningBranches >= this.maxConcurrentBranches) {
      await new Promise<void>((resolve) => limits.waiting.push(resolve));
    }
    limits.runningBranches += 1;
    const release = () => {
      limits.runningBranches -= 1;
      limits.waiting.shift()?.();
    };
    try {
      const branch = await this.port.spawnBranch(context);
      void branch.finished.catch(() => undefined).finally(release);
      return `spawned branch ${branch.branchId}`;
    } catch (error) {
      release();
      throw error;
    }
  }

  private async notify(context: HookContext): Promise<string> {
    const limits = this.agentLimits(context.agentName);
    const now = Date.now();
    limits.notifyTimes = limits.notifyTimes.filter((t) => now - t < 60_000);
    if (limits.notifyTimes.length >= this.notifyPerMinute) {
      limits.suppressed += 1;
      return 'suppressed by the rate limit';
    }
    limits.notifyTimes.push(now);
    const suppressed = limits.suppressed;
    limits.suppressed = 0;
    const note = suppressed ? `\n\n(${suppressed} more notification${suppressed === 1 ? '' : 's'} suppressed by the rate limit)` : '';
    await this.port.notifyChannel(context, `${context.text}${note}`);
    return 'notified';
  }
}

import type { Logger } from '../logger.js';
import type { ResourceSample } from './events.js';
import type { ProcessIdentity } from './identity.js';
import { clockTicksPerSecond, readAllStats, readUptimeMs, type ProcStat } from './proc-fs.js';
import { cpuPercent, usageByGroup } from './resources.js';

/** A watched process as the sampler sees it. */
export interface SampledProcess {
  processId: number;
  identity: ProcessIdentity;
}

export interface ResourceSamplerOptions {
  /** The rate while someone looks (a status message, a CPU watchdog), unless they ask for another. */
  activeIntervalMs: number;
  /** The rate a memory watchdog asks for: memory creeps, and a pass reads every process on the machine. */
  watchIntervalMs?: number;
  processes: () => Iterable<SampledProcess>;
  /** A sample that differs from the last one announced (what a status embed shows), for the broadcast `resources` event. */
  onChanged: (sample: ResourceSample) => void;
  /** Processes whose leader the pass did not find with its start time: they may have ended (the callee checks). */
  onMissing: (processIds: number[]) => void;
  readStats?: () => ProcStat[];
  log: Logger;
}

export interface InterestOptions {
  /** How often samples are wanted while this interest holds; the fastest interest sets the rate. */
  intervalMs?: number;
}

interface Interest {
  /** undefined: every process. */
  processId: number | undefined;
  intervalMs: number;
}

type SampleListener = (sample: ResourceSample) => void;

/** How old a sample may be when a person asks for a process's status: older, a pass runs first. */
export const ASKED_SAMPLE_MAX_AGE_MS = 2_000;

/** Smallest gap between two passes, whatever is asked: a pass reads every process on the machine. */
const MIN_INTERVAL_MS = 100;

/**
 * CPU and memory of every watched process group, from one pass over /proc (which reads every process on the machine,
 * so it is not free). No pass runs while nobody looks; a declared interest (a status message, a watchdog subscribing
 * to a process's samples) starts them at the rate the most eager interest asks for, until every interest is released;
 * a person asking gets a pass on the spot when the last sample is too old.
 */
export class ResourceSampler {
  private readonly interests = new Set<Interest>();
  private readonly listeners = new Map<number, Set<SampleListener>>();
  private readonly latest = new Map<number, ResourceSample>();
  private readonly announced = new Map<number, ResourceSample>();
  private readonly lastCpu = new Map<number, { cpuTicks: number; at: number }>();
  private readonly readStats: () => ProcStat[];
  private timer: NodeJS.Timeout | undefined;
  private lastPassAt = 0;
  private isRunning = false;
  private passCount = 0;

  constructor(private readonly options: ResourceSamplerOptions) {
    this.readStats = options.readStats ?? readAllStats;
  }

  start(): void {
    this.isRunning = true;
    this.schedule();
  }

  stop(): void {
    this.isRunning = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** How many passes over /proc have run (for tests and the benchmark). */
  get passes(): number {
    return this.passCount;
  }

  /** The interval the sampler runs at now; undefined while nobody looks (no pass runs). */
  get intervalMs(): number | undefined {
    let interval = Infinity;
    for (const interest of this.interests) interval = Math.min(interval, interest.intervalMs);
    return interval === Infinity ? undefined : Math.max(MIN_INTERVAL_MS, interval);
  }

  /**
   * Someone looks at `processId` (every process when undefined): samples come at least every `intervalMs` until the
   * returned function is called.
   */
  interest(processId: number | undefined, options: InterestOptions = {}): () => void {
    const interest: Interest = { processId, intervalMs: options.intervalMs ?? this.options.activeIntervalMs };
    this.interests.add(interest);
    this.schedule();
    return () => {
      if (this.interests.delete(interest)) this.schedule();
    };
  }

  /** The rate a memory watchdog asks for (see ResourceSamplerOptions.watchIntervalMs). */
  get watchIntervalMs(): number {
    return this.options.watchIntervalMs ?? this.options.activeIntervalMs;
  }

  /** Every sample of one process, at least every `intervalMs` (a resource watchdog); returns the unsubscribe. */
  subscribe(processId: number, listener: SampleListener, options: InterestOptions = {}): () => void {
    const release = this.interest(processId, options);
    let set = this.listeners.get(processId);
    if (!set) this.listeners.set(processId, (set = new Set()));
    set.add(listener);
    return () => {
      release();
      set.delete(listener);
      if (!set.size && this.listeners.get(processId) === set) this.listeners.delete(processId);
    };
  }

  /** The last sample; with `maxAgeMs`, a pass runs first when the last one is older (a person just asked). */
  usage(processId: number, options: { maxAgeMs?: number } = {}): ResourceSample | undefined {
    const sample = this.latest.get(processId);
    if (options.maxAgeMs !== undefined && this.isRunning && (!sample || Date.now() - sample.sampledAt > options.maxAgeMs)) {
      this.sampleNow();
      return this.latest.get(processId);
    }
    return sample;
  }

  /** The process ended: its samples, interests and listeners go with it. */
  forget(processId: number): void {
    this.latest.delete(processId);
    this.announced.delete(processId);
    this.lastCpu.delete(processId);
    this.listeners.delete(processId);
    let isChanged = false;
    for (const interest of this.interests) {
      if (interest.processId === processId) isChanged = this.interests.delete(interest) || isChanged;
    }
    if (isChanged) this.schedule();
  }

  /** One pass now, then the next one an interval later. */
  sampleNow(): void {
    try {
      this.pass();
    } catch (error) {
      this.options.log.error({ err: error }, 'sampling resources failed');
    }
    this.schedule();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const interval = this.intervalMs;
    if (!this.isRunning || interval === undefined) return;
    const delayMs = Math.max(0, this.lastPassAt + interval - Date.now());
    this.timer = setTimeout(() => this.sampleNow(), delayMs);
    this.timer.unref();
  }

  private deliver(listener: SampleListener, sample: ResourceSample): void {
    try {
      listener(sample);
    } catch (error) {
      this.options.log.error({ err: error, processId: sample.processId }, 'a resource listener failed');
    }
  }

  private pass(): void {
    this.lastPassAt = Date.now();
    this.passCount += 1;
    const processes = [...this.options.processes()];
    if (!processes.length) return;
    const stats = this.readStats();
    const leaders = new Map<number, number>();
    for (const stat of stats) leaders.set(stat.pid, stat.startTicks);
    const usage = usageByGroup(new Set(processes.map((p) => p.identity.pgid)), stats);
    const at = Date.now();
    const missing: number[] = [];
    let bootAtMs: number | undefined;
    for (const { processId, identity } of processes) {
      if (leaders.get(identity.pid) !== identity.startTicks) missing.push(processId);
      const group = usage.get(identity.pgid);
      if (!group) continue;
      const current = { cpuTicks: group.cpuTicks, at };
      // A first sample has no previous one: it shows the average since the process started.
      const previous = this.lastCpu.get(processId)
        ?? { cpuTicks: 0, at: (bootAtMs ??= at - readUptimeMs()) + (identity.startTicks * 1000) / clockTicksPerSecond() };
      const sample: ResourceSample = {
        processId,
        cpuPercent: cpuPercent(previous, current),
        rssBytes: group.rssBytes,
        processCount: group.processCount,
        sampledAt: at,
      };
      this.lastCpu.set(processId, current);
      this.latest.set(processId, sample);
      for (const listener of this.listeners.get(processId) ?? []) this.deliver(listener, sample);
      if (isVisiblyDifferent(this.announced.get(processId), sample)) {
        this.announced.set(processId, sample);
        this.options.onChanged(sample);
      }
    }
    if (missing.length) this.options.onMissing(missing);
  }
}

/** What a status embed shows changed: CPU by a whole point, memory by 1 %, or the number of processes. */
function isVisiblyDifferent(previous: ResourceSample | undefined, next: ResourceSample): boolean {
  if (!previous) return true;
  return Math.round(previous.cpuPercent) !== Math.round(next.cpuPercent)
    || previous.processCount !== next.processCount
    || Math.abs(previous.rssBytes - next.rssBytes) > previous.rssBytes / 100;
}

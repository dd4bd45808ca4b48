import type { ResourceSample } from '../process/events.js';

const MIB = 1024 * 1024;

/**
 * on_idle: fires when neither stream printed anything for `idleSeconds` while the process runs, and again only after
 * new output and another silence. One timer per hook, moved only when it wakes (not on every line).
 */
export class IdleWatch {
  private lastOutputAt: number;
  private isArmed = true;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly idleMs: number, private readonly onIdle: (silentMs: number) => void, startAt = Date.now()) {
    this.lastOutputAt = startAt;
    this.arm();
  }

  noteOutput(at = Date.now()): void {
    this.lastOutputAt = at;
    if (!this.isArmed) {
      this.isArmed = true;
      this.arm();
    }
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.isArmed = false;
  }

  private arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.wake(), Math.max(0, this.lastOutputAt + this.idleMs - Date.now()));
    this.timer.unref();
  }

  private wake(): void {
    this.timer = undefined;
    const silentMs = Date.now() - this.lastOutputAt;
    if (silentMs < this.idleMs) {
      this.arm();
      return;
    }
    this.isArmed = false;
    this.onIdle(silentMs);
  }
}

export interface ResourceBounds {
  memoryMb: number | null;
  cpuPercent: number | null;
  forSeconds: number;
}

/**
 * on_resource: memory above the bound at a sample, or CPU above the bound for `forSeconds`, on the usage of the whole
 * process group. It fires on entering the condition and again only after usage went back under the bounds.
 */
export class ResourceWatch {
  private cpuAboveSince: number | null = null;
  private isArmed = true;

  constructor(private readonly bounds: ResourceBounds) {}

  /** The reason to fire for this sample, or undefined. */
  check(sample: ResourceSample): string | undefined {
    const reasons: string[] = [];
    const { memoryMb, cpuPercent, forSeconds } = this.bounds;
    if (memoryMb !== null && sample.rssBytes > memoryMb * MIB) {
      reasons.push(`memory ${(sample.rssBytes / MIB).toFixed(1)} MiB is above ${memoryMb} MiB`);
    }
    if (cpuPercent !== null && sample.cpuPercent > cpuPercent) {
      this.cpuAboveSince ??= sample.sampledAt;
      const aboveMs = sample.sampledAt - this.cpuAboveSince;
      if (aboveMs >= forSeconds * 1000) reasons.push(`CPU ${sample.cpuPercent.toFixed(0)}% is above ${cpuPercent}%${forSeconds ? ` for ${Math.round(aboveMs / 1000)}s` : ''}`);
    } else {
      this.cpuAboveSince = null;
    }
    if (!reasons.length) {
      this.isArmed = true;
      return undefined;
    }
    if (!this.isArmed) return undefined;
    this.isArmed = false;
    return `${reasons.join('; ')} (${sample.processCount} process${sample.processCount === 1 ? '' : 'es'} in the group)`;
  }
}

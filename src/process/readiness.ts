import type { Logger } from '../logger.js';
import { matchLine, compileSafePattern } from '../safe-pattern.js';
import type { ProcessRecord, ProcessRepo } from '../store/process-repo.js';
import { findSocketHolder, portState, type PortHolder } from './net-sockets.js';
import { readySpecOf, type ReadySpec } from './supervision-spec.js';

export const READY_CHECK_INTERVAL_MS = 250;
const HTTP_TIMEOUT_MS = 2_000;
const ADOPTED_LATE_GRACE_MS = 1_000;

export interface ReadinessOptions {
  repo: ProcessRepo;
  log: Logger;
  checkIntervalMs?: number;
  onReady: (record: ProcessRecord) => void;
  onFailed: (record: ProcessRecord, reason: string) => void;
}

interface Watch {
  id: number;
  pid: number;
  spec: ReadySpec;
  regex: RegExp | null;
  portSeen: boolean;
  isChecking: boolean;
  timer: NodeJS.Timeout | undefined;
  deadline: NodeJS.Timeout | undefined;
}

export function describeHolder(port: number, holder: PortHolder | undefined): string {
  if (!holder) return `port ${port} is already held by a process Chorus cannot see (another user or namespace)`;
  const whose = holder.chorusProcessId !== null
    ? `a Chorus process (#${holder.chorusProcessId}${holder.chorusAgent ? ` of agent ${holder.chorusAgent}` : ''})`
    : 'not a Chorus process';
  return `port ${port} is already held by pid ${holder.pid} (${holder.command}), ${whose}`;
}

/**
 * Decides when a process is ready: its tree listens on the port (read from /proc, no connection), then, with an
 * http_path, a GET answers 2xx-3xx; or a line matches the pattern. The first outcome is stored; the other is dropped.
 */
export class Readiness {
  private readonly watches = new Map<number, Watch>();
  private readonly checkIntervalMs: number;

  constructor(private readonly options: ReadinessOptions) {
    this.checkIntervalMs = options.checkIntervalMs ?? READY_CHECK_INTERVAL_MS;
  }

  /** Starts watching a running row that has a readiness spec and no outcome yet. */
  watch(record: ProcessRecord): void {
    if (record.pid === null || record.readyAt || record.readyError || this.watches.has(record.id)) return;
    let spec: ReadySpec | undefined;
    try {
      spec = readySpecOf(record.readyJson);
    } catch (error) {
      this.options.log.error({ id: record.id, err: error }, 'stored readiness spec is invalid');
      return;
    }
    if (!spec) return;
    const watch: Watch = {
      id: record.id, pid: record.pid, spec, regex: spec.pattern === null ? null : compileSafePattern(spec.pattern, 'ready.pattern', 'INVALID_INPUT'),
      portSeen: false, isChecking: false, timer: undefined, deadline: undefined,
    };
    this.watches.set(record.id, watch);
    // From the stored start: a supervisor restart neither extends nor restarts the wait.
    const dueMs = Date.parse(record.startedAt) + spec.timeout_seconds * 1000 - Date.now();
    // Adopted past its deadline (the supervisor was down): one more look at the port and the output read since.
    const delayMs = dueMs > 0 ? dueMs : ADOPTED_LATE_GRACE_MS;
    watch.deadline = setTimeout(() => this.fail(watch, `not ready within ${spec.timeout_seconds}s (${this.waitingFor(watch)})`), delayMs);
    watch.deadline.unref();
    if (spec.port !== null) this.schedule(watch, 0);
  }

  /** A line of output of a watched process. */
  noteLine(processId: number, text: string): void {
    const watch = this.watches.get(processId);
    if (watch?.regex && matchLine(watch.regex, text)) this.succeed(watch);
  }

  /** Whether a log-line pattern waits on this process's lines. */
  wantsLines(processId: number): boolean {
    return this.watches.get(processId)?.regex != null;
  }

  unwatch(processId: number): void {
    const watch = this.watches.get(processId);
    if (!watch) return;
    clearTimeout(watch.timer);
    clearTimeout(watch.deadline);
    this.watches.delete(processId);
  }

  isWatching(processId: number): boolean {
    return this.watches.has(processId);
  }

  close(): void {
    for (const id of [...this.watches.keys()]) this.unwatch(id);
  }

  private waitingFor(watch: Watch): string {
    const { spec } = watch;
    const parts: string[] = [];
    if (spec.port !== null) {
      parts.push(watch.portSeen && spec.http_path ? `port ${spec.port} listens, but GET ${spec.http_path} never answered 2xx-3xx` : `nothing listened on port ${spec.port}`);
    }
    if (spec.pattern !== null) parts.push(`no line matched /${spec.pattern}/`);
    return parts.join('; ');
  }

  private schedule(watch: Watch, delayMs: number): void {
    watch.timer = setTimeout(() => void this.check(watch), delayMs);
    watch.timer.unref();
  }

  private async check(watch: Watch): Promise<void> {
    if (!this.watches.has(watch.id) || watch.isChecking) return;
    const port = watch.spec.port!;
    watch.isChecking = true;
    try {
      const found = portState(port, watch.pid);
      if (found.state === 'held') {
        this.fail(watch, describeHolder(port, findSocketHolder(found.inodes)));
        return;
      }
      if (found.state === 'ours') {
        watch.portSeen = true;
        if (watch.spec.http_path === null || (await answersHttp(port, watch.spec.http_path))) {
          this.succeed(watch);
          return;
        }
      }
    } catch (error) {
      this.options.log.warn({ id: watch.id, err: error }, 'readiness check failed');
    } finally {
      watch.isChecking = false;
    }
    if (this.watches.has(watch.id)) this.schedule(watch, this.checkIntervalMs);
  }

  private succeed(watch: Watch): void {
    if (!this.watches.has(watch.id)) return;
    this.unwatch(watch.id);
    if (!this.options.repo.markReady(watch.id, new Date().toISOString())) return;
    const record = this.options.repo.get(watch.id);
    if (record) this.options.onReady(record);
  }

  private fail(watch: Watch, reason: string): void {
    if (!this.watches.has(watch.id)) return;
    this.unwatch(watch.id);
    if (!this.options.repo.markReadyFailed(watch.id, reason)) return;
    const record = this.options.repo.get(watch.id);
    if (record) this.options.onFailed(record, reason);
  }
}

async function answersHttp(port: number, path: string): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, { redirect: 'manual', signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    await response.body?.cancel();
    return response.status >= 200 && response.status < 400;
  } catch {
    return false;
  }
}

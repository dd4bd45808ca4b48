import { setTimeout as sleep } from 'node:timers/promises';
import { AppError } from '../errors.js';
import { matchLine } from '../safe-pattern.js';
import type { ProcessManager } from '../process/process-manager.js';
import type { LogStream, ProcessRecord } from '../store/process-repo.js';
import { describeEnd } from '../process/process-manager.js';
import { cutLine } from './describe.js';
import { readSinceCursor, streamCursor } from './process-output.js';

export const WAIT_CONDITIONS = ['exit', 'output', 'match', 'ready'] as const;
export type WaitCondition = (typeof WAIT_CONDITIONS)[number];
export const WAIT_TIMEOUT_MIN_SECONDS = 1;
export const WAIT_TIMEOUT_MAX_SECONDS = 600;
export const WAIT_TIMEOUT_DEFAULT_SECONDS = 60;
/** What a wait returns at most: the first lines and the last ones, with how many were left out between. */
const HEAD_LINES = 40;
const TAIL_LINES = 120;
const POLL_MS = 150;
const WAIT_LINE_SHOWN_MAX = 1_000;
/** Pages read per poll, so a flood never keeps a wait busy for long. */
const PAGES_PER_POLL = 64;

/** A read position in both streams; shown as "<stdout>:<stderr>". */
export interface WaitCursor {
  stdout: number;
  stderr: number;
}

export function formatCursor(cursor: WaitCursor): string {
  return `${cursor.stdout}:${cursor.stderr}`;
}

export function parseCursor(value: unknown, field = 'cursor'): WaitCursor | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const match = typeof value === 'string' ? /^(\d{1,15}):(\d{1,15})$/.exec(value.trim()) : null;
  if (!match) throw new AppError('INVALID_INPUT', `${field} must be the next_cursor of an earlier wait, "<stdout bytes>:<stderr bytes>" (got ${JSON.stringify(value)})`);
  return { stdout: Number(match[1]), stderr: Number(match[2]) };
}

export interface WaitRequest {
  until: WaitCondition;
  pattern?: RegExp | undefined;
  timeoutSeconds: number;
  cursor?: WaitCursor | undefined;
  signal?: AbortSignal | undefined;
}

export interface WaitResult {
  record: ProcessRecord;
  /** Whether the condition held (false: the timeout passed, or the process ended before it held). */
  held: boolean;
  /** New lines since the cursor (stderr ones tagged), first and last kept. */
  lines: string[];
  omittedLines: number;
  matchedLine: string | undefined;
  nextCursor: WaitCursor;
  waitedMs: number;
}

/** Keeps the first and the last lines of what it is given. */
class HeadTail {
  readonly head: string[] = [];
  tail: string[] = [];
  omitted = 0;

  push(line: string): void {
    if (this.head.length < HEAD_LINES) {
      this.head.push(line);
      return;
    }
    this.tail.push(line);
    if (this.tail.length > TAIL_LINES * 2) this.compact();
  }

  lines(): string[] {
    this.compact();
    return this.omitted ? [...this.head, `[… ${this.omitted} lines not shown …]`, ...this.tail] : [...this.head, ...this.tail];
  }

  private compact(): void {
    const extra = this.tail.length - TAIL_LINES;
    if (extra > 0) {
      this.omitted += extra;
      this.tail = this.tail.slice(extra);
    }
  }
}

/**
 * Waits until a process ends, prints a new line, or prints a line matching a pattern, or the timeout passes, reading
 * its log files from a cursor. It takes no lock and changes nothing: other branches, hooks and people use the same
 * process meanwhile, and a CLI without a supervisor waits the same way.
 */
export async function waitForProcess(manager: ProcessManager, initial: ProcessRecord, request: WaitRequest): Promise<WaitResult> {
  if (request.until === 'match' && !request.pattern) throw new AppError('INVALID_INPUT', 'pattern is required with until "match": a regex tested on each new line');
  if (request.until === 'ready' && initial.readyJson === null) {
    throw new AppError('INVALID_INPUT', 'until "ready" needs a process started with ready (a port, http_path or pattern); wait until "match" or "output" instead');
  }
  const startedAt = Date.now();
  const deadline = startedAt + request.timeoutSeconds * 1000;
  const cursor: WaitCursor = request.cursor ?? { stdout: streamCursor(initial, 'stdout'), stderr: streamCursor(initial, 'stderr') };
  const collected = new HeadTail();
  let matchedLine: string | undefined;
  let sawLine = false;
  let record = initial;
  for (;;) {
    const fresh = manager.repo.get(initial.id) ?? record;
    record = manager.observe(fresh);
    const hasEnded = record.status !== 'running';
    for (const stream of ['stdout', 'stderr'] as LogStream[]) {
      for (let page = 0; page < PAGES_PER_POLL && !(matchedLine && request.until === 'match'); page += 1) {
        const read = readSinceCursor(record, stream, cursor[stream], { maxLines: Number.MAX_SAFE_INTEGER });
        cursor[stream] = read.nextCursor;
        for (const line of read.lines) {
          sawLine = true;
          collected.push(stream === 'stderr' ? `[stderr] ${line}` : line);
          if (request.until === 'match' && matchedLine === undefined && matchLine(request.pattern!, line)) matchedLine = line;
        }
        if (read.remainingBytes === 0 || read.nextCursor === cursor[stream] && read.lines.length === 0) break;
      }
    }
    const held = request.until === 'exit' ? hasEnded : request.until === 'output' ? sawLine : request.until === 'ready' ? record.readyAt !== null : matchedLine !== undefined;
    // A readiness that failed (timed out, port held) is decided: waiting longer cannot make it hold.
    const isDecided = request.until === 'ready' && record.readyError !== null;
    if (held || hasEnded || isDecided || Date.now() >= deadline || request.signal?.aborted) {
      return { record, held, lines: collected.lines(), omittedLines: collected.omitted, matchedLine, nextCursor: { ...cursor }, waitedMs: Date.now() - startedAt };
    }
    await sleep(Math.min(POLL_MS, Math.max(1, deadline - Date.now())));
  }
}

function whyNotHeld(result: WaitResult, until: string): string {
  const { record } = result;
  if (until === 'ready' && record.readyError !== null) return `not ready: ${record.readyError}`;
  return record.status !== 'running' && until !== 'exit' ? 'the process ended first' : `timed out after ${Math.round(result.waitedMs / 1000)}s`;
}

/** A wait's result as the tool (and `chorus wait --json`) prints it. */
export function waitResultJson(result: WaitResult, until: string): Record<string, unknown> {
  const { record } = result;
  return {
    ok: true,
    pid: record.pid,
    until,
    held: result.held,
    status: record.status,
    ...(record.status !== 'running' && { ended: describeEnd(record) }),
    ...(record.pausedAt && { paused: true }),
    ...(!result.held && { why: whyNotHeld(result, until) }),
    ...(result.matchedLine !== undefined && { matched_line: cutLine(result.matchedLine, WAIT_LINE_SHOWN_MAX) }),
    output: result.lines.map((l) => cutLine(l, WAIT_LINE_SHOWN_MAX)),
    ...(result.omittedLines > 0 && { omitted_lines: result.omittedLines }),
    next_cursor: formatCursor(result.nextCursor),
  };
}

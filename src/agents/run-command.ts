import { setTimeout as sleep } from 'node:timers/promises';
import { isAppError } from '../errors.js';
import { fileSize, logPath } from '../process/log-reader.js';
import type { ProcessManager } from '../process/process-manager.js';
import type { LogStream, ProcessRecord } from '../store/process-repo.js';
import type { ProcessOwner } from '../process/owner.js';
import { readableLines, readSinceCursor } from './process-output.js';

export const RUN_COMMAND_DEFAULT_TIMEOUT_SECONDS = 60;
export const RUN_COMMAND_MAX_TIMEOUT_SECONDS = 600;
/** Output kept per stream: the end, where errors are. */
export const RUN_COMMAND_OUTPUT_BYTES = 16 * 1024;
const POLL_MS = 50;
/** Past its timeout, how long the supervisor gets to stop it (its grace included) before the tool stops it itself. */
const STOP_SLACK_MS = 15_000;

export interface ForegroundRequest {
  /** The agent as the core sees it (its sandbox policy included: the command is confined as any spawn). */
  agent: ProcessOwner;
  command: string;
  workingDirectory?: string | undefined;
  timeoutSeconds?: number | undefined;
  /** Still running then: the tool returns and the command goes on as a background process. */
  backgroundAfterSeconds?: number | undefined;
  spawnedByBranch?: string | undefined;
  hookRecursionDepth?: number | undefined;
  signal?: AbortSignal | undefined;
}

export interface ForegroundResult {
  record: ProcessRecord;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  /** It went on in the background (background_after_seconds passed). */
  isBackgrounded: boolean;
  durationMs: number;
  stdout: string;
  stderr: string;
  /** Bytes dropped from the start of each stream to keep it bounded. */
  droppedBytes: { stdout: number; stderr: number };
}

/** The last `limit` bytes of a stream, from a line start when cut, as readers see them. */
function lastBytes(record: ProcessRecord, stream: LogStream, limit: number): { text: string; dropped: number } {
  const total = record[stream === 'stdout' ? 'stdoutRotated' : 'stderrRotated'] + fileSize(logPath(record, stream));
  const start = Math.max(0, total - limit);
  const read = readSinceCursor({ ...record, status: 'exited' }, stream, start, { maxLines: Number.MAX_SAFE_INTEGER });
  let lines = readableLines(record, read.lines);
  let dropped = start + read.skippedBytes;
  // Cut in the middle of a line: that fragment is dropped.
  if (start > 0 && lines.length) {
    dropped += Buffer.byteLength(lines[0]!) + 1;
    lines = lines.slice(1);
  }
  const text = lines.join('\n');
  return { text: text && !text.endsWith('\n') ? `${text}\n` : text, dropped };
}

async function waitForEnd(manager: ProcessManager, id: number, untilMs: number, signal: AbortSignal | undefined): Promise<ProcessRecord> {
  for (;;) {
    const record = manager.observe(manager.repo.get(id)!);
    if (record.status !== 'running') {
      // Stored before the tool answers, so the process lists agree with the result (unless no supervisor watches it).
      const stored = await manager.settleObserved(id);
      return stored && stored.status !== 'running' ? stored : record;
    }
    if (Date.now() >= untilMs || signal?.aborted) return record;
    await sleep(Math.min(POLL_MS, Math.max(1, untilMs - Date.now())));
  }
}

async function stopQuietly(manager: ProcessManager, id: number, by: string): Promise<void> {
  try {
    await manager.kill({ id }, { by });
  } catch (error) {
    if (!isAppError(error, 'PROCESS_NOT_RUNNING') && !isAppError(error, 'PROCESS_IDENTITY_MISMATCH')) throw error;
  }
}

/**
 * run_command: a tracked process of the core (type `foreground`: listed, killable by a person, surviving a restart of
 * the bot, its timeout stored with it) that the tool waits for. With `backgroundAfterSeconds`, a command still running
 * then goes on as a background process and the tool returns its pid and output so far.
 */
export async function runForeground(manager: ProcessManager, request: ForegroundRequest): Promise<ForegroundResult> {
  request.signal?.throwIfAborted();
  const timeoutSeconds = request.timeoutSeconds ?? RUN_COMMAND_DEFAULT_TIMEOUT_SECONDS;
  const background = request.backgroundAfterSeconds;
  const startedAt = Date.now();
  const record = await manager.spawn({
    agent: request.agent,
    command: request.command,
    workingDirectory: request.workingDirectory,
    processType: 'foreground',
    spawnedByBranch: request.spawnedByBranch,
    hookRecursionDepth: request.hookRecursionDepth,
    // Stored, so the supervisor stops it on time even if this call is lost to a restart; not once it goes on in the background.
    timeoutSeconds: background === undefined ? timeoutSeconds : undefined,
  });
  const waitMs = background === undefined ? timeoutSeconds * 1000 + STOP_SLACK_MS : background * 1000;
  let ended = await waitForEnd(manager, record.id, startedAt + waitMs, request.signal);
  let isBackgrounded = false;
  if (ended.status === 'running') {
    if (request.signal?.aborted) {
      await stopQuietly(manager, record.id, 'branch stopped');
    } else if (background !== undefined) {
      isBackgrounded = manager.moveToBackground(record.id) !== undefined;
    } else {
      await stopQuietly(manager, record.id, 'timeout');
    }
    ended = isBackgrounded ? manager.repo.get(record.id)! : await waitForEnd(manager, record.id, Date.now() + STOP_SLACK_MS, undefined);
  }
  const stdout = lastBytes(ended, 'stdout', RUN_COMMAND_OUTPUT_BYTES);
  const stderr = lastBytes(ended, 'stderr', RUN_COMMAND_OUTPUT_BYTES);
  return {
    record: ended,
    exitCode: ended.exitCode,
    signal: ended.signal,
    timedOut: ended.status === 'killed' && ended.stoppedBy === 'timeout',
    isBackgrounded,
    durationMs: Date.now() - startedAt,
    stdout: stdout.text,
    stderr: stderr.text,
    droppedBytes: { stdout: stdout.dropped, stderr: stderr.dropped },
  };
}

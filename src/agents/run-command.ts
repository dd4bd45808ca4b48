import { spawn } from 'node:child_process';
import { AppError } from '../errors.js';
import { checkCommand } from '../process/command-policy.js';
import { buildChildEnv } from '../process/environment.js';
import { isForbiddenPid } from '../process/identity.js';
import { readAllStats } from '../process/proc-fs.js';
import type { ProcessOwner } from '../process/owner.js';
import type { SandboxHost, SandboxKind } from '../process/sandbox.js';
import { commandShell } from '../process/shim.js';
import { ensureWorkspaceDir, resolveWorkingDirectory } from '../process/workspace.js';

export const RUN_COMMAND_DEFAULT_TIMEOUT_SECONDS = 60;
export const RUN_COMMAND_MAX_TIMEOUT_SECONDS = 600;
/** Output kept per stream: the end, where errors are. */
export const RUN_COMMAND_OUTPUT_BYTES = 16 * 1024;
const KILL_GRACE_MS = 2_000;
/** After the shell exits, how long a descendant that still holds the pipes may keep them. */
const PIPE_LINGER_MS = 1_000;

export interface ForegroundRequest {
  agent: ProcessOwner;
  /** Confines the command exactly as a spawn would be. */
  sandbox: SandboxHost;
  command: string;
  workingDirectory?: string | undefined;
  timeoutSeconds?: number | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  signal?: AbortSignal | undefined;
}

export interface ForegroundResult {
  command: string;
  workingDirectory: string;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  durationMs: number;
  sandbox: SandboxKind;
  stdout: string;
  stderr: string;
  /** Bytes dropped from the start of each stream to keep it bounded. */
  droppedBytes: { stdout: number; stderr: number };
}

/** Keeps the last `limit` bytes of a stream. */
class BoundedTail {
  private chunks: Buffer[] = [];
  private size = 0;
  dropped = 0;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.size > this.limit * 2) this.compact();
  }

  text(): string {
    this.compact();
    let text = Buffer.concat(this.chunks).toString('utf8');
    // A cut in the middle of a character shows as U+FFFD at the start; drop the partial first line instead.
    if (this.dropped > 0) text = text.slice(text.indexOf('\n') + 1);
    return text;
  }

  private compact(): void {
    const all = Buffer.concat(this.chunks);
    const excess = Math.max(0, all.length - this.limit);
    this.dropped += excess;
    this.chunks = [all.subarray(excess)];
    this.size = all.length - excess;
  }
}

/**
 * run_command: the same checks and sandbox as a spawn (command policy, workspace, sanitized environment), run in the
 * foreground in its own process group, bounded in time and output; the whole group is stopped on timeout or abort.
 */
export async function runForeground(request: ForegroundRequest): Promise<ForegroundResult> {
  const command = checkCommand(request.command);
  ensureWorkspaceDir(request.agent.workspace);
  const cwd = resolveWorkingDirectory(request.agent.workspace, request.workingDirectory);
  const timeoutSeconds = request.timeoutSeconds ?? RUN_COMMAND_DEFAULT_TIMEOUT_SECONDS;
  request.signal?.throwIfAborted();
  const launcher = request.sandbox.launcher(request.agent, cwd);
  const startedAt = Date.now();
  const [file, ...args] = [...launcher.prefix, commandShell(), '-c', command];
  const child = spawn(file!, args, {
    cwd,
    env: buildChildEnv(request.env ?? process.env, request.agent.env, {}),
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout = new BoundedTail(RUN_COMMAND_OUTPUT_BYTES);
  const stderr = new BoundedTail(RUN_COMMAND_OUTPUT_BYTES);
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));

  let timedOut = false;
  let hasExited = false;
  let killTimer: NodeJS.Timeout | undefined;
  const stopGroup = () => {
    const pid = child.pid;
    if (pid === undefined || isForbiddenPid(pid) || killTimer) return;
    signalGroup(pid, 'SIGTERM', hasExited);
    killTimer = setTimeout(() => signalGroup(pid, 'SIGKILL', hasExited), KILL_GRACE_MS);
  };
  const timer = setTimeout(() => {
    timedOut = true;
    stopGroup();
  }, timeoutSeconds * 1000);
  const onAbort = () => stopGroup();
  request.signal?.addEventListener('abort', onAbort, { once: true });

  try {
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      let linger: NodeJS.Timeout | undefined;
      child.once('error', (error) => reject(new AppError('SPAWN_FAILED', error.message, { cause: error })));
      child.once('exit', () => {
        hasExited = true;
        // The shell is gone; a descendant that keeps the pipes open must not keep this call waiting.
        linger = setTimeout(() => {
          child.stdout.destroy();
          child.stderr.destroy();
        }, PIPE_LINGER_MS);
      });
      child.once('close', (code, sig) => {
        clearTimeout(linger);
        resolve({ code, signal: sig });
      });
    });
    // Whatever the command left behind in its group goes with it, as with a spawn's kill.
    if (child.pid !== undefined && !isForbiddenPid(child.pid)) signalGroup(child.pid, 'SIGKILL', true);
    return {
      command,
      workingDirectory: cwd,
      exitCode: code,
      signal,
      timedOut,
      durationMs: Date.now() - startedAt,
      sandbox: launcher.sandbox,
      stdout: stdout.text(),
      stderr: stderr.text(),
      droppedBytes: { stdout: stdout.dropped, stderr: stderr.dropped },
    };
  } finally {
    clearTimeout(timer);
    clearTimeout(killTimer);
    request.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * Once the shell is reaped its pid is free, so the group id is only trusted while a member still carries it (the
 * kernel never reuses a pid that is still some group's id).
 */
function signalGroup(pgid: number, signal: NodeJS.Signals, isLeaderReaped: boolean): void {
  if (isLeaderReaped && !readAllStats().some((s) => s.pgrp === pgid && s.state !== 'Z')) return;
  try {
    process.kill(-pgid, signal);
  } catch {
    // The group is already empty.
  }
}

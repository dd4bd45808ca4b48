import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { afterEach } from 'vitest';
import { isAlive } from './child-cleanup.js';
import { CHORUS_BIN } from './cli.js';
import { waitFor } from './wait-for.js';

const READY = /^chorus: supervising (.+) \(pid (\d+)\)$/m;
const DEFAULT_READY_TIMEOUT_MS = 10_000;

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SupervisorProcess {
  pid: number;
  home: string;
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves when the process has exited (and been reaped). */
  exited: Promise<ProcessExit>;
  /** A crash: SIGKILL, then wait until it is gone. */
  sigkill(): Promise<ProcessExit>;
  /** A graceful stop: SIGTERM, then wait for its exit. */
  stop(timeoutMs?: number): Promise<ProcessExit>;
}

interface Running {
  child: ChildProcess;
  exited: Promise<ProcessExit>;
}

const running = new Set<Running>();

afterEach(async () => {
  const all = [...running];
  running.clear();
  for (const { child } of all) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all(all.map((r) => r.exited));
});

/** The promise's value, or undefined when it takes longer than `timeoutMs`. */
function within<T>(promise: Promise<T>, timeoutMs: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), timeoutMs); });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

function supervisorEnv(home: string, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, CHORUS_HOME: home, LOG_LEVEL: 'warn', ...env };
}

function collect(child: ChildProcess, logFile?: string): { out: () => string; err: () => string; exited: Promise<ProcessExit> } {
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { out += chunk; });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
    if (logFile) appendFileSync(logFile, chunk);
  });
  const exited = new Promise<ProcessExit>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  return { out: () => out, err: () => err, exited };
}

/**
 * Starts `chorus supervise` on `home` as its own OS process and resolves once it printed its ready line. It is
 * SIGKILLed after the test if still running. Its environment is PATH, HOME, CHORUS_HOME and LOG_LEVEL=warn, plus `env`;
 * with `logFile` it logs at debug level and its stderr is appended there, to debug a test.
 */
export async function startSupervisor(
  home: string,
  options: { env?: NodeJS.ProcessEnv; readyTimeoutMs?: number; logFile?: string; verb?: 'supervise' | 'bot' } = {},
): Promise<SupervisorProcess> {
  const env = supervisorEnv(home, { ...(options.logFile && { LOG_LEVEL: 'debug' }), ...options.env });
  // cwd is the home, so a .env in the repository is never read.
  const child = spawn(process.execPath, [CHORUS_BIN, options.verb ?? 'supervise'], { cwd: home, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const { out, err, exited } = collect(child, options.logFile);
  const entry: Running = { child, exited };
  running.add(entry);
  let exit: ProcessExit | undefined;
  void exited.then((value) => { exit = value; });
  const match = await waitFor(() => {
    if (exit) throw new Error(`chorus supervise exited (${JSON.stringify(exit)}) before it was ready; stderr: ${err()}`);
    return READY.exec(out());
  }, { timeoutMs: options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS, what: `the ready line of chorus supervise on ${home}` });
  const pid = Number(match[2]);
  if (pid !== child.pid) throw new Error(`chorus supervise reported pid ${pid}, but runs as ${child.pid}`);

  const signalAndWait = async (signal: NodeJS.Signals, timeoutMs: number): Promise<ProcessExit> => {
    if (isAlive(pid)) child.kill(signal);
    const result = await within(exited, timeoutMs);
    if (!result) throw new Error(`chorus supervise (pid ${pid}) did not exit within ${timeoutMs} ms of ${signal}; stderr: ${err()}`);
    running.delete(entry);
    return result;
  };
  return {
    pid,
    home,
    get stdout() { return out(); },
    get stderr() { return err(); },
    exited,
    sigkill: () => signalAndWait('SIGKILL', 5_000),
    stop: (timeoutMs = 10_000) => signalAndWait('SIGTERM', timeoutMs),
  };
}

/** Runs `chorus supervise` expecting it to refuse to start; resolves with how it exited and what it printed. */
export function runRefusedSupervisor(home: string, timeoutMs = 10_000): Promise<ProcessExit & { stdout: string; stderr: string }> {
  return runUntilExit(home, { timeoutMs });
}

/** Runs `chorus <verb>` (supervise by default) until it exits by itself; resolves with how it exited and what it printed. */
export async function runUntilExit(
  home: string,
  options: { verb?: 'supervise' | 'bot'; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<ProcessExit & { stdout: string; stderr: string }> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const child = spawn(process.execPath, [CHORUS_BIN, options.verb ?? 'supervise'], { cwd: home, env: supervisorEnv(home, options.env ?? {}), stdio: ['ignore', 'pipe', 'pipe'] });
  const { out, err, exited } = collect(child);
  const entry: Running = { child, exited };
  running.add(entry);
  const result = await within(exited, timeoutMs);
  if (!result) throw new Error(`chorus ${options.verb ?? 'supervise'} on ${home} was still running after ${timeoutMs} ms; stdout: ${out()}; stderr: ${err()}`);
  running.delete(entry);
  return { ...result, stdout: out(), stderr: err() };
}

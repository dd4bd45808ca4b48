import { mkdirSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { dirname, join } from 'node:path';
import { AppError, errorMessage } from '../errors.js';
import { agentDir } from '../home-layout.js';
import type { NewProcess, ProcessCategory, ProcessRecord, ProcessRepo, ProcessType } from '../store/process-repo.js';
import { checkCommand } from './command-policy.js';
import { buildChildEnv } from './environment.js';
import { captureIdentity, isForbiddenPid, selfLease, type ProcessIdentity } from './identity.js';
import { LaunchUncertainError, type LaunchRequest, type ShimLauncher } from './forker.js';
import { descriptorTarget, environHas, readAllStats } from './proc-fs.js';
import type { SandboxHost } from './sandbox.js';
import { commandArgv } from './shim.js';
import { createInputFifos, inputFiles } from './input.js';
import { terminalArgv } from './terminal.js';
import type { ProcessOwner } from './owner.js';
import { ensureWorkspaceDir, resolveWorkingDirectory } from './workspace.js';

export interface SpawnRequest {
  /** Built by the layer above (the agents layer, from agent.json). */
  agent: ProcessOwner;
  command: string;
  workingDirectory?: string | undefined;
  processType?: ProcessType | undefined;
  name?: string | undefined;
  category?: ProcessCategory | undefined;
  spawnedByBranch?: string | undefined;
  contextJson?: string | undefined;
  modelForHooks?: string | undefined;
  hookRecursionDepth?: number | undefined;
  timeoutSeconds?: number | undefined;
  restartedFrom?: number | undefined;
  /** Readiness probe and restart policy, as stored JSON (src/process/supervision-spec.ts). */
  readyJson?: string | undefined;
  restartJson?: string | undefined;
  restartCount?: number | undefined;
  restartStreak?: number | undefined;
  /** stdin is a FIFO the shim holds open (send_input); otherwise /dev/null. */
  interactive?: boolean | undefined;
  /** Runs under a pseudo-terminal (util-linux script); implies interactive. */
  tty?: boolean | undefined;
  /** Runs inside the transaction that inserts the row (hooks are stored with their process, or not at all). */
  withRow?: ((processId: number) => void) | undefined;
}

/** The marker every process of a run carries in its environment, so stray descendants can be found and proven ours. */
export const RUN_MARKER_NAME = 'CHORUS_RUN_DIR';

export function runMarker(runDir: string): string {
  return `${RUN_MARKER_NAME}=${runDir}`;
}

export function processesDir(home: string, agentName: string): string {
  return join(agentDir(home, agentName), 'processes');
}

/**
 * Where row `id` runs: `<processes>/<bucket>/<id>-<time>`, unique even when a fresh database reuses row ids beside
 * old run directories. The bucket is the minute the spawn was made in (UTC, `20261202-0438`). Only a bucket goes
 * through ext4's allocator for a top directory (see native/forker.c), which looks over every block group for a fresh
 * one: 0.2 ms of CPU a directory. The run directories and logs of a bucket then go beside it, at a quarter of that.
 * The allocator's search starts from a hash of the name, so a name never used before lands anywhere: a bucket named
 * by row ids went back to the block group where the same name had just been deleted (another home's, a test run's),
 * and paid for every deleted inode there.
 */
export function runDirPath(processes: string, id: number, now = new Date()): string {
  const stamp = now.toISOString();
  const bucket = `${stamp.slice(0, 4)}${stamp.slice(5, 7)}${stamp.slice(8, 10)}-${stamp.slice(11, 13)}${stamp.slice(14, 16)}`;
  return `${processes}/${bucket}/${id}-${now.getTime().toString(36)}`;
}

/** A bucket of run directories (runDirPath), as opposed to a run directory of a home made before the buckets. */
export function isRunBucket(name: string): boolean {
  return /^\d{8}-\d{4}$/.test(name);
}

/** Makes a run directory, and its bucket the first time (one mkdir a spawn otherwise). */
function makeRunDir(runDir: string): void {
  try {
    mkdirSync(runDir, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    mkdirSync(dirname(runDir), { recursive: true, mode: 0o700 });
    mkdirSync(runDir, { mode: 0o700 });
  }
}

/** The exit status file the shim writes. */
export function exitFilePath(runDir: string): string {
  return join(runDir, 'exit');
}

/**
 * The command's argv inside any sandbox (under a terminal, terminal.ts, when asked, then the command) and the
 * variables it needs (line buffering): in its environment, or, confined, as NAME=VALUE words for the sandbox's
 * `env --default-signal`, so bwrap itself neither loads nor drops them.
 */
export function commandLauncher(command: string, isTty: boolean, agentEnv: Record<string, string> = {}): { argv: string[]; env: Record<string, string> } {
  // Under a terminal the program buffers by lines already (it sees a tty).
  const inner = commandArgv(command, { isLineBuffered: !isTty, env: agentEnv });
  return { argv: isTty ? terminalArgv(inner.argv) : inner.argv, env: inner.env };
}

/** script runs its command with $SHELL; a terminal needs a TERM. */
function terminalEnv(parentEnv: NodeJS.ProcessEnv): Record<string, string> {
  return { SHELL: '/bin/sh', TERM: parentEnv.TERM && parentEnv.TERM !== 'dumb' ? parentEnv.TERM : 'xterm' };
}

/**
 * The request's own checks, before anything exists: nothing is spawned or written when one fails. The process limit
 * is checked once, under the write lock, before the row is inserted (checkProcessLimit).
 */
export function validateSpawn(request: SpawnRequest): { command: string; cwd: string } {
  const command = checkCommand(request.command);
  ensureWorkspaceDir(request.agent.workspace);
  const cwd = resolveWorkingDirectory(request.agent.workspace, request.workingDirectory);
  return { command, cwd };
}

/** Inside the transaction that inserts the row: another spawner (the CLI) may have started one a moment ago. */
function checkProcessLimit(repo: ProcessRepo, agent: ProcessOwner): void {
  const active = repo.countActive(agent.name);
  if (active >= agent.maxProcesses) {
    throw new AppError('PROCESS_LIMIT', `agent ${agent.name} already runs ${active} of ${agent.maxProcesses} processes; stop one first`);
  }
}

/**
 * Starts the command through the shim, detached in its own process group, with stdout and stderr going straight to
 * files (which reach a sandboxed command as open descriptors: it never sees the run directory). The row is committed
 * as `starting` before the launch (so a crash never leaves a process without a row) and becomes `running`, visible to
 * every list, in the transaction that records its identity.
 */
export async function spawnProcess(home: string, repo: ProcessRepo, request: SpawnRequest, sandbox: SandboxHost, launcher: ShimLauncher, parentEnv: NodeJS.ProcessEnv = process.env): Promise<ProcessRecord> {
  const { command, cwd } = validateSpawn(request);
  // Before the row exists: `required` without a working sandbox refuses here, with nothing written.
  const confinement = sandbox.launcher(request.agent, cwd);
  const fields: NewProcess = {
    command,
    name: request.name ?? null,
    category: request.category ?? null,
    workingDirectory: cwd,
    agentName: request.agent.name,
    processType: request.processType ?? 'background',
    spawnedByBranch: request.spawnedByBranch ?? null,
    contextJson: request.contextJson ?? null,
    modelForHooks: request.modelForHooks ?? null,
    hookRecursionDepth: request.hookRecursionDepth ?? 0,
    timeoutSeconds: request.timeoutSeconds ?? null,
    restartedFrom: request.restartedFrom ?? null,
    isInteractive: (request.interactive ?? false) || (request.tty ?? false),
    isTty: request.tty ?? false,
    sandbox: confinement.sandbox,
    readyJson: request.readyJson ?? null,
    restartJson: request.restartJson ?? null,
    restartCount: request.restartCount ?? 0,
    restartStreak: request.restartStreak ?? 0,
  };
  // Checked before anything exists: a missing `script` is a clear refusal, not a process that fails at once.
  const commandLine = commandLauncher(command, fields.isTty, request.agent.env);
  const parent = processesDir(home, request.agent.name);
  mkdirSync(parent, { recursive: true, mode: 0o700 });
  // Each bucket of run directories then goes to a block group with free inodes (ext4; see runDirPath): once per directory.
  await launcher.markTopDirectory?.(parent);

  // The row is committed as `starting`, with this process as its lease, before anything is launched.
  const row = repo.transaction(() => {
    checkProcessLimit(repo, request.agent);
    const rowId = repo.insertStarting(fields, new Date().toISOString(), selfLease());
    const runDir = runDirPath(parent, rowId);
    const paths = { id: rowId, runDir, stdoutLog: stdoutLogPath(runDir), stderrLog: `${runDir}/stderr.log` };
    repo.setPaths(rowId, paths.runDir, paths.stdoutLog, paths.stderrLog);
    request.withRow?.(rowId);
    return paths;
  });
  const id = row.id;

  const forget = (error: unknown): AppError => {
    repo.delete(id);
    rmSync(row.runDir, { recursive: true, force: true });
    return error instanceof AppError ? error : new AppError('SPAWN_FAILED', errorMessage(error), { cause: error });
  };
  let launch: LaunchRequest;
  try {
    makeRunDir(row.runDir);
    const env = buildChildEnv(parentEnv, request.agent.env, {
      [RUN_MARKER_NAME]: row.runDir,
      CHORUS_AGENT: request.agent.name,
      CHORUS_PROCESS_ID: String(id),
    });
    const input = fields.isInteractive ? inputFiles(row.runDir) : undefined;
    if (input) createInputFifos(input);
    if (fields.isTty) Object.assign(env, terminalEnv(parentEnv));
    const isConfined = confinement.prefix.length > 0;
    if (!isConfined) Object.assign(env, commandLine.env);
    const assignments = isConfined ? Object.entries(commandLine.env).map(([name, value]) => `${name}=${value}`) : [];
    const exitFile = exitFilePath(row.runDir);
    launch = {
      argv: [...confinement.prefix, ...assignments, ...commandLine.argv],
      shim: { input }, cwd, env, stdoutLog: row.stdoutLog, stderrLog: row.stderrLog, exitFile,
    };
  } catch (error) {
    throw forget(error);
  }
  let pid: number | undefined;
  for (let attempt = 1; pid === undefined; attempt += 1) {
    try {
      pid = await launcher.launch(launch);
    } catch (error) {
      if (!(error instanceof LaunchUncertainError)) throw forget(error);
      // The forker died after it had the request: the shim may run, and its run marker would prove it.
      const found = await findLaunched(row.runDir);
      if (found) {
        repo.transaction(() => repo.markRunning(id, found, new Date().toISOString()));
        return repo.get(id)!;
      }
      // Nothing carries the marker after a fork and an exec had time: the request was never acted on. Once more.
      if (attempt >= 2) throw forget(error);
    }
  }

  // It may have ended before its identity could be read: recorded all the same, the supervisor settles it from the
  // exit file. One statement records the identity and reads the row back (another writer may have moved it on).
  const identity = captureIdentity(pid) ?? { pid, pgid: pid, startTicks: -1, bootId: '' };
  return repo.markRunningRecord(id, identity, new Date().toISOString()) ?? repo.get(id)!;
}

/** The stdout log of a run directory (a spawn finds its shim by it when the forker died mid-spawn). */
export function stdoutLogPath(runDir: string): string {
  return `${runDir}/stdout.log`;
}

/**
 * The shim of a run directory, found after a spawn cut short: a session leader that carries the run marker in its
 * environment (the sh shim, exec'd with it) or has its stdout on the run's log (the native shim, which is the forker's
 * child without an exec, keeps the forker's empty environment; it never moves its own descriptors). The earliest
 * started wins: a descendant that made its own session started after its shim.
 */
export function findByRunMarker(runDir: string): ProcessIdentity | undefined {
  const marker = runMarker(runDir);
  const log = stdoutLogPath(runDir);
  const leaders = readAllStats()
    .filter((stat) => stat.pid === stat.pgrp && !isForbiddenPid(stat.pid) && (environHas(stat.pid, marker) || descriptorTarget(stat.pid, 1) === log))
    .sort((a, b) => a.startTicks - b.startTicks);
  return leaders[0] && captureIdentity(leaders[0].pid);
}

/** Looks for a shim whose launch was not answered, for as long as a fork and an exec can take. */
async function findLaunched(runDir: string): Promise<ProcessIdentity | undefined> {
  for (let attempt = 0; attempt < 10; attempt += 1) {
    const found = findByRunMarker(runDir);
    if (found) return found;
    await sleep(50);
  }
  return undefined;
}

import { spawn } from 'node:child_process';
import { agentOwnerLoader } from '../../src/agents/agent-config.js';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { ProcessManager } from '../../src/process/process-manager.js';
import { readAllStats, readStat } from '../../src/process/proc-fs.js';
import { openDatabase, type Db } from '../../src/store/database.js';
import { ProcessRepo, type ProcessRecord } from '../../src/store/process-repo.js';
import { SupervisorRepo } from '../../src/store/supervisor-repo.js';
import { isAlive, trackPid } from './child-cleanup.js';
import { parseJson, runCli } from './cli.js';
import { makeTempHome } from './temp-home.js';
import { waitFor } from './wait-for.js';
import { fixture } from './fixtures.js';

export const TICKER = fixture('crash-ticker.mjs');
export const SLEEPER = fixture('crash-sleep.mjs');
export const AGENT = 'demo';

/** Process groups and pids a test started; all are SIGKILLed after it, and checked gone. */
const groups = new Set<number>();
const pids = new Set<number>();
const opened: Array<{ manager: ProcessManager; db: Db }> = [];
const samplers = new Set<OffsetSampler>();

function leftovers(): number[] {
  const alive = [...pids].filter(isAlive);
  const inGroups = readAllStats().filter((s) => groups.has(s.pgrp) && s.state !== 'Z' && s.state !== 'X').map((s) => s.pid);
  return [...new Set([...alive, ...inGroups])];
}

afterEach(async () => {
  for (const sampler of samplers) sampler.stop();
  samplers.clear();
  for (const group of groups) {
    try { process.kill(-group, 'SIGKILL'); } catch { /* already gone */ }
  }
  for (const pid of pids) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  try {
    await waitFor(() => {
      const left = leftovers();
      if (left.length) throw new Error(`still alive: ${left.join(', ')}`);
      return true;
    }, { timeoutMs: 5_000, what: 'every process of the test to be gone' });
  } finally {
    groups.clear();
    pids.clear();
    for (const { manager, db } of opened.splice(0)) {
      await manager.close();
      db.close();
    }
  }
});

export function trackGroup(pgid: number): void {
  groups.add(pgid);
  trackPid(pgid, { group: true });
}

export function shellWords(words: string[]): string {
  return words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ');
}

export function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

export interface Ticker {
  record: ProcessRecord;
  stopFile: string;
  /** Creates the stop file: the ticker prints "done <n>" and exits with its code. */
  stop: () => void;
}

export interface Bystander {
  pid: number;
  startTicks: number;
  /** Where it appends every catchable signal it receives. */
  signalFile: string;
}

/**
 * A home for recovery tests: a fresh CHORUS_HOME, a test-side connection to its store, and a non-supervising
 * ProcessManager (a client, like the CLI) that writes rows a supervisor process picks up.
 */
export class RecoveryHome {
  readonly home = makeTempHome('chorus-recovery-');
  readonly db = openDatabase(join(this.home, 'chorus.db'));
  readonly repo = new ProcessRepo(this.db);
  readonly supervisors = new SupervisorRepo(this.db);
  readonly client = new ProcessManager({ home: this.home, db: this.db, log: silentLogger(), loadOwner: agentOwnerLoader(this.home) });

  constructor() {
    opened.push({ manager: this.client, db: this.db });
  }

  row(id: number): ProcessRecord {
    const record = this.repo.get(id);
    if (!record) throw new Error(`no row #${id}`);
    return record;
  }

  tickerArgs(name: string, code: number, intervalMs: number): { stopFile: string; words: string[] } {
    // In the agent's workspace: a confined ticker sees nothing else of the home.
    const stopFile = join(this.home, 'agents', AGENT, 'workspace', `stop-${name}`);
    return { stopFile, words: [process.execPath, TICKER, stopFile, String(code), String(intervalMs)] };
  }

  /** A ticker started through the in-test client manager. */
  async spawnTicker(name: string, options: { code?: number; intervalMs?: number } = {}): Promise<Ticker> {
    const { stopFile, words } = this.tickerArgs(name, options.code ?? 0, options.intervalMs ?? 100);
    const record = await this.client.spawn({ agent: AGENT, name, command: shellWords(words) });
    trackGroup(record.pid!);
    return { record, stopFile, stop: () => writeFileSync(stopFile, '') };
  }

  /** A ticker started with `chorus spawn --json`, as an operator would. */
  async cliSpawnTicker(name: string, options: { code?: number; intervalMs?: number } = {}): Promise<Ticker> {
    const { stopFile, words } = this.tickerArgs(name, options.code ?? 0, options.intervalMs ?? 100);
    const result = await runCli(this.home, ['spawn', '--agent', AGENT, '--name', name, '--json', '--', ...words]);
    if (result.code !== 0) throw new Error(`chorus spawn failed (${result.code}): ${result.stderr}`);
    const json = parseJson<{ id: number; pid: number }>(result);
    trackGroup(json.pid);
    return { record: this.row(json.id), stopFile, stop: () => writeFileSync(stopFile, '') };
  }

  /** An unrelated live process, its own group leader, started by the test and never by Chorus. */
  async startBystander(): Promise<Bystander> {
    const signalFile = join(this.home, `signals-${Date.now()}-${Math.random().toString(36).slice(2)}`);
    const child = spawn(process.execPath, [SLEEPER, signalFile], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    const pid = child.pid!;
    trackGroup(pid);
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { out += chunk; });
    await waitFor(() => out.includes(`ready ${pid}`), { timeoutMs: 5_000, what: 'the bystander to be up' });
    child.stdout!.destroy();
    child.unref();
    const stat = readStat(pid);
    if (!stat) throw new Error(`bystander ${pid} vanished`);
    return { pid, startTicks: stat.startTicks, signalFile };
  }

  /** Waits until the stored stdout offset of a row is at least `min` (the supervisor reads it and flushes). */
  waitForStdoutOffset(id: number, min: number, timeoutMs = 5_000): Promise<ProcessRecord> {
    return waitFor(() => {
      const record = this.row(id);
      return record.stdoutOffset >= min ? record : undefined;
    }, { timeoutMs, intervalMs: 25, what: `row #${id} to store a stdout offset of at least ${min}` });
  }

  /** Waits until a row has ended, and returns it. */
  waitForEnd(id: number, timeoutMs = 10_000): Promise<ProcessRecord> {
    return waitFor(() => {
      const record = this.row(id);
      return record.status !== 'running' && record.status !== 'starting' ? record : undefined;
    }, { timeoutMs, intervalMs: 25, what: `row #${id} to end` });
  }
}

/** Samples stored offsets of rows every few ms, so a test can check that they never go backwards. */
export class OffsetSampler {
  readonly samples = new Map<number, Array<{ stdout: number; stderr: number }>>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly home: RecoveryHome, ids: number[]) {
    for (const id of ids) this.samples.set(id, []);
    this.timer = setInterval(() => this.sample(), 20);
    samplers.add(this);
  }

  sample(): void {
    for (const [id, list] of this.samples) {
      const record = this.home.repo.get(id);
      if (record) list.push({ stdout: record.stdoutOffset + record.stdoutRotated, stderr: record.stderrOffset + record.stderrRotated });
    }
  }

  stop(): void {
    clearInterval(this.timer);
    if (samplers.delete(this)) this.sample();
  }

  /** Pairs of consecutive samples where an offset went down; empty when all is well. */
  regressions(id: number): string[] {
    const list = this.samples.get(id) ?? [];
    const found: string[] = [];
    for (let i = 1; i < list.length; i++) {
      const [a, b] = [list[i - 1]!, list[i]!];
      if (b.stdout < a.stdout || b.stderr < a.stderr) found.push(`#${id} sample ${i}: ${JSON.stringify(a)} -> ${JSON.stringify(b)}`);
    }
    return found;
  }
}

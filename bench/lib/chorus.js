// What every case needs from the compiled Chorus (dist/), plus clean-up that leaves nothing running.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
// CHORUS_BENCH_DIST points at another build's dist/src, to compare two versions side by side.
export const DIST = process.env.CHORUS_BENCH_DIST ?? join(ROOT, 'dist', 'src');
export const FIXTURES = join(ROOT, 'bench', 'fixtures');

if (!existsSync(join(DIST, 'process', 'process-manager.js'))) {
  process.stderr.write('bench: dist/ is missing; run `npm run build` first (npm run bench does)\n');
  process.exit(1);
}

const { openDatabase } = await import(join(DIST, 'store', 'database.js'));
const { ProcessManager } = await import(join(DIST, 'process', 'process-manager.js'));
const { HookEngine } = await import(join(DIST, 'hooks', 'hook-engine.js'));
const { silentLogger } = await import(join(DIST, 'logger.js'));
const { parseReadySpec } = await import(join(DIST, 'process', 'supervision-spec.js'));
const { defaultAgentConfig, agentConfigPath, agentOwnerLoader } = await import(join(DIST, 'agents', 'agent-config.js'));
export { openDatabase, ProcessManager, HookEngine, silentLogger };
/** A `ready` spec as a tool call sends it, validated and with its defaults, as the row stores it. */
export const readySpec = (input) => parseReadySpec(input);

const homes = [];
const groups = new Set();

/**
 * Where run.js keeps the cases' homes until the whole run ends (CHORUS_BENCH_KEEP): removing thousands of files just
 * before the next case would charge that case for it. On ext4 without a journal (this VM's disk) the kernel skips
 * the inodes deleted in the last minute or so each time it allocates one (recently_deleted), which made a run
 * directory and its two logs cost about 2 ms of CPU instead of 0.15 right after another case's clean-up.
 */
const KEEP = process.env.CHORUS_BENCH_KEEP;

/** A fresh CHORUS_HOME under the temp directory, removed when the case ends (or with the run, under run.js). */
export function makeHome(prefix = 'chorus-bench-') {
  const home = realpathSync(mkdtempSync(join(KEEP ?? tmpdir(), prefix)));
  if (!KEEP) homes.push(home);
  return home;
}

/** The bench agent: the default config with room for 1,000 processes, also written as agent.json for other processes. */
export function benchAgent(home, name = 'bench') {
  const agent = { ...defaultAgentConfig(home, name), maxProcesses: 1000 };
  mkdirSync(dirname(agentConfigPath(home, name)), { recursive: true });
  writeFileSync(agentConfigPath(home, name), JSON.stringify({ max_processes: 1000 }));
  return agent;
}

/**
 * Counts the processes a `chorus supervise` says it adopted, from its stderr (pino lines, one `processes adopted` line
 * with a count a look): feed it every chunk; `count` is the total so far. Lines split between chunks are joined.
 */
export function adoptionCounter() {
  let partial = '';
  const counter = {
    count: 0,
    feed(chunk) {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop();
      for (const line of lines) {
        if (!line.includes('"processes adopted"')) continue;
        counter.count += Number(/"count":(\d+)/.exec(line)?.[1] ?? 0);
      }
    },
  };
  return counter;
}

export function node(script, ...args) {
  return [process.execPath, join(FIXTURES, script), ...args].map((w) => JSON.stringify(String(w))).join(' ');
}

/** Remembers a process group so it is SIGKILLed when the case ends, whatever happens. */
export function trackGroup(pgid) {
  if (Number.isInteger(pgid) && pgid > 1) groups.add(pgid);
}

/** Forgets a group that has ended (stopped by the case itself), so no signal goes to its number once it is reused. */
export function untrackGroup(pgid) {
  groups.delete(pgid);
}

export function killTracked() {
  for (const pgid of groups) {
    try { process.kill(-pgid, 'SIGKILL'); } catch { /* gone */ }
  }
  groups.clear();
}

export function removeHomes() {
  for (const home of homes.splice(0)) rmSync(home, { recursive: true, force: true });
}

process.on('exit', () => {
  killTracked();
  removeHomes();
});
// A case stopped by a signal (a timeout, Ctrl-C) cleans up as well: the exit handler above runs on process.exit.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.once(signal, () => process.exit(128 + 2));

/** A supervising manager (and hook engine) in this process, as the bot runs it. */
export async function startSupervisor({ home, port, cooldownMs, logCapBytes, withHooks = true, ownsProcesses = true, sandbox } = {}) {
  const db = openDatabase(join(home, 'chorus.db'));
  const manager = new ProcessManager({
    home, db, log: silentLogger(), loadOwner: agentOwnerLoader(home), ...(logCapBytes ? { logCapBytes } : {}),
    // CHORUS_SANDBOX as the bot reads it (auto by default), unless the case asks for a mode.
    sandbox: { mode: sandbox ?? process.env.CHORUS_SANDBOX ?? 'auto' },
  });
  if (ownsProcesses) {
    manager.on('started', (p) => trackGroup(p.pgid));
    manager.on('adopted', (p) => trackGroup(p.pgid));
  }
  const hooks = withHooks
    ? new HookEngine({ manager, port: port ?? new CountingPort(), log: silentLogger(), cooldownMs: cooldownMs ?? 5_000, notifyPerMinute: 1e9, maxConcurrentBranches: 1e9 })
    : null;
  if (hooks) await hooks.startSupervising();
  else await manager.startSupervising();
  return {
    db, manager, hooks,
    close: async () => {
      await hooks?.close();
      await manager.close();
      db.close();
    },
  };
}

/** A non-supervising manager: what the CLI is; `sandbox` as CHORUS_SANDBOX (the CLI reads it; auto by default). */
export function openClient(home, { sandbox } = {}) {
  const db = openDatabase(join(home, 'chorus.db'));
  const manager = new ProcessManager({
    home, db, log: silentLogger(), loadOwner: agentOwnerLoader(home), sandbox: { mode: sandbox ?? process.env.CHORUS_SANDBOX ?? 'auto' },
  });
  return { db, manager, close: async () => { await manager.close(); db.close(); } };
}

/** A HookPort that only counts, and calls `onAction(kind, context, atMs)` when given. */
export class CountingPort {
  constructor(onAction) {
    this.onAction = onAction;
    this.count = 0;
  }
  record(kind, context) {
    this.count += 1;
    this.onAction?.(kind, context, performance.timeOrigin + performance.now());
  }
  async injectContext(context) { this.record('inject_context', context); return true; }
  async spawnBranch(context) { this.record('spawn_branch', context); return { branchId: `b-${context.firingId}`, finished: Promise.resolve() }; }
  async stopBranch(context) { this.record('stop_branch', context); }
  async notifyChannel(context) { this.record('notify_channel', context); }
}

/** Resolves when `manager` reports the end of process `id`. */
export function endOf(manager, id, timeoutMs = 120_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`process #${id} did not end within ${timeoutMs} ms`)); }, timeoutMs);
    const on = (p) => { if (p.id === id) { off(); resolve(p); } };
    const off = () => {
      clearTimeout(timer);
      for (const e of ['exited', 'killed', 'lost']) manager.off(e, on);
    };
    for (const e of ['exited', 'killed', 'lost']) manager.on(e, on);
  });
}

export async function waitUntil(check, { timeoutMs = 60_000, intervalMs = 10, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Processes in a group, from /proc (zombies excluded). */
export function groupMembers(pgid) {
  const out = [];
  for (const name of readdirSafe('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const text = readFileSync(`/proc/${name}/stat`, 'latin1');
      const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
      if (Number(f[2]) === pgid && f[0] !== 'Z') out.push(Number(name));
    } catch { /* gone */ }
  }
  return out;
}

function readdirSafe(dir) {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

export function isAlive(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return text[text.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

/** Resident memory of a process in MiB, from /proc/<pid>/status. */
export function rssMb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : null;
}

/** Proportional set size in KiB, from /proc/<pid>/smaps_rollup. */
export function pssKb(pid) {
  const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  return m ? Number(m[1]) : null;
}

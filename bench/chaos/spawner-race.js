// Chaos mode "CLI spawners racing a live supervisor" (issue 9): many `chorus spawn --json` and `chorus restart --json`
// run in parallel beside a running `chorus supervise`. Every answer must carry a pid and say `running`, and every
// process that runs must have a `running` row (else `ps` hides it, `kill` cannot reach it, its hooks never fire).
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DIST, ROOT } from '../lib/chorus.js';
import { liveRunProcesses } from './live-runs.js';

const { openDatabase } = await import(join(DIST, 'store', 'database.js'));
const { ProcessRepo } = await import(join(DIST, 'store', 'process-repo.js'));

const AGENT = 'race';
const BIN = join(ROOT, 'bin', 'chorus.js');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function runCli(env, home, args) {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: home, env, timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

/** Live processes that carry this home's run marker, by run directory. */
function liveRuns(home) {
  return new Map(liveRunProcesses(home).map((p) => [p.runDir, p.pid]));
}

/**
 * Runs `operations` CLI spawns and restarts, `parallel` at a time, under one live supervisor; returns the invariants
 * (all must be 0) and counts. `random` is the seeded generator of the chaos run.
 */
export async function raceSpawners({ operations, parallel, random, say }) {
  const home = realpathSync(mkdtempSync(join(tmpdir(), 'chorus-race-')));
  mkdirSync(join(home, 'agents', AGENT), { recursive: true });
  writeFileSync(join(home, 'agents', AGENT, 'agent.json'), JSON.stringify({ max_processes: operations + 10 }));
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, CHORUS_HOME: home, LOG_LEVEL: 'warn', CHORUS_KILL_GRACE_MS: '1000' };
  const supervisor = spawn(process.execPath, [BIN, 'supervise'], { cwd: home, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(supervisor, 'exit');
  let out = '';
  let err = '';
  supervisor.stdout.on('data', (d) => { out += d; });
  supervisor.stderr.on('data', (d) => { err += d; });
  const deadline = Date.now() + 30_000;
  while (!/supervising/.test(out)) {
    if (supervisor.exitCode !== null || Date.now() > deadline) throw new Error(`chorus supervise did not start: ${err}`);
    await sleep(20);
  }

  const inv = { answers_without_pid: 0, answers_not_running: 0, cli_failures: 0, processes_running_untracked: 0 };
  const counts = { spawns: 0, restarts: 0 };
  const examples = [];
  const answered = [];
  let next = 0;
  const started = Date.now();
  const worker = async () => {
    while (next < operations) {
      const index = next++;
      const victim = answered.length && random() < 0.25 ? answered.splice(Math.floor(random() * answered.length), 1)[0] : undefined;
      const args = victim
        ? ['restart', '--json', String(victim)]
        : ['spawn', '--json', '--agent', AGENT, '--name', `race-${index}`, '--', `exec sleep 600`];
      if (victim) counts.restarts += 1;
      else counts.spawns += 1;
      const result = await runCli(env, home, args);
      if (result.code !== 0) {
        inv.cli_failures += 1;
        examples.push(`chorus ${args[0]} exited ${result.code}: ${result.stderr.trim()}`);
        continue;
      }
      const row = JSON.parse(result.stdout);
      if (typeof row.pid !== 'number') {
        inv.answers_without_pid += 1;
        examples.push(`chorus ${args[0]} answered pid ${row.pid} (#${row.id}, ${row.status})`);
      } else answered.push(row.pid);
      if (row.status !== 'running') {
        inv.answers_not_running += 1;
        examples.push(`chorus ${args[0]} answered #${row.id} ${row.status}`);
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  // The overwrite this mode guards against came a poll or two after the answer: give the supervisor time to make it.
  await sleep(2_000);

  const live = liveRuns(home);
  const db = openDatabase(join(home, 'chorus.db'));
  try {
    const repo = new ProcessRepo(db);
    const byRunDir = new Map([...repo.list({ status: 'all', limit: 1_000_000 }), ...repo.listActive()].map((r) => [r.runDir, r]));
    for (const [runDir, pid] of live) {
      const row = byRunDir.get(runDir);
      if (row?.status !== 'running') {
        inv.processes_running_untracked += 1;
        examples.push(`pid ${pid} (${runDir}) runs, its row is ${row ? `#${row.id} ${row.status}` : 'missing'}`);
      }
    }
  } finally {
    db.close();
  }
  say(`spawner race: ${counts.spawns} spawns and ${counts.restarts} restarts, ${parallel} at a time, beside a live supervisor in ${Math.round((Date.now() - started) / 1000)} s; ${live.size} processes running`);

  supervisor.kill('SIGTERM');
  await exited;
  for (const pid of liveRuns(home).values()) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
  rmSync(home, { recursive: true, force: true });
  return { invariants: inv, counts, examples };
}

// `npm run test:chaos [-- --rounds N] [-- --seed S] [-- --keep]`: rounds of start a supervisor (its own OS process),
// let it spawn a mix of processes with hooks while CLI spawners run beside it, SIGKILL it at a random moment (often
// right inside a spawn) and the spawners too; then one last supervisor settles everything and the invariants of
// issue 6 are counted and asserted. 20 rounds by default, 5 when CI is set. Then the mode "CLI spawners racing a live
// supervisor" (issue 9, bench/chaos/spawner-race.js): `--race-spawns N` (500 by default, 150 when CI is set; 0 skips it)
// spawns and restarts, `--race-parallel P` (16) at a time. Exits 1 when an invariant does not hold.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DIST, ROOT } from './lib/chorus.js';
import { liveRunProcesses } from './chaos/live-runs.js';
import { raceSpawners } from './chaos/spawner-race.js';
import { commandFor, EXPECTED_EXIT, expectedStderr, expectedStdout, parseName, pickWork, seeded } from './chaos/workload.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string' }, seed: { type: 'string' }, keep: { type: 'boolean' }, 'log-cap': { type: 'string' },
    'race-spawns': { type: 'string' }, 'race-parallel': { type: 'string' },
  },
});
const rounds = Number(values.rounds ?? (process.env.CI ? 5 : 20));
const seed = Number(values.seed ?? Date.now() % 1_000_000);
const random = seeded(seed);
const { openDatabase } = await import(join(DIST, 'store', 'database.js'));
const { ProcessRepo } = await import(join(DIST, 'store', 'process-repo.js'));
const { HookRepo } = await import(join(DIST, 'store', 'hook-repo.js'));

const home = realpathSync(mkdtempSync(join(tmpdir(), 'chorus-chaos-')));
const AGENT = 'chaos';
// In the agent's workspace: the one place a confined child can write (CHORUS_HOME is hidden from it).
const ledger = join(home, 'agents', AGENT, 'workspace', 'ledger.txt');
mkdirSync(join(home, 'agents', AGENT, 'workspace'), { recursive: true });
writeFileSync(join(home, 'agents', AGENT, 'agent.json'), JSON.stringify({ max_processes: 1000 }));
writeFileSync(ledger, '');
const env = {
  ...process.env, CHORUS_HOME: home, CHAOS_LEDGER: ledger, LOG_LEVEL: 'warn',
  // A small cap, so chatty children are rotated while supervisors die around them.
  CHORUS_LOG_CAP: values['log-cap'] ?? '256K', CHORUS_KILL_GRACE_MS: '1000',
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const started = Date.now();
const say = (text) => process.stdout.write(`chaos: ${text}\n`);
say(`home ${home}, seed ${seed}, ${rounds} rounds (replay: --seed ${seed} --rounds ${rounds})`);

function startSupervisor(mode, round) {
  const child = spawn(process.execPath, [join(ROOT, 'bench', 'chaos', 'supervisor.js'), mode, String(seed + round)], {
    env, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logFile = createWriteStream(join(home, `supervisor-${String(round).padStart(2, '0')}-${mode}.log`));
  child.stderr.pipe(logFile);
  const state = { child, ready: false, spawns: 0, settled: false, exited: once(child, 'exit') };
  let buffered = '';
  child.stdout.on('data', (d) => {
    buffered += d;
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line === 'ready') state.ready = true;
      else if (line === 'spawn') {
        state.spawns += 1;
        state.onSpawn?.(state.spawns);
      } else if (line === 'settled') state.settled = true;
    }
  });
  return state;
}

async function waitReady(state, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!state.ready) {
    if (state.child.exitCode !== null) throw new Error(`the supervisor exited with ${state.child.exitCode} before it was ready (see ${home}/supervisor-*.log)`);
    if (Date.now() > deadline) throw new Error('the supervisor was not ready in time');
    await sleep(5);
  }
}

/** A CLI spawn, SIGKILLed at a random moment (often while node starts, sometimes inside the spawn, sometimes never). */
function cliSpawner() {
  const work = pickWork(random, ledger);
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'chorus.js'), 'spawn', '--agent', AGENT, '--name', work.name, '--', commandFor(work.name, ledger)], {
    env, stdio: 'ignore',
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 80 + random() * 700);
  child.once('exit', () => clearTimeout(timer));
  return child;
}

let midSpawnKills = 0;
let spawnsCutShort = 0;

function countStarting() {
  const db = openDatabase(join(home, 'chorus.db'));
  try {
    return new ProcessRepo(db).listActive().filter((r) => r.status === 'starting').length;
  } finally {
    db.close();
  }
}
for (let round = 1; round <= rounds; round += 1) {
  const supervisor = startSupervisor('churn', round);
  const spawners = [];
  await waitReady(supervisor);
  // Half the rounds kill the supervisor the moment it announces its k-th spawn, i.e. inside that spawn.
  const killOnSpawn = random() < 0.5 ? 1 + Math.floor(random() * 12) : 0;
  const killAt = Date.now() + 300 + random() * 2_500;
  const killed = new Promise((resolve) => {
    supervisor.onSpawn = (n) => {
      if (killOnSpawn && n === killOnSpawn) {
        // 0-6 ms after the row's insert: before its commit, between commit and `running`, or just after.
        setTimeout(() => {
          supervisor.child.kill('SIGKILL');
          resolve();
        }, random() * 6);
        midSpawnKills += 1;
      }
    };
    const tick = setInterval(() => {
      if (Date.now() >= killAt + (killOnSpawn ? 3_000 : 0)) {
        supervisor.child.kill('SIGKILL');
        clearInterval(tick);
        resolve();
      }
    }, 5);
    supervisor.exited.then(() => clearInterval(tick));
  });
  const spawnerCount = Math.floor(random() * 4);
  for (let i = 0; i < spawnerCount; i += 1) {
    await sleep(random() * 300);
    spawners.push(cliSpawner());
  }
  await killed;
  const [code, signal] = await supervisor.exited;
  for (const s of spawners) if (s.exitCode === null) s.kill('SIGKILL');
  await Promise.all(spawners.map((s) => (s.exitCode === null && s.signalCode === null ? once(s, 'exit') : null)));
  if (signal !== 'SIGKILL') throw new Error(`round ${round}: the supervisor ended by itself (${code ?? signal}); see ${home}/supervisor-*.log`);
  // Rows still `starting` now are spawns that a SIGKILL cut short; the next supervisor must settle or adopt them.
  const cutShort = countStarting();
  spawnsCutShort += cutShort;
  say(`round ${round}: supervisor killed after ${supervisor.spawns} spawns${killOnSpawn ? ` (on spawn #${killOnSpawn})` : ''}, ${spawnerCount} CLI spawners, ${cutShort} spawns cut short`);
}

// Before the last supervisor: every live process of this home must belong to a row that is still active.
const untrackedBefore = liveRunProcesses(home).filter((p) => !isActiveRow(p.runDir)).length;

const settle = startSupervisor('settle', rounds + 1);
await waitReady(settle);
const settleDeadline = Date.now() + 90_000;
while (!settle.settled && settle.child.exitCode === null && Date.now() < settleDeadline) await sleep(100);
if (!settle.settled) {
  settle.child.kill('SIGKILL');
  say('the last supervisor did not settle within 90 s');
}
await settle.exited;

const report = check();
const leftovers = liveRunProcesses(home);
for (const p of leftovers) {
  try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
}
report.invariants.processes_left_running_untracked = untrackedBefore + leftovers.length;

const raceSpawns = Number(values['race-spawns'] ?? (process.env.CI ? 150 : 500));
if (raceSpawns > 0) {
  const race = await raceSpawners({ operations: raceSpawns, parallel: Number(values['race-parallel'] ?? 16), random, say });
  for (const [key, value] of Object.entries(race.invariants)) report.invariants[`spawner_race_${key}`] = value;
  report.examples.push(...race.examples);
}

const failed = Object.entries(report.invariants).filter(([, v]) => v !== 0);
say(`${report.counts.processes_started} processes started (${report.counts.rows} rows; ${midSpawnKills} supervisor kills timed on a spawn; ${spawnsCutShort} spawns cut short and recovered), ${report.counts.hook_firings} hook firings, ${Math.round((Date.now() - started) / 1000)} s`);
for (const [key, value] of Object.entries(report.invariants)) say(`${value === 0 ? 'ok  ' : 'FAIL'} ${key}: ${value}`);
for (const [key, value] of Object.entries(report.counts)) if (!['processes_started', 'rows', 'hook_firings'].includes(key)) say(`     ${key}: ${value}`);
for (const example of report.examples.slice(0, 15)) say(`  example: ${example}`);
if (failed.length || values.keep) say(`kept ${home} for inspection (seed ${seed})`);
else rmSync(home, { recursive: true, force: true });
process.exitCode = failed.length ? 1 : 0;

function readLedger() {
  const out = new Map();
  for (const line of readFileSync(ledger, 'utf8').split('\n')) {
    const [id, runDir] = line.split(' ');
    if (id) out.set(Number(id), runDir);
  }
  return out;
}


function isActiveRow(runDir) {
  const db = openDatabase(join(home, 'chorus.db'));
  try {
    const row = new ProcessRepo(db).listActive().find((r) => r.runDir === runDir);
    return row !== undefined;
  } finally {
    db.close();
  }
}

function readOr(path) {
  return existsSync(path) ? readFileSync(path) : Buffer.alloc(0);
}

/**
 * Bytes the child wrote that its logs lost. Every line a child writes is unique, so the logs are compared line by line
 * from the first line they still hold (rotation drops older ones by design) to where the child stopped (the end for an
 * exited child, the last line held for a stopped one); `foreign` are bytes that the child never wrote.
 */
function lostBytes(kept, written, isComplete) {
  const wanted = written.toString('latin1').split('\n').slice(0, -1);
  const held = kept.toString('latin1').split('\n');
  const tail = held.pop();
  const index = new Map(wanted.map((line, i) => [line, i]));
  let first = held.findIndex((line) => index.has(line));
  if (first < 0 && !held.length) first = 0;
  const from = first < 0 ? 0 : (index.get(held[first]) ?? 0);
  const lastHeld = held.reduce((max, line) => Math.max(max, index.get(line) ?? -1), -1);
  const to = isComplete ? wanted.length - 1 : lastHeld;
  const present = new Set(held);
  let lost = 0;
  let firstLost = null;
  for (let i = from; i <= to; i += 1) {
    if (present.has(wanted[i])) continue;
    lost += wanted[i].length + 1;
    firstLost ??= wanted[i];
  }
  const foreign = held.slice(Math.max(first, 0)).filter((line) => !index.has(line)).reduce((n, line) => n + line.length + 1, 0) + (tail ? tail.length : 0);
  return { lost, foreign, firstLost };
}

function check() {
  const db = openDatabase(join(home, 'chorus.db'));
  const processes = new ProcessRepo(db);
  const hookRepo = new HookRepo(db);
  const rows = [...processes.list({ status: 'all', limit: 1_000_000 }), ...processes.listActive().filter((r) => r.status === 'starting')];
  const byId = new Map(rows.map((r) => [r.id, r]));
  const ran = readLedger();
  const journal = new Map();
  const journalPath = join(home, 'hook-journal.jsonl');
  if (existsSync(journalPath)) {
    for (const line of readFileSync(journalPath, 'utf8').split('\n')) {
      if (!line) continue;
      const entry = JSON.parse(line);
      journal.set(entry.firingId, (journal.get(entry.firingId) ?? 0) + 1);
    }
  }
  const inv = {
    processes_without_a_row: 0,
    ended_without_real_exit_code: 0,
    rows_not_ended_after_settling: 0,
    hook_firings_missing: 0,
    hook_firings_repeated: 0,
    log_bytes_lost: 0,
  };
  const counts = {
    processes_started: ran.size, rows: rows.length, hook_firings: 0, lost_never_started: 0,
    killed: 0, exited: 0, failed_hook_actions: 0, rotated_logs: 0, unread_log_bytes: 0, output_hooks_unverifiable_after_log_loss: 0,
    offset_drift_processes: 0,
  };
  const examples = [];

  for (const [id, runDir] of ran) {
    const row = byId.get(id);
    if (!row || row.runDir !== runDir) {
      inv.processes_without_a_row += 1;
      examples.push(`process #${id} (${runDir}) ran but has ${row ? `another run dir (${row.runDir})` : 'no row'}`);
    }
  }
  for (const row of rows) {
    const [kind] = parseName(row.name);
    if (row.status === 'starting' || row.status === 'running') {
      inv.rows_not_ended_after_settling += 1;
      examples.push(`#${row.id} ${row.name} is still ${row.status}`);
      continue;
    }
    if (row.status === 'exited') counts.exited += 1;
    if (row.status === 'killed') counts.killed += 1;
    if (row.status === 'lost') {
      if (ran.has(row.id)) {
        inv.ended_without_real_exit_code += 1;
        examples.push(`#${row.id} ${row.name} ran but is lost: ${row.lostReason}`);
      } else counts.lost_never_started += 1;
    } else if (row.status === 'exited' && row.exitCode !== EXPECTED_EXIT[kind]) {
      inv.ended_without_real_exit_code += 1;
      examples.push(`#${row.id} ${row.name} exited with ${row.exitCode}, its real code is ${EXPECTED_EXIT[kind]}`);
    }

    // Logs, byte for byte: `.1` (if any) then the current file, from the logical position they begin at.
    // What the child wrote up to where its logs end: rotation may have dropped the oldest part of the file, by design.
    let written = Buffer.alloc(0);
    let logIsExact = true;
    if (ran.has(row.id)) {
      const rotatedFile = readOr(`${row.stdoutLog}.1`);
      const current = readOr(row.stdoutLog);
      const stdout = Buffer.concat([rotatedFile, current]);
      if (rotatedFile.length) counts.rotated_logs += 1;
      const start = Math.max(0, row.stdoutRotated - rotatedFile.length);
      const isComplete = row.status === 'exited';
      let stderr = readOr(row.stderrLog);
      // bash reports a job that a signal ended ("Terminated"): the child's own output, not Chorus's.
      if (row.status === 'killed') stderr = Buffer.from(stderr.toString('latin1').replace(/(?:^|\n)(?:Terminated|Killed)\n$/, (m) => (m.startsWith('\n') ? '\n' : '')), 'latin1');
      let isExact = true;
      for (const [actual, expected, label] of [[stdout, expectedStdout(row.name), 'stdout'], [stderr, expectedStderr(row.name), 'stderr']]) {
        const { lost, foreign, firstLost } = lostBytes(actual, expected, isComplete);
        if (lost || foreign) {
          isExact = false;
          inv.log_bytes_lost += lost + foreign;
          examples.push(`#${row.id} ${row.name} ${row.status} ${label}: ${lost} bytes lost (first: "${firstLost}"), ${foreign} foreign; rotated ${row.stdoutRotated}, .1 ${rotatedFile.length} bytes, current ${current.length}, wrote ${expected.length}`);
        }
      }
      // Lost before a later rotation dropped that part of the file: the stored logical end falls short of what was written.
      const drift = expectedStdout(row.name).length - (start + stdout.length);
      if (isExact && isComplete && drift !== 0) {
        isExact = false;
        counts.offset_drift_processes += 1;
        inv.log_bytes_lost += Math.abs(drift);
        examples.push(`#${row.id} ${row.name}: logical end ${start + stdout.length} but the child wrote ${expectedStdout(row.name).length} (${drift} bytes lost before the last rotation)`);
      }
      if (!isExact) counts.output_hooks_unverifiable_after_log_loss += 1;
      logIsExact = isExact;
      written = expectedStdout(row.name).subarray(0, start + stdout.length);
      counts.unread_log_bytes += Math.max(0, current.length - row.stdoutOffset);
      if (existsSync(`${row.stdoutLog}.1.tmp`)) examples.push(`#${row.id}: a ${row.stdoutLog}.1.tmp was left behind`);
    }

    // Hooks: what each must have fired, from the final status and the lines the logs hold.
    for (const hook of hookRepo.listForProcess(row.id)) {
      const spec = JSON.parse(hook.specJson);
      const firings = hookRepo.firingsForHook(hook.id);
      counts.hook_firings += firings.filter((f) => f.status !== 'refused').length;
      for (const f of firings) {
        if (f.status === 'failed') counts.failed_hook_actions += 1;
        if (f.status === 'gathering' || f.status === 'pending') {
          inv.hook_firings_missing += 1;
          examples.push(`#${row.id} hook ${hook.id} firing ${f.id} is still ${f.status}`);
        }
        if (f.status === 'done' && ['spawn_branch', 'inject_context', 'stop_branch'].includes(spec.action)) {
          const delivered = journal.get(f.id) ?? 0;
          if (delivered === 0) { inv.hook_firings_missing += 1; examples.push(`firing ${f.id} (#${row.id} ${spec.action}) is done but not in the journal`); }
          if (delivered > 1) { inv.hook_firings_repeated += delivered - 1; examples.push(`firing ${f.id} (#${row.id} ${spec.action}) is in the journal ${delivered} times`); }
        }
      }
      const fired = firings.filter((f) => f.status !== 'refused');
      const t = spec.trigger;
      let expected = null;
      if (t.type === 'on_exit') {
        const isSuccess = row.status === 'exited' && row.exitCode === 0;
        const ended = row.status === 'exited' || row.status === 'lost';
        expected = ended && (t.exit_filter === 'any' || (t.exit_filter === 'success') === isSuccess) ? 1 : 0;
      } else if (t.type === 'on_timeout') {
        // Only slow children have one (1 s); they run 5 s and more, and only ever end by themselves.
        expected = row.status === 'exited' ? 1 : row.status === 'lost' ? null : fired.length;
      }
      if (expected !== null) {
        const got = fired.length;
        if (got < expected) { inv.hook_firings_missing += expected - got; examples.push(`#${row.id} ${row.name} ${row.status}: ${t.type} fired ${got} times, expected ${expected}`); }
        if (got > expected) { inv.hook_firings_repeated += got - expected; examples.push(`#${row.id} ${row.name} ${row.status}: ${t.type} fired ${got} times, expected ${expected}`); }
      }
      if (t.type === 'on_output_match' && logIsExact) {
        const regex = new RegExp(t.pattern);
        const want = written.toString('utf8').split('\n').slice(0, -1).filter((l) => regex.test(l));
        const wanted = want.slice(0, spec.max_fires === 1 ? 1 : want.length);
        const got = fired.flatMap((f) => JSON.parse(f.payloadJson).matchedLines ?? []);
        const remaining = [...got];
        for (const line of wanted) {
          const at = remaining.indexOf(line);
          if (at >= 0) remaining.splice(at, 1);
          else { inv.hook_firings_missing += 1; examples.push(`#${row.id} ${row.name} ${row.status}: line "${line}" is in the log but in no firing of hook ${hook.id}`); }
        }
        if (remaining.length) { inv.hook_firings_repeated += remaining.length; examples.push(`#${row.id} ${row.name}: hook ${hook.id} delivered ${JSON.stringify(remaining.slice(0, 3))} more than once or from nowhere`); }
      }
    }
  }
  db.close();
  return { invariants: inv, counts, examples };
}

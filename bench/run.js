// `npm run bench [-- --json] [-- --only scan,kill] [-- --profile DIR] [-- --no-pm2] [-- --quick] [-- --strict]
// [-- --features]`: every figure of issues 6 and 14 beside its baseline, each case in its own process. Prints a table (or
// one JSON object; pm2's figure under the same key with `_pm2` appended); exits 1 when a case fails, and with --strict
// also when a target is missed. --features adds the second row of the fleet cases: the same fleet with the features
// of the open issues on (today: hooks on a third of it; see featureRequest in bench/cases/fleet.js), keys `*_features`.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from './lib/chorus.js';
import { ensurePm2, killPm2 } from './lib/pm2.js';
import { summarizeProfile } from './profile-summary.js';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean' },
    only: { type: 'string' },
    profile: { type: 'string' },
    'no-pm2': { type: 'boolean' },
    quick: { type: 'boolean' },
    strict: { type: 'boolean' },
    features: { type: 'boolean' },
  },
});

/** key, target, how it is checked; `null` targets are reported only. */
const ratioTo = (key, factor) => (v, all) => all[`${key}_pm2`] == null || v <= factor * all[`${key}_pm2`];
const belowPm2 = (key) => (v, all) => all[`${key}_pm2`] == null || v < all[`${key}_pm2`];
const TARGETS = [
  ['idle_cpu_pct_1000', '≤ 0.5, < pm2', (v, all) => v <= 0.5 && belowPm2('idle_cpu_pct_1000')(v, all)],
  ['idle_cpu_pct_1000_pm2', 'reported', null],
  ['idle_cpu_pct_200', '≤ 0.15', (v) => v <= 0.15],
  ['idle_cpu_pct_200_pm2', 'reported', null],
  ['rss_mb_1000', '≤ 100, < pm2', (v, all) => v <= 100 && belowPm2('rss_mb_1000')(v, all)],
  ['rss_mb_1000_pm2', 'reported', null],
  ['spawn_1000_s', '≤ 0.2 × pm2', ratioTo('spawn_1000_s', 0.2)],
  ['spawn_1000_s_pm2', 'reported', null],
  ['idle_cpu_pct_1000_features', 'reported (second row)', null],
  ['idle_cpu_pct_1000_features_pm2', 'reported', null],
  ['rss_mb_1000_features', 'reported (second row)', null],
  ['spawn_1000_features_s', 'reported (second row)', null],
  ['ingest_cpu_s_per_100mb', '≤ 0.5 × pm2', ratioTo('ingest_cpu_s_per_100mb', 0.5)],
  ['ingest_cpu_s_per_100mb_pm2', 'reported', null],
  ['scan_mb_s', '≥ 250', (v) => v >= 250],
  ['hook_latency_p50_ms', 'reported', null],
  ['hook_latency_p99_ms', '≤ 50', (v) => v <= 50],
  ['hook_latency_loaded_p50_ms', 'reported', null],
  ['hook_latency_loaded_p99_ms', '≤ 250', (v) => v <= 250],
  ['loop_lag_p99_ms', '≤ 30', (v) => v <= 30],
  ['spawn_p50_ms', '≤ 5', (v) => v <= 5],
  ['spawn_200_s', 'reported', null],
  ['spawn_200_s_pm2', 'reported', null],
  ['spawn_200_vs_pm2', '< 1', (v) => v < 1],
  ['spawn_200_vs_bare', 'reported', null],
  ['rss_mb_200', '≤ 90, < pm2', (v, all) => v <= 90 && (all.rss_mb_200_pm2 == null || v < all.rss_mb_200_pm2)],
  ['rss_mb_200_pm2', 'reported', null],
  ['shim_pss_kb', '≤ 600', (v) => v <= 600],
  ['recover_10k_ms', '≤ 1000', (v) => v <= 1000],
  ['kill_tree_ms', '≤ 500', (v) => v <= 500],
];

const quick = values.quick ?? false;
/** name → the module in bench/cases (default: the name), its options, and whether pm2 runs beside it. */
const CASES = {
  idle200: { module: 'fleet', size: 200, idleSeconds: quick ? 10 : 30, usesPm2: true, figures: ['idle'] },
  idle1000: { module: 'fleet', size: 1000, idleSeconds: quick ? 10 : 30, usesPm2: true, startRuns: quick ? 1 : 3 },
  ...(values.features ? { idle1000_features: { module: 'fleet', size: 1000, idleSeconds: quick ? 10 : 30, usesPm2: true, features: true } } : {}),
  ingest: { runs: quick ? 2 : 5, usesPm2: true },
  scan: { runs: quick ? 2 : 5 },
  latency: { runs: quick ? 1 : 3 },
  spawn: { runs: quick ? 1 : 3, usesPm2: true },
  rss: {},
  recover: { runs: quick ? 2 : 5 },
  kill: { runs: quick ? 3 : 7 },
};

function runCase(name, module, options, env) {
  const args = [];
  if (values.profile) args.push('--cpu-prof', `--cpu-prof-dir=${join(values.profile, name)}`, `--cpu-prof-name=${name}.cpuprofile`);
  args.push(join(ROOT, 'bench', 'case.js'), module, JSON.stringify(options));
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('@@result '));
      const seconds = (Date.now() - started) / 1000;
      if (code !== 0 || !line) resolve({ error: `case ${name} failed (exit ${code})`, seconds });
      else resolve({ ...JSON.parse(line.slice('@@result '.length)), seconds });
    });
  });
}

function machine() {
  const cpu = cpus();
  let kernel = '';
  try { kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(); } catch { /* not Linux */ }
  let load = '';
  try { load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '); } catch { /* not Linux */ }
  return { cpus: cpu.length, cpu_model: cpu[0]?.model ?? '?', memory_gib: Math.round(totalmem() / 1024 ** 3), node: process.version, kernel, load_at_start: load, tmpdir: tmpdir() };
}

const selected = values.only ? values.only.split(',').map((s) => s.trim()) : Object.keys(CASES);
for (const name of selected) if (!CASES[name]) throw new Error(`unknown case ${name}; cases: ${Object.keys(CASES).join(', ')}`);

const notes = [];
let pm2Home = null;
let withPm2 = !values['no-pm2'] && selected.some((n) => CASES[n].usesPm2);
if (withPm2) {
  const why = ensurePm2();
  if (why) {
    withPm2 = false;
    notes.push(`${why}; the pm2 keys are null`);
  } else pm2Home = mkdtempSync(join(tmpdir(), 'chorus-bench-pm2-'));
} else if (values['no-pm2']) notes.push('pm2 left out (--no-pm2); its keys are null');

// The cases' homes stay until the run ends (see makeHome in bench/lib/chorus.js): one case's clean-up must not weigh
// on the next one's spawns.
const keep = mkdtempSync(join(tmpdir(), 'chorus-bench-homes-'));
// A run stopped by a signal cleans up as well (each case, in its own process, kills what it started).
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    if (pm2Home) killPm2(pm2Home);
    for (const dir of [pm2Home, keep]) if (dir) rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  });
}
const env = { ...process.env, CHORUS_BENCH_KEEP: keep, ...(pm2Home ? { PM2_HOME: pm2Home } : {}) };
const result = { machine: machine() };
const details = {};
const seconds = {};
try {
  for (const name of selected) {
    if (!values.json) process.stderr.write(`bench: ${name}…\n`);
    const { module = name, usesPm2, ...options } = CASES[name];
    const outcome = await runCase(name, module, { ...options, ...(usesPm2 ? { withPm2 } : {}) }, env);
    seconds[name] = Math.round(outcome.seconds);
    if (outcome.error) {
      notes.push(outcome.error);
      continue;
    }
    Object.assign(result, outcome.keys);
    Object.assign(details, outcome.details);
  }
} finally {
  if (pm2Home) {
    killPm2(pm2Home);
    rmSync(pm2Home, { recursive: true, force: true });
  }
  rmSync(keep, { recursive: true, force: true });
}

const failed = [];
for (const [key, , check] of TARGETS) {
  if (!(key in result)) continue;
  if (check && result[key] !== null && !check(result[key], result)) failed.push(key);
}
const output = { ...result, details, missed_targets: failed, notes, case_seconds: seconds };

if (values.json) {
  process.stdout.write(`${JSON.stringify(output, null, 2)}\n`);
} else {
  const rows = TARGETS.filter(([key]) => key in result).map(([key, target, check]) => {
    const value = result[key];
    const verdict = value === null ? 'n/a' : check ? (failed.includes(key) ? 'MISSED' : 'ok') : '';
    return [key, value === null ? 'null' : String(value), target, verdict];
  });
  const widths = [0, 1, 2, 3].map((i) => Math.max(...[['key', 'value', 'target', ''], ...rows].map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i === 1 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  const m = result.machine;
  const out = [
    `Chorus benchmark — ${m.cpus} × ${m.cpu_model}, ${m.memory_gib} GiB, Node ${m.node}, Linux ${m.kernel}, load ${m.load_at_start}`,
    '',
    line(['key', 'value', 'target', '']),
    ...rows.map(line),
    '',
    'details (baselines measured in the same run, spreads are min..max over the runs):',
    ...Object.entries(details).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`),
    ...notes.map((n) => `note: ${n}`),
    `case seconds: ${JSON.stringify(seconds)}`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}
if (values.profile) {
  for (const name of selected) {
    const dir = join(values.profile, name);
    let files = [];
    try { files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')); } catch { /* case failed early */ }
    for (const file of files) process.stderr.write(`\nprofile ${name} (self time):\n${summarizeProfile(join(dir, file), 15)}\n`);
  }
}
process.exitCode = (values.strict && failed.length) || notes.some((n) => n.includes('failed')) ? 1 : 0;

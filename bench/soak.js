// `npm run soak -- --minutes N` (not in CI): a supervisor (its own OS process) churns for N minutes: spawns with
// hooks, output, exits, stops, restarts, at most 40 processes at once. Its RSS and open file descriptors are sampled
// every second; after the first minute neither may grow by more than 10% (medians over 30 s windows, so one busy
// second is not a leak). Then everything is stopped and nothing may be left running.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from './lib/chorus.js';
import { median, round } from './lib/stats.js';

const { values } = parseArgs({ options: { minutes: { type: 'string' }, keep: { type: 'boolean' } } });
const minutes = Number(values.minutes ?? 10);
if (!(minutes >= 2)) throw new Error('--minutes must be at least 2: the first minute is warm-up and is not judged');
const WINDOW_S = 30;
const home = realpathSync(mkdtempSync(join(tmpdir(), 'chorus-soak-')));
mkdirSync(join(home, 'agents', 'chaos'), { recursive: true });
writeFileSync(join(home, 'agents', 'chaos', 'agent.json'), JSON.stringify({ max_processes: 1000 }));
const env = { ...process.env, CHORUS_HOME: home, CHAOS_LEDGER: '/dev/null', LOG_LEVEL: 'warn', CHORUS_LOG_CAP: '1M', CHORUS_KILL_GRACE_MS: '1000' };
const say = (text) => process.stdout.write(`soak: ${text}\n`);

function startSupervisor(mode) {
  const child = spawn(process.execPath, [join(ROOT, 'bench', 'chaos', 'supervisor.js'), mode, '4242'], {
    env, stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  return { child, output: () => out, exited: once(child, 'exit') };
}

const rssMb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
const fdCount = (pid) => readdirSync(`/proc/${pid}/fd`).length;

const soak = startSupervisor('soak');
const samples = [];
const endAt = Date.now() + minutes * 60_000;
say(`${minutes} min on ${home}; sampling supervisor pid ${soak.child.pid} every second`);
while (Date.now() < endAt && soak.child.exitCode === null) {
  await new Promise((r) => setTimeout(r, 1_000));
  try {
    samples.push({ at: samples.length + 1, rss: rssMb(soak.child.pid), fds: fdCount(soak.child.pid) });
  } catch { /* it exited: reported below */ }
  if (samples.length % 60 === 0) { const s = samples.at(-1); say(`${samples.length / 60} min: rss ${round(s.rss, 1)} MB, ${s.fds} fds`); }
}
if (soak.child.exitCode !== null) throw new Error(`the supervisor died during the soak (exit ${soak.child.exitCode})`);
soak.child.kill('SIGTERM');
await soak.exited;
const settle = startSupervisor('settle');
await settle.exited;

const windowMedian = (from, key) => median(samples.slice(from, from + WINDOW_S).map((s) => s[key]));
const judged = samples.slice(60);
const result = {};
for (const key of ['rss', 'fds']) {
  const baseline = windowMedian(60, key);
  let worst = baseline;
  for (let from = 60; from + WINDOW_S <= samples.length; from += 5) worst = Math.max(worst, windowMedian(from, key));
  result[key] = { baseline: round(baseline, 1), worst_window: round(worst, 1), growth: round(worst / baseline - 1, 3) };
}
const leftovers = readdirSync('/proc').filter((n) => /^\d+$/.test(n)).filter((n) => {
  try { return readFileSync(`/proc/${n}/environ`, 'utf8').includes(`CHORUS_RUN_DIR=${home}/`); } catch { return false; }
});
for (const pid of leftovers) { try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ } }
say(`judged ${judged.length} s after the first minute: rss ${JSON.stringify(result.rss)} MB, fds ${JSON.stringify(result.fds)}, left running ${leftovers.length}`);
const failures = [
  ...['rss', 'fds'].filter((k) => result[k].growth > 0.1).map((k) => `${k} grew ${Math.round(result[k].growth * 100)}% after the first minute`),
  ...(leftovers.length ? [`${leftovers.length} processes left running`] : []),
  ...(settle.output().includes('settled') ? [] : ['the last supervisor did not settle']),
];
for (const f of failures) say(`FAIL ${f}`);
if (!failures.length) say('ok');
if (values.keep || failures.length) say(`kept ${home}`);
else rmSync(home, { recursive: true, force: true });
process.exitCode = failures.length ? 1 : 0;

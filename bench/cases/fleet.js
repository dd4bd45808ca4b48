// A fleet of sleeping processes under the real headless supervisor (`chorus supervise`) and under pm2's daemon, side
// by side in one run: spawn_<N>_s (N sleeps started two at a time by each, as pm2 starts the apps of one call, until
// the last has its stored running row / pm2 lists it online; the median of `startRuns` starts, alternating), idle_cpu_pct_<N> (the supervisor's own CPU, utime + stime from /proc, over 30 s once every
// process is adopted, both fleets measured over the same 30 s so the machine's noise weighs on both alike) and
// rss_mb_<N>. `features` is the second row: part of the fleet runs with the features of the open issues on.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { adoptionCounter, benchAgent, CountingPort, HookEngine, makeHome, openClient, readySpec, ROOT, rssMb, silentLogger, trackGroup, untrackGroup, waitUntil } from '../lib/chorus.js';
import { connectPm2 } from '../lib/pm2.js';
import { clockTicksPerSecond, cpuSeconds, machineBusySeconds, selfCpuSeconds, untilQuiet } from '../lib/proc.js';
import { median, nowMs, round, spread } from '../lib/stats.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Every this many processes of the readiness third, one waits for a port instead of a line (a listening perl). */
const PORT_EVERY = 20;
const PORT_BASE = 41_000;

/**
 * What process `k` of the fleet is started with when `features` is on: the second row. Every process is sandboxed
 * (issue 11; the bare row runs with CHORUS_SANDBOX=off). A third carries hooks (output match, exit, timeout) and the
 * two watchdogs of issue 13 (silence, and memory, which has the supervisor sample that process's resources); a third
 * has a readiness probe (issue 13): a line for most, a listening port for one in PORT_EVERY. Their idle cost shows
 * here, not hidden by a bare fleet.
 */
function featureRequest(k) {
  const sleep = 'sleep 100000';
  if (k % 3 === 0) {
    return {
      command: sleep,
      hooks: [
        { trigger: { type: 'on_output_match', pattern: 'ERROR|panic' }, action: 'notify_channel' },
        { trigger: { type: 'on_exit', exit_filter: 'failure' }, action: 'notify_channel' },
        { trigger: { type: 'on_timeout', timeout_seconds: 86_400 }, action: 'notify_channel' },
        { trigger: { type: 'on_idle', idle_seconds: 86_400 }, action: 'notify_channel' },
        { trigger: { type: 'on_resource', memory_mb: 4096 }, action: 'notify_channel' },
      ],
    };
  }
  if (k % 3 === 1) {
    const third = (k - 1) / 3;
    if (third % PORT_EVERY === 0) {
      const port = PORT_BASE + third / PORT_EVERY;
      const listen = `use IO::Socket::INET; my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1:${port}", Listen => 5) or die "$!"; sleep 100000`;
      return { command: `exec perl -e '${listen}'`, hooks: [], ready: { port, timeout_seconds: 600 } };
    }
    return { command: `echo ready; exec ${sleep}`, hooks: [], ready: { pattern: '^ready$', timeout_seconds: 600 } };
  }
  return { command: sleep, hooks: [] };
}

/** The features the second row has on, named in the output so a reader knows what it measured. */
export const FEATURES_TODAY = [
  'sandbox (CHORUS_SANDBOX=auto) on all',
  'hooks on 1/3 (on_output_match, on_exit, on_timeout) with the on_idle and on_resource (memory) watchdogs',
  `readiness on 1/3 (an output pattern; a port on 1 in ${PORT_EVERY} of them)`,
];

async function startChorusSupervisor(home) {
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'chorus.js'), 'supervise'], {
    cwd: home, env: { ...process.env, CHORUS_HOME: home, LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
  });
  trackGroup(child.pid);
  const adopted = adoptionCounter();
  const state = { child, get adopted() { return adopted.count; }, stdout: '', stderrTail: '' };
  child.stdout.on('data', (d) => { state.stdout += d; });
  child.stderr.on('data', (d) => {
    const text = String(d);
    adopted.feed(text);
    state.stderrTail = (state.stderrTail + text).slice(-2000);
  });
  await waitUntil(() => state.stdout.includes('supervising'), { timeoutMs: 30_000, what: `the supervisor to start (stderr: ${state.stderrTail})` });
  return state;
}

/**
 * Starts in flight at once, for both tools: pm2 starts the apps of one `start` call IN_FLIGHT at a time (its
 * CONCURRENT_ACTIONS, 2 by default; set here so a PM2_CONCURRENT_ACTIONS in the environment cannot change it), and
 * Chorus's client keeps as many spawns going.
 */
const IN_FLIGHT = 2;

/** Runs `task(0 … count-1)`, `limit` at a time, in order of start. */
async function inFlight(count, limit, task) {
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const k = next;
      next += 1;
      await task(k);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, lane));
}

/** CPU % of one core used by each pid over `seconds`, as a total and per 5 s window (the spread). */
async function idleCpu(pids, seconds) {
  const windows = Object.fromEntries(pids.map((p) => [p, []]));
  const first = Object.fromEntries(pids.map((p) => [p, cpuSeconds(p)]));
  const t0 = nowMs();
  let last = { ...first };
  let lastAt = t0;
  for (let elapsed = 0; elapsed < seconds; elapsed += 5) {
    await sleep(Math.min(5, seconds - elapsed) * 1000);
    const at = nowMs();
    for (const p of pids) {
      const now = cpuSeconds(p);
      windows[p].push((100 * (now - last[p])) / ((at - lastAt) / 1000));
      last[p] = now;
    }
    lastAt = at;
  }
  const wall = (lastAt - t0) / 1000;
  return Object.fromEntries(pids.map((p) => [p, { pct: (100 * (last[p] - first[p])) / wall, cpuS: last[p] - first[p], windows: windows[p] }]));
}

/** `figures`: which figures are keys (the others go to the details, so a 200 fleet does not shadow rss.js or spawn.js). */
export default async function fleet({ size = 1000, idleSeconds = 30, withPm2 = true, features = false, figures = ['idle', 'rss', 'spawn'], startRuns = 1 }) {
  const home = makeHome();
  const agent = benchAgent(home);
  const supervisor = await startChorusSupervisor(home);
  const client = openClient(home, { sandbox: features ? 'auto' : 'off' });
  const hooks = features ? new HookEngine({ manager: client.manager, port: new CountingPort(), log: silentLogger() }) : null;
  const pm2 = withPm2 ? await connectPm2({ inFlight: IN_FLIGHT }) : null;
  const suffix = features ? `${size}_features` : String(size);
  /**
   * Chorus starts the fleet through a client, as the CLI starts them, IN_FLIGHT at a time, while the supervisor adopts
   * them; timed until the last has its stored running row. Who spends the CPU of a spawn: this client, the supervisor
   * adopting, the machine as a whole (the processes). Resolves once the supervisor has adopted the whole fleet.
   */
  const startChorusFleet = async () => {
    const settled = await untilQuiet();
    const adoptedBefore = supervisor.adopted;
    const cpuBefore = { client: selfCpuSeconds(), supervisor: cpuSeconds(supervisor.child.pid), machine: machineBusySeconds() };
    const t0 = nowMs();
    await inFlight(size, IN_FLIGHT, async (k) => {
      const extra = features ? featureRequest(k) : { command: 'sleep 100000', hooks: [] };
      const prepared = extra.hooks.length ? hooks.prepare(extra.hooks) : null;
      const record = await client.manager.spawn({
        agent, command: extra.command, ...(prepared ? { withRow: prepared.store } : {}), ...(extra.ready ? { readyJson: JSON.stringify(readySpec(extra.ready)) } : {}),
      });
      trackGroup(record.pgid);
    });
    const seconds = (nowMs() - t0) / 1000;
    const cpu = {
      client_ms_per_spawn: round((1000 * (selfCpuSeconds() - cpuBefore.client)) / size, 2),
      supervisor_ms_per_spawn: round((1000 * (cpuSeconds(supervisor.child.pid) - cpuBefore.supervisor)) / size, 2),
      machine_ms_per_spawn: round((1000 * (machineBusySeconds() - cpuBefore.machine)) / size, 2),
    };
    await waitUntil(() => supervisor.adopted - adoptedBefore >= size, { timeoutMs: 300_000, intervalMs: 100, what: `the supervisor to adopt ${size} (has ${supervisor.adopted - adoptedBefore})` });
    return { seconds, cpu, settled, adoptedAfterS: round((nowMs() - t0) / 1000, 2) };
  };

  /** pm2 starts the same fleet in one `start` call; timed until it lists every one online with a pid. */
  const startPm2Fleet = async () => {
    const apps = Array.from({ length: size }, (_, k) => ({
      name: `fleet-${k}`, script: 'sleep', args: ['100000'], interpreter: 'none', autorestart: false,
      out_file: '/dev/null', error_file: '/dev/null',
    }));
    const settled = await untilQuiet();
    const t0 = nowMs();
    await pm2.start({ apps });
    // Polled every 250 ms: a list of 1,000 is itself work for the daemon, and the poll must not slow what it measures.
    await waitUntil(async () => (await pm2.list()).filter((p) => p.pid > 0 && p.pm2_env?.status === 'online').length >= size,
      { timeoutMs: 600_000, intervalMs: 250, what: `pm2 to list ${size} online` });
    return { seconds: (nowMs() - t0) / 1000, settled };
  };

  /** How the readiness probes of the features row ended, once every one has. */
  const settledReadiness = async () => {
    const probed = () => client.manager.list({ agentName: agent.name, status: 'running', limit: 100_000 }).filter((r) => r.readyJson !== null);
    await waitUntil(() => probed().every((r) => r.readyAt !== null || r.readyError !== null), { timeoutMs: 300_000, intervalMs: 500, what: 'every readiness probe to settle' });
    const rows = probed();
    return { probed: rows.length, ready: rows.filter((r) => r.readyAt !== null).length, failed: rows.filter((r) => r.readyError !== null).map((r) => r.readyError).slice(0, 3) };
  };

  try {
    // Each start is timed on a quiet machine, not in the wake of the last case's clean-up or the other tool's start.
    // `startRuns` starts of the whole fleet by each tool, alternating (Chorus, pm2, Chorus, …); all but the last are
    // stopped again by each tool's own stop-all, and the last stays for the idle and memory figures. The start figure
    // is the median: on a shared machine one start of either tool varies by a third from one minute to the next.
    const starts = [];
    let readiness = null;
    for (let run = 0; run < startRuns; run += 1) {
      const isLast = run === startRuns - 1;
      const chorusStart = await startChorusFleet();
      // Readiness settles before the idle window: what is measured is a ready fleet's idle, not probes still running.
      if (features && isLast) readiness = await settledReadiness();
      const pm2Start = pm2 ? await startPm2Fleet() : null;
      starts.push({ chorus: chorusStart, pm2: pm2Start });
      if (isLast) break;
      // The fleets of this start go (each tool's stop-all), and their settling is waited out by the next untilQuiet.
      const stopped = await client.manager.killAllForAgent(agent.name, { by: 'bench', force: true });
      for (const record of stopped) untrackGroup(record.pgid);
      if (pm2) {
        await pm2.delete('all');
        await waitUntil(async () => (await pm2.list()).length === 0, { timeoutMs: 300_000, intervalMs: 250, what: 'pm2 to delete its fleet' });
      }
    }
    const chorusSpawnS = median(starts.map((s) => s.chorus.seconds));
    const pm2SpawnS = pm2 ? median(starts.map((s) => s.pm2.seconds)) : null;

    // Start-up work settles first: adoption, pm2's first rounds, and V8's memory reducer, which runs its full
    // collections in the 20 s or so after a burst of allocation ends (a one-off after start-up, not an idle cost).
    await sleep(30_000);
    const pm2Pid = pm2 ? pm2.daemonPid() : null;
    const pids = [supervisor.child.pid, ...(pm2Pid ? [pm2Pid] : [])];
    const rssBefore = Object.fromEntries(pids.map((p) => [p, rssMb(p)]));
    const cpu = await idleCpu(pids, idleSeconds);
    const rss = Object.fromEntries(pids.map((p) => [p, median([rssBefore[p], rssMb(p)])]));
    const chorus = cpu[supervisor.child.pid];
    const theirs = pm2Pid ? cpu[pm2Pid] : null;
    const windowsRounded = (w) => spread(w).map((x) => round(x, 2));
    const measured = {
      idle: {
        [`idle_cpu_pct_${suffix}`]: round(chorus.pct, 3),
        [`idle_cpu_pct_${suffix}_pm2`]: theirs ? round(theirs.pct, 3) : null,
      },
      rss: {
        [`rss_mb_${suffix}`]: round(rss[supervisor.child.pid], 1),
        [`rss_mb_${suffix}_pm2`]: pm2Pid ? round(rss[pm2Pid], 1) : null,
      },
      spawn: {
        [`spawn_${suffix}_s`]: round(chorusSpawnS, 2),
        [`spawn_${suffix}_s_pm2`]: pm2SpawnS === null ? null : round(pm2SpawnS, 2),
      },
    };
    const keys = Object.assign({}, ...figures.map((f) => measured[f]));
    const rest = Object.keys(measured).filter((f) => !figures.includes(f));
    return {
      keys,
      details: {
        ...(rest.length ? { [`fleet_${suffix}`]: Object.assign({}, ...rest.map((f) => measured[f])) } : {}),
        [`idle_cpu_${suffix}_seconds`]: { chorus: round(chorus.cpuS, 2), pm2: theirs ? round(theirs.cpuS, 2) : null, window_s: idleSeconds, tick_s: round(1 / clockTicksPerSecond(), 3) },
        [`idle_cpu_pct_${suffix}_spread_5s`]: { chorus: windowsRounded(chorus.windows), pm2: theirs ? windowsRounded(theirs.windows) : null },
        // Every start, in order: each tool's seconds and their ratio, when the supervisor had adopted them all, the CPU
        // a spawn took, and how long each start waited for a quiet machine.
        [`spawn_${suffix}_starts`]: starts.map(({ chorus: c, pm2: p }) => ({
          chorus_s: round(c.seconds, 2), pm2_s: p ? round(p.seconds, 2) : null, ratio: p ? round(c.seconds / p.seconds, 3) : null,
          adopted_after_s: c.adoptedAfterS, cpu: c.cpu, settled: { chorus: c.settled, ...(p ? { pm2: p.settled } : {}) },
        })),
        ...(features ? { [`features_${size}`]: FEATURES_TODAY, [`features_${size}_readiness`]: readiness } : {}),
      },
    };
  } finally {
    if (pm2) {
      await pm2.delete('all');
      pm2.disconnect();
    }
    await client.close();
    supervisor.child.kill('SIGTERM');
    await Promise.race([once(supervisor.child, 'exit'), sleep(30_000)]);
  }
}

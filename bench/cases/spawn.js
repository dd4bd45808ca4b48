// spawn_p50_ms (one spawn, call to stored running row), spawn_200_s (200 sleeping processes, one after another) for
// Chorus and pm2 and as ratios to pm2 and to a bare loop of 200 detached `/bin/sh -c sleep` spawns in the same run
// (ratios hold on a noisy machine where seconds do not), and rss_mb_200_pm2 (the pm2 daemon holding those 200). These
// run unconfined (CHORUS_SANDBOX=off), like for like with pm2 and the bare loop, which confine nothing; the sandbox's
// cost per spawn is measured beside them: `true` from the call to its recorded exit, confined (bwrap) and off,
// alternating.
import { spawn as spawnChild } from 'node:child_process';
import { benchAgent, makeHome, rssMb, startSupervisor, waitUntil } from '../lib/chorus.js';
import { connectPm2 } from '../lib/pm2.js';
import { median, nowMs, percentile, round, spread } from '../lib/stats.js';

export default async function spawnCase({ singles = 60, runs = 3, fleet = 200, withPm2 = true }) {
  const home = makeHome();
  const agent = benchAgent(home);
  const supervisor = await startSupervisor({ home, sandbox: 'off' });
  const { manager } = supervisor;
  const stopAll = () => manager.killAllForAgent(agent.name, { by: 'bench', force: true });

  // One at a time, alternating with a bare detached /bin/sh spawn as the baseline.
  const one = [];
  const bare = [];
  for (let i = 0; i < singles; i += 1) {
    let t0 = nowMs();
    await manager.spawn({ agent, command: 'sleep 600' });
    one.push(nowMs() - t0);
    t0 = nowMs();
    const child = spawnChild('/bin/sh', ['-c', 'sleep 600'], { detached: true, stdio: 'ignore' });
    bare.push(nowMs() - t0);
    child.unref();
    process.kill(-child.pid, 'SIGKILL');
    if (i % 20 === 19) await stopAll();
  }
  await stopAll();

  const sandboxCost = await measureSandboxCost(singles);

  const pm2 = withPm2 ? await connectPm2() : null;
  const apps = Array.from({ length: fleet }, (_, k) => ({
    name: `sleep-${k}`, script: 'sleep', args: ['1000'], interpreter: 'none', autorestart: false,
    out_file: '/dev/null', error_file: '/dev/null',
  }));
  const chorus200 = [];
  const bare200 = [];
  const pm2Result = { spawn: [], rss: [] };
  let killAllSeconds = null;
  for (let i = 0; i < runs; i += 1) {
    let t0 = nowMs();
    for (let k = 0; k < fleet; k += 1) await manager.spawn({ agent, command: 'sleep 1000' });
    chorus200.push((nowMs() - t0) / 1000);
    t0 = nowMs();
    await stopAll();
    bare200.push(bareLoop(fleet));
    if (i === 0) killAllSeconds = (nowMs() - t0) / 1000;
    if (!pm2) continue;
    t0 = nowMs();
    await pm2.start({ apps });
    // Until pm2 lists every one of them online with a pid: the equivalent of a stored running row.
    await waitUntil(async () => (await pm2.list()).filter((p) => p.pid > 0 && p.pm2_env?.status === 'online').length >= fleet,
      { timeoutMs: 120_000, intervalMs: 20, what: 'pm2 to list 200 online' });
    pm2Result.spawn.push((nowMs() - t0) / 1000);
    if (i === runs - 1) {
      // The daemon with the same 200 running, sampled over 5 s.
      const pid = pm2.daemonPid();
      for (let s = 0; s < 10; s += 1) {
        await new Promise((r) => setTimeout(r, 500));
        pm2Result.rss.push(rssMb(pid));
      }
    }
    await pm2.delete('all');
  }
  pm2?.disconnect();
  await supervisor.close();

  return {
    keys: {
      spawn_p50_ms: round(median(one), 2),
      spawn_200_s: round(median(chorus200), 3),
      spawn_200_s_pm2: withPm2 ? round(median(pm2Result.spawn), 3) : null,
      spawn_200_vs_pm2: withPm2 ? round(median(chorus200.map((x, i) => x / pm2Result.spawn[i])), 3) : null,
      spawn_200_vs_bare: round(median(chorus200.map((x, i) => x / bare200[i])), 2),
      rss_mb_200_pm2: withPm2 ? round(median(pm2Result.rss), 1) : null,
    },
    details: {
      spawn_p99_ms: round(percentile(one, 99), 2),
      spawn_bare_sh_p50_ms: round(median(bare), 2),
      spawn_200_s_spread: spread(chorus200).map((x) => round(x, 3)),
      spawn_200_bare_s: round(median(bare200), 3),
      spawn_200_s_pm2_spread: withPm2 ? spread(pm2Result.spawn).map((x) => round(x, 3)) : null,
      spawn_samples: singles,
      kill_all_200_s: round(killAllSeconds, 2),
      spawn_200_runs: runs,
      ...sandboxCost,
    },
  };
}

/** Seconds for `count` detached `/bin/sh -c sleep` spawns one after another, each killed after: the floor of a spawn. */
function bareLoop(count) {
  const pids = [];
  const t0 = nowMs();
  for (let k = 0; k < count; k += 1) {
    const child = spawnChild('/bin/sh', ['-c', 'sleep 1000'], { detached: true, stdio: 'ignore' });
    child.unref();
    pids.push(child.pid);
  }
  const seconds = (nowMs() - t0) / 1000;
  for (const pid of pids) {
    try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ }
  }
  return seconds;
}

/** Spawn of `true` until its exit is recorded, with the sandbox (when bwrap works here) and with it off. */
async function measureSandboxCost(samples) {
  const modes = {};
  for (const mode of ['auto', 'off']) {
    const home = makeHome();
    const agent = benchAgent(home);
    const supervisor = await startSupervisor({ home, sandbox: mode, withHooks: false });
    modes[mode] = { supervisor, agent, times: [], kind: supervisor.manager.sandbox.kind() };
  }
  const runOnce = async ({ supervisor, agent, times }) => {
    const { manager } = supervisor;
    const t0 = nowMs();
    const record = await manager.spawn({ agent, command: 'true' });
    // The manager's timers and children are unref'd: something must hold the event loop while waiting.
    const keepAlive = setInterval(() => {}, 1000);
    await new Promise((resolve) => {
      const onEnd = (ended) => { if (ended.id === record.id) { manager.off('exited', onEnd); resolve(); } };
      manager.on('exited', onEnd);
      if (manager.find({ id: record.id }).status !== 'running') { manager.off('exited', onEnd); resolve(); }
    });
    clearInterval(keepAlive);
    times.push(nowMs() - t0);
  };
  for (let i = 0; i < samples; i += 1) {
    await runOnce(modes.auto);
    await runOnce(modes.off);
  }
  for (const { supervisor } of Object.values(modes)) await supervisor.close();
  return {
    sandbox_kind: modes.auto.kind,
    spawn_to_exit_p50_ms_sandbox: round(median(modes.auto.times), 1),
    spawn_to_exit_p50_ms_off: round(median(modes.off.times), 1),
    spawn_to_exit_p90_ms_sandbox: round(percentile(modes.auto.times, 90), 1),
    spawn_to_exit_p90_ms_off: round(percentile(modes.off.times, 90), 1),
  };
}

// hook_latency_*: from a line written by a child to its hook's action being invoked, idle and while 20 other
// processes write 2 MB/s each; loop_lag_p99_ms: the supervisor's event-loop delay under that load.
import { rmSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { benchAgent, CountingPort, endOf, makeHome, node, startSupervisor, trackGroup } from '../lib/chorus.js';
import { median, percentile, round, spread } from '../lib/stats.js';

const TICK_HOOK = [{ trigger: { type: 'on_output_match', pattern: '^TICK ', stream: 'stdout' }, action: 'spawn_branch', max_fires: 1000 }];
// The writers carry a hook too, so their lines are matched as a real process's would be.
const WRITER_HOOK = [{ trigger: { type: 'on_output_match', pattern: 'ERROR|FATAL', stream: 'both' }, action: 'notify_channel', max_fires: 1000 }];

export default async function latency({ runs = 3, ticks = 250, intervalMs = 20, writers = 20, writerBytesPerSecond = 2 * 1024 * 1024 }) {
  const home = makeHome();
  const agent = benchAgent(home);
  let samples = [];
  const port = new CountingPort((_kind, context, at) => {
    const match = /^TICK \d+ ([\d.]+)/.exec(context.matchedLines[0] ?? '');
    if (match) samples.push(at - Number(match[1]));
  });
  // No cooldown: every tick is its own firing, so each one is a sample.
  const supervisor = await startSupervisor({ home, port, cooldownMs: 0 });
  const { manager, hooks } = supervisor;

  async function tickRun(count = ticks) {
    samples = [];
    const record = await manager.spawn({ agent, command: node('ticker.js', count, intervalMs), withRow: hooks.prepare(TICK_HOOK).store });
    await endOf(manager, record.id);
    await hooks.idle();
    rmSync(record.runDir, { recursive: true, force: true });
    return samples;
  }

  await tickRun(50); // warm-up: JIT, prepared statements, first inotify watch
  const idle = [];
  for (let i = 0; i < runs; i += 1) idle.push(await tickRun());

  const loaded = [];
  const lags = [];
  let writtenMb = 0;
  for (let i = 0; i < runs; i += 1) {
    const started = [];
    for (let w = 0; w < writers; w += 1) {
      const record = await manager.spawn({ agent, command: node('steady-writer.js', writerBytesPerSecond, 60), withRow: hooks.prepare(WRITER_HOOK).store });
      trackGroup(record.pgid);
      started.push(record);
    }
    await new Promise((r) => setTimeout(r, 1_000));
    const lag = monitorEventLoopDelay({ resolution: 5 });
    lag.enable();
    loaded.push(await tickRun());
    lag.disable();
    lags.push(lag.percentile(99) / 1e6);
    for (const record of started) writtenMb += (manager.readPosition(record.id, 'stdout') ?? 0) / (1024 * 1024);
    await Promise.all(started.map((r) => manager.kill({ id: r.id }, { by: 'bench', force: true })));
    for (const record of started) rmSync(record.runDir, { recursive: true, force: true });
  }
  await supervisor.close();

  const p = (sets, q) => sets.map((s) => percentile(s, q));
  return {
    keys: {
      hook_latency_p50_ms: round(median(p(idle, 50)), 2),
      hook_latency_p99_ms: round(median(p(idle, 99)), 2),
      hook_latency_loaded_p50_ms: round(median(p(loaded, 50)), 2),
      hook_latency_loaded_p99_ms: round(median(p(loaded, 99)), 2),
      loop_lag_p99_ms: round(median(lags), 2),
    },
    details: {
      hook_latency_samples_per_run: idle.map((s) => s.length),
      hook_latency_loaded_samples_per_run: loaded.map((s) => s.length),
      hook_latency_p99_spread: spread(p(idle, 99)).map((x) => round(x, 2)),
      hook_latency_loaded_p99_spread: spread(p(loaded, 99)).map((x) => round(x, 2)),
      hook_latency_loaded_max_ms: round(Math.max(...loaded.flat()), 1),
      loop_lag_p99_spread: spread(lags).map((x) => round(x, 2)),
      load_written_mb_s: round(writtenMb / runs / ((ticks * intervalMs) / 1000 + 1), 1),
      latency_runs: runs,
    },
  };
}

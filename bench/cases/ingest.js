// ingest_cpu_s_per_100mb(_pm2): the CPU seconds (user + system) the supervisor spends to follow a child writing 100 MB
// of lines: Chorus reading, splitting, matching and tailing them (this process is the supervisor), pm2's daemon piping
// them into its log file. CPU time holds on a noisy shared machine where wall-clock time does not; the wall-clock
// slowdown of the child against `> file` stays in the details. Nobody reads these lines one by one, so Chorus makes only
// the tail's; the details add the same run with an on_output_match hook on the process (`_hooked`), where every line is
// made and matched.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { benchAgent, endOf, FIXTURES, makeHome, node, startSupervisor, waitUntil } from '../lib/chorus.js';
import { connectPm2 } from '../lib/pm2.js';
import { cpuSeconds, selfCpuSeconds } from '../lib/proc.js';
import { median, nowMs, round, spread } from '../lib/stats.js';

/** Every line is matched; none matches (the lines say INFO ... ok). */
const HOOK = [{ trigger: { type: 'on_output_match', pattern: 'ERROR|panic' }, action: 'notify_channel' }];

const sizeOf = (path) => {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
};

export default async function ingest({ runs = 5, megabytes = 100, withPm2 = true }) {
  const bytes = megabytes * 1024 * 1024;
  const home = makeHome();
  const agent = benchAgent(home);
  const supervisor = await startSupervisor({ home });
  const pm2 = withPm2 ? await connectPm2() : null;
  const cpu = { chorus: [], hooked: [], pm2: [] };
  const times = { file: [], chorus: [], hooked: [], pm2: [] };
  const wallOf = (endFile) => JSON.parse(readFileSync(endFile, 'utf8')).wallMs;

  const variants = {
    async file(i) {
      const end = join(home, `end-file-${i}`);
      const log = join(home, `file-${i}.log`);
      const child = spawn('/bin/sh', ['-c', `${node('write-lines.js', bytes, end)} > ${JSON.stringify(log)}`], { stdio: 'ignore' });
      await once(child, 'exit');
      times.file.push(wallOf(end));
      rmSync(log, { force: true });
    },
    chorus: (i) => followChorus('chorus', i),
    hooked: (i) => followChorus('hooked', i, HOOK),
    async pm2(i) {
      const end = join(home, `end-pm2-${i}`);
      const out = join(home, `pm2-${i}.out.log`);
      const name = `ingest-${i}`;
      const daemon = pm2.daemonPid();
      const before = cpuSeconds(daemon);
      await pm2.start({
        name, script: process.execPath, args: [join(FIXTURES, 'write-lines.js'), String(bytes), end], interpreter: 'none',
        autorestart: false, out_file: out, error_file: join(home, `pm2-${i}.err.log`),
      });
      await waitUntil(() => existsSync(end), { timeoutMs: 300_000, intervalMs: 20, what: 'the pm2 child to finish' });
      // Until the daemon has written every byte to its log file.
      await waitUntil(() => sizeOf(out) >= bytes, { timeoutMs: 120_000, intervalMs: 20, what: 'pm2 to write the whole log' });
      cpu.pm2.push(cpuSeconds(daemon) - before);
      times.pm2.push(wallOf(end));
      await pm2.delete(name);
      rmSync(out, { force: true });
    },
  };
  async function followChorus(variant, i, hookInput) {
    // In the agent's workspace: a confined child sees nothing else of the home.
    const end = join(agent.workspace, `end-${variant}-${i}`);
    const before = selfCpuSeconds();
    const withRow = hookInput ? { withRow: supervisor.hooks.prepare(hookInput).store } : {};
    const record = await supervisor.manager.spawn({ agent, command: node('write-lines.js', bytes, end), ...withRow });
    // Until Chorus has followed every byte (the tail, the hooks, the position) and recorded the end.
    await endOf(supervisor.manager, record.id);
    cpu[variant].push(selfCpuSeconds() - before);
    times[variant].push(wallOf(end));
    rmSync(record.runDir, { recursive: true, force: true });
  }
  const order = withPm2 ? ['file', 'chorus', 'hooked', 'pm2'] : ['file', 'chorus', 'hooked'];
  for (let i = 0; i < runs; i += 1) {
    // Rotated each round, so no variant always runs right after the same neighbour.
    for (let k = 0; k < order.length; k += 1) await variants[order[(i + k) % order.length]](i);
  }
  pm2?.disconnect();
  await supervisor.close();

  const per100 = (xs) => xs.map((x) => (x * 100) / megabytes);
  const ratios = (xs) => xs.map((x, i) => x / times.file[i]);
  return {
    keys: {
      ingest_cpu_s_per_100mb: round(median(per100(cpu.chorus)), 3),
      ingest_cpu_s_per_100mb_pm2: withPm2 ? round(median(per100(cpu.pm2)), 3) : null,
    },
    details: {
      ingest_cpu_s_per_100mb_spread: spread(per100(cpu.chorus)).map((x) => round(x, 3)),
      ingest_cpu_s_per_100mb_pm2_spread: withPm2 ? spread(per100(cpu.pm2)).map((x) => round(x, 3)) : null,
      ingest_cpu_s_per_100mb_hooked: round(median(per100(cpu.hooked)), 3),
      ingest_cpu_s_per_100mb_hooked_spread: spread(per100(cpu.hooked)).map((x) => round(x, 3)),
      ingest_wall_slowdown_vs_file: { chorus: round(median(ratios(times.chorus)), 3), hooked: round(median(ratios(times.hooked)), 3), pm2: withPm2 ? round(median(ratios(times.pm2)), 2) : null },
      ingest_file_ms: round(median(times.file), 1),
      ingest_runs: runs,
    },
  };
}

// ingest_slowdown(_pm2): a child writing 100 MB of lines, its own wall time (first write to last) under Chorus (and
// pm2) against the same child with `> file`. From the spawn call instead, start-up is included: reported beside it.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { benchAgent, endOf, FIXTURES, makeHome, node, startSupervisor, waitUntil } from '../lib/chorus.js';
import { connectPm2 } from '../lib/pm2.js';
import { median, nowMs, round, spread } from '../lib/stats.js';

export default async function ingest({ runs = 7, megabytes = 100, withPm2 = true }) {
  const bytes = megabytes * 1024 * 1024;
  const home = makeHome();
  const agent = benchAgent(home);
  const supervisor = await startSupervisor({ home });
  const pm2 = withPm2 ? await connectPm2() : null;
  const times = { file: [], burner: [], chorus: [], pm2: [] };
  const fromCall = { file: [], burner: [], chorus: [], chorusSeen: [], pm2: [] };
  const note = (variant, endFile, t0) => {
    const { wallMs, endAt } = JSON.parse(readFileSync(endFile, 'utf8'));
    times[variant].push(wallMs);
    fromCall[variant].push(endAt - t0);
  };

  const variants = {
    async file(i) {
      const end = join(home, `end-file-${i}`);
      const log = join(home, `file-${i}.log`);
      const t0 = nowMs();
      const child = spawn('/bin/sh', ['-c', `${node('write-lines.js', bytes, end)} > ${JSON.stringify(log)}`], { stdio: 'ignore' });
      await once(child, 'exit');
      note('file', end, t0);
      rmSync(log, { force: true });
    },
    // The floor on a small machine: the same `> file` child while any busy process runs on the other core.
    async burner(i) {
      const burner = spawn(process.execPath, ['-e', 'const t = Date.now(); while (Date.now() - t < 20000) {}'], { stdio: 'ignore' });
      await new Promise((r) => setTimeout(r, 100));
      const end = join(home, `end-burner-${i}`);
      const log = join(home, `burner-${i}.log`);
      const t0 = nowMs();
      const child = spawn('/bin/sh', ['-c', `${node('write-lines.js', bytes, end)} > ${JSON.stringify(log)}`], { stdio: 'ignore' });
      await once(child, 'exit');
      burner.kill('SIGKILL');
      await once(burner, 'exit');
      note('burner', end, t0);
      rmSync(log, { force: true });
    },
    async chorus(i) {
      const end = join(home, `end-chorus-${i}`);
      const t0 = nowMs();
      const record = await supervisor.manager.spawn({ agent, command: node('write-lines.js', bytes, end) });
      await endOf(supervisor.manager, record.id);
      // Seen: until Chorus has read every byte and recorded the end.
      fromCall.chorusSeen.push(nowMs() - t0);
      note('chorus', end, t0);
      rmSync(record.runDir, { recursive: true, force: true });
    },
    async pm2(i) {
      const end = join(home, `end-pm2-${i}`);
      const out = join(home, `pm2-${i}.out.log`);
      const name = `ingest-${i}`;
      const t0 = nowMs();
      await pm2.start({
        name, script: process.execPath, args: [join(FIXTURES, 'write-lines.js'), String(bytes), end], interpreter: 'none',
        autorestart: false, out_file: out, error_file: join(home, `pm2-${i}.err.log`),
      });
      await waitUntil(() => existsSync(end), { timeoutMs: 120_000, intervalMs: 5, what: 'the pm2 child to finish' });
      note('pm2', end, t0);
      await pm2.delete(name);
      rmSync(out, { force: true });
    },
  };
  const order = withPm2 ? ['file', 'chorus', 'burner', 'pm2'] : ['file', 'chorus', 'burner'];
  for (let i = 0; i < runs; i += 1) {
    // Rotated each round, so no variant always runs right after the same neighbour.
    for (let k = 0; k < order.length; k += 1) await variants[order[(i + k) % order.length]](i);
  }
  pm2?.disconnect();
  await supervisor.close();

  const ratios = (xs) => xs.map((x, i) => x / times.file[i]);
  const ms = (xs) => round(median(xs), 1);
  return {
    keys: {
      ingest_slowdown: round(median(times.chorus) / median(times.file), 3),
      ingest_slowdown_pm2: withPm2 ? round(median(times.pm2) / median(times.file), 2) : null,
    },
    details: {
      ingest_file_ms: ms(times.file),
      ingest_chorus_ms: ms(times.chorus),
      ingest_pm2_ms: withPm2 ? ms(times.pm2) : null,
      ingest_slowdown_cpu_busy_elsewhere: round(median(times.burner) / median(times.file), 3),
      ingest_from_spawn_call_ms: { file: ms(fromCall.file), chorus: ms(fromCall.chorus), pm2: withPm2 ? ms(fromCall.pm2) : null },
      ingest_chorus_until_all_read_ms: ms(fromCall.chorusSeen),
      ingest_slowdown_spread: spread(ratios(times.chorus)).map((x) => round(x, 3)),
      ingest_slowdown_pm2_spread: withPm2 ? spread(ratios(times.pm2)).map((x) => round(x, 2)) : null,
      ingest_runs: runs,
    },
  };
}

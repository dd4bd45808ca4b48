// rss_mb_200: the real headless supervisor (`chorus supervise`, no Discord) tracking 200 running processes that a
// client started; shim_pss_kb: the proportional memory of one shim.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { adoptionCounter, benchAgent, makeHome, openClient, pssKb, ROOT, rssMb, trackGroup, waitUntil } from '../lib/chorus.js';
import { median, round, spread } from '../lib/stats.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function sampleRss(pid, count = 10, everyMs = 500) {
  const out = [];
  for (let i = 0; i < count; i += 1) {
    await sleep(everyMs);
    out.push(rssMb(pid));
  }
  return out;
}

export default async function rss({ fleet = 200 }) {
  const home = makeHome();
  const agent = benchAgent(home);
  const supervisor = spawn(process.execPath, [join(ROOT, 'bin', 'chorus.js'), 'supervise'], {
    cwd: home, env: { ...process.env, CHORUS_HOME: home, LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
  });
  trackGroup(supervisor.pid);
  const adopted = adoptionCounter();
  let stdout = '';
  let stderrTail = '';
  supervisor.stdout.on('data', (d) => { stdout += d; });
  supervisor.stderr.on('data', (d) => {
    const text = String(d);
    adopted.feed(text);
    stderrTail = (stderrTail + text).slice(-2000);
  });
  try {
    await waitUntil(() => stdout.includes('supervising'), { timeoutMs: 20_000, what: `the supervisor to start (stderr: ${stderrTail})` });
    const idle = await sampleRss(supervisor.pid, 6);

    const client = openClient(home);
    const shims = [];
    for (let k = 0; k < fleet; k += 1) {
      const record = await client.manager.spawn({ agent, command: 'sleep 1000' });
      trackGroup(record.pgid);
      shims.push(record.pid);
    }
    await client.close();
    await waitUntil(() => adopted.count >= fleet, { timeoutMs: 60_000, what: `the supervisor to adopt ${fleet} processes (has ${adopted.count})` });
    // Over 5 s, so a resource sample (every 3 s) and several polls fall inside.
    const loaded = await sampleRss(supervisor.pid, 10);
    const pss = shims.map((pid) => pssKb(pid)).filter((x) => x !== null);
    return {
      keys: { rss_mb_200: round(median(loaded), 1), shim_pss_kb: round(median(pss), 0) },
      details: {
        rss_mb_200_spread: spread(loaded).map((x) => round(x, 1)),
        rss_mb_idle_supervisor: round(median(idle), 1),
        shim_pss_kb_spread: spread(pss),
      },
    };
  } finally {
    supervisor.kill('SIGTERM');
    await Promise.race([once(supervisor, 'exit'), sleep(10_000)]);
  }
}

// A supervisor as its own OS process, built exactly as `chorus supervise` builds it (startRuntime with the journal
// port), that also acts as the agents would: it spawns processes with hooks and stops some.
//   churn <seed>   spawn (and sometimes stop) until killed; prints "ready", then "spawn" from inside each spawn
//   settle         let every process end (stopping what would not), wait until no firing is open, exit 0
//   soak <seed>    churn with restarts and kills, for the soak test, until SIGTERM
import { join } from 'node:path';
import { DIST } from '../lib/chorus.js';
import { pickWork, seeded } from './workload.js';

const { loadConfig } = await import(join(DIST, 'config.js'));
const { startRuntime } = await import(join(DIST, 'main.js'));
const { JournalPort } = await import(join(DIST, 'hooks', 'journal-port.js'));
const { createLogger } = await import(join(DIST, 'logger.js'));

const [mode = 'churn', seedText = '1'] = process.argv.slice(2);
const AGENT = 'chaos';
const ledger = process.env.CHAOS_LEDGER;
const config = loadConfig(process.env);
const log = createLogger({ level: process.env.LOG_LEVEL ?? 'warn' });
const runtime = await startRuntime(config, log, () => new JournalPort(join(config.chorusHome, 'hook-journal.jsonl')));
const { manager, hooks } = runtime;
const random = seeded(Number(seedText));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
process.stdout.write('ready\n');

async function spawnOne() {
  const work = pickWork(random, ledger);
  const { store } = hooks.prepare(work.hooks);
  try {
    // Announced from inside the spawn (its row transaction), so a kill timed on it lands inside the spawn.
    await manager.spawn({ agent: AGENT, command: work.command, name: work.name, withRow: (id) => { store(id); process.stdout.write('spawn\n'); } });
  } catch (error) {
    process.stderr.write(`chaos supervisor: spawn failed: ${error.message}\n`);
  }
}

function stopSomething(kinds, by) {
  const candidates = manager.list({ agentName: AGENT, status: 'running' }).filter((r) => kinds.includes(String(r.name).split(':')[0]));
  const victim = candidates[Math.floor(random() * candidates.length)];
  if (!victim) return;
  void manager.kill({ id: victim.id }, { by }).catch(() => undefined);
}

if (mode === 'churn') {
  for (;;) {
    await sleep(30 + random() * 220);
    await spawnOne();
    if (random() < 0.1) stopSomething(['chatty', 'stubborn'], 'chaos');
  }
} else if (mode === 'soak') {
  let stopping = false;
  process.once('SIGTERM', () => { stopping = true; });
  while (!stopping) {
    await sleep(20 + random() * 150);
    if (manager.list({ agentName: AGENT, status: 'running' }).length < 40) await spawnOne();
    const roll = random();
    if (roll < 0.08) stopSomething(['chatty', 'stubborn', 'slow'], 'soak');
    else if (roll < 0.12) {
      const running = manager.list({ agentName: AGENT, status: 'running' });
      const old = running[Math.floor(random() * running.length)];
      if (old) void hooks.restartProcess({ id: old.id }, { by: 'soak' }).catch(() => undefined);
    }
  }
  await runtime.close();
  process.exit(0);
} else if (mode === 'settle') {
  // Quick, failing, chatty and slow processes end by themselves; SIGTERM-ignoring ones are stopped after a while.
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && manager.list({ agentName: AGENT, status: 'running' }).some((r) => !String(r.name).startsWith('stubborn'))) await sleep(100);
  await manager.killAllForAgent(AGENT, { by: 'chaos-final' });
  const firingDeadline = Date.now() + 30_000;
  while (Date.now() < firingDeadline && (hooks.repo.openFirings().length > 0 || manager.list({ status: 'running' }).length > 0)) {
    await hooks.idle();
    await sleep(100);
  }
  await hooks.idle();
  await runtime.close();
  process.stdout.write('settled\n');
  process.exit(0);
}

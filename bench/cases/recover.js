// recover_10k_ms: a new supervisor's start-up over a store of 10,000 rows, 200 of them live processes (and 100 more
// that ended while no supervisor ran, so their output is scanned and their exit hooks fire), timed in a fresh process.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchAgent, CountingPort, HookEngine, makeHome, openClient, silentLogger, trackGroup, waitUntil } from '../lib/chorus.js';
import { median, round, spread } from '../lib/stats.js';

const EXIT_HOOK = { trigger: { type: 'on_exit' }, action: 'notify_channel' };
const MATCH_HOOK = { trigger: { type: 'on_output_match', pattern: 'ERROR' }, action: 'notify_channel', max_fires: 10 };

function buildStore(home, { rows, live, ended }) {
  const agent = benchAgent(home);
  const client = openClient(home);
  const hooks = new HookEngine({ manager: client.manager, port: new CountingPort(), log: silentLogger() });
  const repo = client.manager.repo;
  const history = rows - live - ended;
  const old = new Date(Date.now() - 86_400_000).toISOString();
  const { store } = hooks.prepare([EXIT_HOOK]);
  repo.transaction(() => {
    for (let i = 0; i < history; i += 1) {
      const id = repo.insertStarting({
        command: `make test-${i}`, name: null, category: null, workingDirectory: agent.workspace, agentName: agent.name,
        processType: 'background', spawnedByBranch: null, contextJson: null, modelForHooks: null, hookRecursionDepth: 0,
        timeoutSeconds: null, restartedFrom: null, sandbox: 'none',
      }, old);
      const runDir = join(home, 'agents', agent.name, 'processes', `${id}-old`);
      repo.setPaths(id, runDir, join(runDir, 'stdout.log'), join(runDir, 'stderr.log'));
      repo.markRunning(id, { pid: 100_000 + i, pgid: 100_000 + i, startTicks: 1, bootId: 'old-boot' }, old);
      store(id);
      repo.finish(id, { status: 'exited', exitCode: i % 7 === 0 ? 1 : 0, signal: null, stoppedBy: null, lostReason: null, endedAt: old });
      // Its exit hook fired back then.
      const [hook] = hooks.repo.listForProcess(id);
      const firing = hooks.repo.recordFiring({ hookId: hook.id, processId: id, cause: 'exit', stream: null, logOffset: null, payloadJson: '{}', status: 'pending', dueAt: old });
      hooks.repo.updateFiring(firing, { status: 'done', result: 'notified' });
    }
  });
  return { agent, client, hooks };
}

export default async function recover({ runs = 5, rows = 10_000, live = 200, ended = 100 }) {
  const home = makeHome();
  const { agent, client, hooks } = buildStore(home, { rows, live, ended });
  for (let i = 0; i < live; i += 1) {
    const record = await client.manager.spawn({ agent, command: `echo started ${i}; exec sleep 1000`, withRow: hooks.prepare([EXIT_HOOK, MATCH_HOOK]).store });
    trackGroup(record.pgid);
  }
  const endedIds = [];
  for (let i = 0; i < ended; i += 1) {
    const record = await client.manager.spawn({ agent, command: `seq 1 2000; echo ERROR at the end; exit 3`, withRow: hooks.prepare([EXIT_HOOK, MATCH_HOOK]).store });
    endedIds.push(record.id);
  }
  await waitUntil(() => endedIds.every((id) => existsSync(join(client.manager.repo.get(id).runDir, 'exit'))), { what: 'the short processes to end' });
  const ids = endedIds.join(',');
  const reset = () => client.db.transaction(() => {
    // Back to "ended while no supervisor ran", so every run recovers the same work.
    client.db.exec(`UPDATE processes SET status = 'running', exit_code = NULL, signal = NULL, stopped_by = NULL, lost_reason = NULL,
      ended_at = NULL, stdout_offset = 0, stderr_offset = 0, stdout_rotated = 0, stderr_rotated = 0 WHERE id IN (${ids})`);
    client.db.exec(`DELETE FROM hook_firings WHERE process_id IN (${ids})`);
    client.db.exec(`UPDATE hooks SET fire_count = 0, seen_stdout_offset = 0, seen_stderr_offset = 0 WHERE process_id IN (${ids})`);
  })();

  const worker = join(fileURLToPath(new URL('.', import.meta.url)), 'recover-worker.js');
  const results = [];
  for (let i = 0; i < runs; i += 1) {
    reset();
    results.push(JSON.parse(execFileSync(process.execPath, [worker, home], { encoding: 'utf8', timeout: 60_000 })));
  }
  await client.close();
  const last = results.at(-1);
  if (last.watching !== live || last.settled !== ended || last.hookActions !== ended * 2) {
    throw new Error(`recovery did not do the expected work: ${JSON.stringify(last)}`);
  }
  return {
    keys: { recover_10k_ms: round(median(results.map((r) => r.startupMs)), 1) },
    details: {
      recover_10k_ms_spread: spread(results.map((r) => r.startupMs)).map((x) => round(x, 1)),
      recover_until_hooks_done_ms: round(median(results.map((r) => r.untilHooksDoneMs)), 1),
      recover_rows: rows, recover_live: live, recover_ended_meanwhile: ended, recover_runs: runs,
    },
  };
}

// kill_tree_ms: stopping a tree of 50 processes that honour SIGTERM (a shell, 7 subshells, 42 sleeps) until every
// one is gone; beside it, a bare SIGTERM to the process group and polling /proc until it is empty.
import { spawn } from 'node:child_process';
import { benchAgent, groupMembers, makeHome, startSupervisor, trackGroup, waitUntil } from '../lib/chorus.js';
import { median, nowMs, round, spread } from '../lib/stats.js';

const TREE = 'for i in 1 2 3 4 5 6 7; do ( for j in 1 2 3 4 5 6; do sleep 1000 & done; wait ) & done; wait';
const TREE_SIZE = 50;

export default async function kill({ runs = 7 }) {
  const home = makeHome();
  const agent = benchAgent(home);
  const supervisor = await startSupervisor({ home });
  const chorus = [];
  const bare = [];
  for (let i = 0; i < runs; i += 1) {
    const record = await supervisor.manager.spawn({ agent, command: TREE });
    // The shim leads the group; the tree is the 50 below it.
    await waitUntil(() => groupMembers(record.pgid).length >= TREE_SIZE + 1, { what: 'the tree to be complete' });
    let t0 = nowMs();
    await supervisor.manager.kill({ id: record.id }, { by: 'bench' });
    chorus.push(nowMs() - t0);
    const left = groupMembers(record.pgid).length;
    if (left) throw new Error(`${left} processes of the tree survived the stop`);

    const child = spawn('/bin/bash', ['-c', TREE], { detached: true, stdio: 'ignore' });
    trackGroup(child.pid);
    await waitUntil(() => groupMembers(child.pid).length >= TREE_SIZE, { what: 'the bare tree to be complete' });
    t0 = nowMs();
    process.kill(-child.pid, 'SIGTERM');
    await waitUntil(() => groupMembers(child.pid).length === 0, { intervalMs: 1, what: 'the bare tree to go' });
    bare.push(nowMs() - t0);
  }
  await supervisor.close();
  return {
    keys: { kill_tree_ms: round(median(chorus), 1) },
    details: { kill_tree_ms_spread: spread(chorus).map((x) => round(x, 1)), kill_tree_bare_sigterm_ms: round(median(bare), 1), kill_runs: runs },
  };
}

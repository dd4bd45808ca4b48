import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { trackPid } from './child-cleanup.js';
import { parseJson, runCli } from './cli.js';
import { makeTempHome } from './temp-home.js';

/**
 * A fresh home with agent `alpha` bound to `channelId` and one process of it already running (started with the
 * CLI, killed after the test): whatever happens to a bot on this home, that process must keep running.
 */
export async function homeWithRunningProcess(channelId: string): Promise<{ home: string; pid: number }> {
  const home = makeTempHome();
  mkdirSync(join(home, 'agents', 'alpha'), { recursive: true });
  writeFileSync(join(home, 'agents', 'alpha', 'agent.json'), JSON.stringify({ channel_id: channelId }));
  const spawned = parseJson<{ pid: number }>(await runCli(home, ['spawn', '--json', '--agent', 'alpha', '--', 'sleep 60']));
  trackPid(spawned.pid, { group: true });
  return { home, pid: spawned.pid };
}

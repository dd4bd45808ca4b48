import { afterEach } from 'vitest';
import { openDatabase } from '../../src/store/database.js';
import { silentLogger } from '../../src/logger.js';
import { ProcessManager, type ProcessManagerOptions } from '../../src/process/process-manager.js';
import { makeTempHome } from './temp-home.js';
import { agentOwnerLoader } from '../../src/agents/agent-config.js';
import { trackPid } from './child-cleanup.js';
import { join } from 'node:path';

const managers: ProcessManager[] = [];

afterEach(async () => {
  for (const manager of managers.splice(0)) await manager.close();
});

export interface TestManager {
  home: string;
  manager: ProcessManager;
}

/** A supervising ProcessManager on a fresh home; every process it starts is SIGKILLed after the test. */
export async function startManager(options: Partial<ProcessManagerOptions> & { home?: string; supervise?: boolean } = {}): Promise<TestManager> {
  const home = options.home ?? makeTempHome();
  const db = openDatabase(join(home, 'chorus.db'));
  const manager = new ProcessManager({
    home, db, log: silentLogger(), pollIntervalMs: 100, resourceIntervalMs: 200, resourceWatchIntervalMs: 200, graceMs: 2_000, loadOwner: agentOwnerLoader(home), ...options,
  });
  manager.on('started', (p) => { if (p.pid) trackPid(p.pid, { group: true }); });
  manager.on('adopted', (p) => { if (p.pid) trackPid(p.pid, { group: true }); });
  managers.push(manager);
  if (options.supervise !== false) await manager.startSupervising();
  return { home, manager };
}

import { join } from 'node:path';

/** Where agents live under CHORUS_HOME; shared by the process core (run directories) and the agents layer. */
export function agentsDir(home: string): string {
  return join(home, 'agents');
}

export function agentDir(home: string, name: string): string {
  return join(agentsDir(home), name);
}

import { type Check } from './check.js';
import { databaseCheck, diskCheck, homeCheck, nodeCheck, procCheck, supervisorCheck } from './local-checks.js';
import { discordGuildCheck, discordTokenCheck, llmCheck } from './remote-checks.js';
import { sandboxCheck } from './sandbox-check.js';
import { spawnerCheck } from './spawner-check.js';

/** What `chorus doctor` runs, in this order. A new check is one small module and one entry here. */
export const DOCTOR_CHECKS: readonly Check[] = [
  nodeCheck,
  procCheck,
  homeCheck,
  databaseCheck,
  supervisorCheck,
  diskCheck,
  sandboxCheck,
  spawnerCheck,
  discordTokenCheck,
  discordGuildCheck,
  llmCheck,
];

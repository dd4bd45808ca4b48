import agentCommand from './agent.js';
import type { Command } from './command.js';
import processCommand from './process.js';

/** Every slash command, explicitly: a command missing here is neither registered nor routed. */
export const commands: readonly Command[] = [processCommand, agentCommand];

/** The body of the PUT that registers them. */
export function commandData(): ReturnType<Command['data']['toJSON']>[] {
  return commands.map((command) => command.data.toJSON());
}

import { Routes, type REST } from 'discord.js';
import { commandData } from '../../commands/index.js';

export interface RegisteredCommands {
  scope: 'guild' | 'global';
  names: string[];
}

/** Replaces the bot's commands (PUT overwrites the whole set): in one guild at once, or globally (slow to spread). */
export async function registerCommands(rest: REST, applicationId: string, guildId: string | undefined): Promise<RegisteredCommands> {
  const route = guildId ? Routes.applicationGuildCommands(applicationId, guildId) : Routes.applicationCommands(applicationId);
  const stored = await rest.put(route, { body: commandData() }) as Array<{ name: string }>;
  return { scope: guildId ? 'guild' : 'global', names: stored.map((command) => command.name) };
}

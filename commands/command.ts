import type {
  APIEmbed, ApplicationCommandOptionChoiceData, AutocompleteInteraction, ChatInputCommandInteraction,
  RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import type { AgentConfig } from '../src/agents/agent-config.js';
import type { CommandReply } from '../src/agents/front-end.js';
import type { ProcessSubcommand } from '../src/agents/process-commands.js';
import type { Logger } from '../src/logger.js';
import type { ProcessManager } from '../src/process/process-manager.js';

export type { ProcessSubcommand };

/** Option values as the slash command read them; runProcessCommand checks them again (console lines share it). */
export interface ProcessCommandOptions {
  filter?: string;
  pid?: number;
  force?: boolean;
  lines?: number;
  stream?: string;
  text?: string;
  eof?: boolean;
  signal?: string;
  command?: string;
  cwd?: string;
  name?: string;
  interactive?: boolean;
}

/** The agents layer's /process handlers (shared with console mode), scoped to one agent. */
export type ProcessCommandRunner = (
  agent: AgentConfig, actorId: string, subcommand: ProcessSubcommand, options: ProcessCommandOptions,
) => Promise<CommandReply>;

/** Which agent owns a channel, and the writes of /agent bind and unbind. */
export interface AgentDirectory {
  agentForChannel(channelId: string): AgentConfig | undefined;
  list(): AgentConfig[];
  /** The agent's config as stored, or the defaults of a new agent (`exists` false). */
  load(name: string): { agent: AgentConfig; exists: boolean };
  bind(name: string, channelId: string): AgentConfig;
  unbind(agent: AgentConfig): void;
}

export interface CommandServices {
  home: string;
  ownerIds: readonly string[];
  manager: ProcessManager;
  agents: AgentDirectory;
  runProcessCommand: ProcessCommandRunner;
  log: Logger;
}

export interface CommandContext {
  services: CommandServices;
  /** The channel's agent; never null when `needsAgent` said so (the router refuses first). */
  agent: AgentConfig | null;
  actorId: string;
  channelId: string;
  /** Throws NOT_AUTHORIZED unless the actor may change things of `agent` (null: owners and Manage Server only). */
  authorize(agent: AgentConfig | null, what: string): void;
  /** Acknowledges now, for work that may take longer than Discord's 3 s; the answer follows as an edit. */
  defer(): Promise<void>;
}

/** A reply, optionally with embeds (lists). */
export interface CommandResult extends CommandReply {
  embeds?: APIEmbed[];
}

/**
 * `read` runs for anyone who can use the channel; `write` needs an allowed user of the channel's agent, checked by
 * the router; `self` checks inside execute (e.g. /agent bind, against the agent being bound).
 */
export type CommandAccess = 'read' | 'write' | 'self';

export interface Command {
  data: { name: string; toJSON(): RESTPostAPIChatInputApplicationCommandsJSONBody };
  needsAgent(subcommand: string | null): boolean;
  access(subcommand: string | null): CommandAccess;
  /** Successful answers others in the channel should see; the rest (and every error) is ephemeral. */
  isPublic(subcommand: string | null): boolean;
  execute(interaction: ChatInputCommandInteraction, ctx: CommandContext): Promise<CommandResult>;
  autocomplete?(interaction: AutocompleteInteraction, ctx: CommandContext): Promise<ApplicationCommandOptionChoiceData<string | number>[]>;
}

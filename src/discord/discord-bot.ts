import { Client, Events, GatewayIntentBits, Options, type Interaction, type Message } from 'discord.js';
import type { AgentDirectory, CommandServices } from '../../commands/command.js';
import { commands } from '../../commands/index.js';
import { runProcessCommand, type ProcessCommandContext } from '../agents/process-commands.js';
import type { Config } from '../config.js';
import { AppError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ProcessManager } from '../process/process-manager.js';
import { FileAgentDirectory } from './agent-directory.js';
import { GatewayWatch } from './gateway-watch.js';
import { ChatHandler, type ChatPort } from './chat.js';
import { DiscordFrontEnd, type SchedulerTuning } from './discord-front-end.js';
import { InteractionRouter } from './interaction-router.js';
import { registerCommands } from './register-commands.js';

export type DiscordConfig = Pick<Config, 'discordToken' | 'discordApiUrl' | 'discordGuildId' | 'ownerIds' | 'registerCommandsOnStart' | 'chorusHome'>;

/** What the Discord side needs from the agents layer (an AgentRuntime). */
export interface DiscordAgents extends ChatPort {
  /** Shown by /process status, copied by /process restart. */
  readonly hooks: ProcessCommandContext['hooks'];
}

export interface DiscordBotOptions {
  config: DiscordConfig;
  log: Logger;
  manager: ProcessManager;
  /** The agents layer; or attach it later (it is built with this bot's front end). */
  agents?: DiscordAgents;
  /** Which agent owns a channel; by default the agent.json files under CHORUS_HOME. */
  directory?: AgentDirectory;
  scheduler?: SchedulerTuning;
  deferAfterMs?: number;
  readyTimeoutMs?: number;
}

export function createDiscordClient(apiUrl: string | undefined): Client {
  return new Client({
    intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent],
    rest: apiUrl ? { api: apiUrl } : {},
    allowedMentions: { parse: [] },
    makeCache: Options.cacheWithLimits({
      ...Options.DefaultMakeCacheSettings,
      MessageManager: 50,
      GuildMemberManager: { maxSize: 500, keepOverLimit: (member) => member.id === member.client.user.id },
      PresenceManager: 0,
      ReactionManager: 0,
      GuildEmojiManager: 0,
      GuildStickerManager: 0,
      VoiceStateManager: 0,
    }),
  });
}

/**
 * The Discord front end: one client, the interaction router, chat in agents' channels and live status messages.
 * REST works from construction, so the agents layer can show statuses while the gateway still connects.
 */
export class DiscordBot {
  readonly client: Client;
  readonly frontEnd: DiscordFrontEnd;
  readonly directory: AgentDirectory;
  private agents: DiscordAgents | undefined;
  private readonly router: InteractionRouter;
  private readonly chat: ChatHandler;
  private readonly log: Logger;
  private isClosed = false;
  private readonly gateway: GatewayWatch;
  /** Rejects when the gateway closes for good (a fatal close code), at start or later: the bot must stop. */
  readonly failed: Promise<never>;

  constructor(private readonly options: DiscordBotOptions) {
    const { config } = options;
    if (!config.discordToken) throw new AppError('CONFIG_INVALID', 'DISCORD_TOKEN must be set to run the Discord bot');
    this.log = options.log.child({ module: 'discord' });
    this.client = createDiscordClient(config.discordApiUrl);
    this.client.rest.setToken(config.discordToken);
    this.agents = options.agents;
    this.directory = options.directory ?? new FileAgentDirectory({ home: config.chorusHome, log: this.log });
    this.frontEnd = new DiscordFrontEnd({
      rest: this.client.rest, manager: options.manager, log: this.log, ...(options.scheduler && { scheduler: options.scheduler }),
    });
    const services: CommandServices = {
      home: config.chorusHome,
      ownerIds: config.ownerIds,
      manager: options.manager,
      agents: this.directory,
      runProcessCommand: (agent, actorId, subcommand, values) => {
        if (!this.agents) throw new AppError('INTERNAL', 'the agents layer is not attached yet', { userFacing: false });
        return runProcessCommand({
          manager: options.manager, hooks: this.agents.hooks, agent, actorId, log: this.log,
          statusMessageProblem: (id) => this.frontEnd.statusMessageProblem(id),
        }, subcommand, values);
      },
      log: this.log,
    };
    this.router = new InteractionRouter({
      commands, services, log: this.log, ...(options.deferAfterMs !== undefined && { deferAfterMs: options.deferAfterMs }),
    });
    this.chat = new ChatHandler({
      agents: this.directory, chat: () => this.agents, ownerIds: config.ownerIds, log: this.log,
      replyTarget: (id) => this.frontEnd.replyTarget(id),
    });
    let fail: (error: AppError) => void = () => {};
    this.failed = new Promise<never>((_, reject) => { fail = reject; });
    this.failed.catch(() => undefined);
    this.gateway = new GatewayWatch(this.client, { log: this.log, onFatal: (error) => fail(error) });
    this.client.on(Events.Error, (error) => this.log.error({ err: error }, 'discord client error'));
    this.client.on(Events.Warn, (message) => this.log.warn({ message }, 'discord client warning'));
    this.client.on(Events.InteractionCreate, this.onInteraction);
    this.client.on(Events.MessageCreate, this.onMessage);
  }

  attach(agents: DiscordAgents): void {
    this.agents = agents;
  }

  /**
   * Logs in, waits for the guilds, and registers the commands when CHORUS_REGISTER_COMMANDS is on. Every failure
   * (token refused, a fatal gateway close, no READY in time) rejects with one AppError naming the cause.
   */
  async start(): Promise<void> {
    const timeoutMs = this.options.readyTimeoutMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    const ready = new Promise<void>((resolve) => this.client.once(Events.ClientReady, () => resolve()));
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const last = this.gateway.lastClose;
        reject(new AppError('DISCORD_GATEWAY', `Discord did not get ready within ${Math.round(timeoutMs / 1000)} s (${last ? `the gateway keeps closing with ${last}` : 'no gateway close was seen'}); check DISCORD_API_URL, the network and the token`));
      }, timeoutMs);
    });
    const login = this.client.login(this.options.config.discordToken).catch((error: unknown) => {
      throw loginError(error);
    });
    // The race may end first (timeout, fatal close): login's own late rejection then has nobody else to go to.
    login.catch(() => undefined);
    this.gateway.attachAfterLogin();
    try {
      await Promise.race([Promise.all([login, ready]), timedOut, this.failed]);
    } finally {
      clearTimeout(timer);
    }
    const user = this.client.user;
    this.log.info({ user: user?.tag, guilds: this.client.guilds.cache.size }, 'discord ready');
    if (this.options.config.registerCommandsOnStart) {
      try {
        const registered = await registerCommands(this.client.rest, this.client.application!.id, this.options.config.discordGuildId);
        this.log.info(registered, 'slash commands registered');
      } catch (error) {
        this.log.error({ err: error }, 'could not register slash commands; run npm run deploy-commands');
      }
    }
  }

  /** Final status edits are flushed (within `timeoutMs`), then the client is destroyed; processes keep running. */
  async close(timeoutMs = 5_000): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    this.client.off(Events.InteractionCreate, this.onInteraction);
    this.client.off(Events.MessageCreate, this.onMessage);
    await this.frontEnd.close(timeoutMs);
    await this.client.destroy();
  }

  private readonly onInteraction = (interaction: Interaction): void => {
    void this.router.handle(interaction);
  };

  private readonly onMessage = (message: Message): void => {
    void this.chat.handle(message);
  };
}

/** A refused token (401 at /gateway/bot) says which key to fix; other login errors keep their own words. */
function loginError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  if ((error as { code?: unknown }).code === 'TokenInvalid') {
    return new AppError('DISCORD_GATEWAY', 'Discord rejected DISCORD_TOKEN (401); reset the token under Bot in the Discord Developer Portal and put it in .env', { cause: error });
  }
  return new AppError('DISCORD_GATEWAY', `login failed: ${errorMessage(error)}`, { cause: error });
}

/** Creates the bot, attaches the agents layer when given, and logs in. */
export async function startDiscordFrontEnd(options: DiscordBotOptions): Promise<DiscordBot> {
  const bot = new DiscordBot(options);
  try {
    await bot.start();
  } catch (error) {
    await bot.close(0);
    throw error;
  }
  return bot;
}

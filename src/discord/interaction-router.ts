import {
  MessageFlags, type AutocompleteInteraction, type ButtonInteraction, type ChatInputCommandInteraction, type Interaction,
  type ModalSubmitInteraction, type RepliableInteraction,
} from 'discord.js';
import type { Command, CommandContext, CommandResult, CommandServices } from '../../commands/command.js';
import type { AgentConfig } from '../agents/agent-config.js';
import { AppError, describeValue, isAppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { actorOfInteraction, assertAllowed, type Actor } from './authorization.js';
import { NO_MENTIONS, replyToPayload, type ReplyPayload } from './reply-format.js';
import { INPUT_MODAL_FIELD, inputModal, parseInputModal, parseStatusButton } from './status-embed.js';

/** Discord drops an interaction not answered within 3 s; defer well before that. */
export const DEFAULT_DEFER_AFTER_MS = 2_000;
const BUTTON_LOG_LINES = 40;

export interface InteractionRouterOptions {
  commands: readonly Command[];
  services: CommandServices;
  log: Logger;
  deferAfterMs?: number;
}

/** Answers an interaction exactly once: a reply, or a defer (on request or after `deferAfterMs`) and then an edit. */
class Responder {
  private deferring: Promise<unknown> | null = null;
  private isAnswered = false;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly interaction: RepliableInteraction, private readonly isEphemeral: boolean, deferAfterMs: number, private readonly log: Logger) {
    this.timer = setTimeout(() => void this.defer().catch(() => undefined), deferAfterMs);
    this.timer.unref();
  }

  defer(): Promise<void> {
    this.deferring ??= this.interaction.deferReply(this.isEphemeral ? { flags: MessageFlags.Ephemeral } : {});
    return this.deferring.then(() => undefined);
  }

  /** Never throws: a failed answer (expired token, Discord down) is logged. */
  async send(payload: ReplyPayload, isError: boolean): Promise<void> {
    clearTimeout(this.timer);
    if (this.isAnswered) return;
    this.isAnswered = true;
    const body = { ...payload, allowedMentions: NO_MENTIONS };
    try {
      if (!this.deferring) {
        await this.interaction.reply({ ...body, ...(isError || this.isEphemeral ? { flags: MessageFlags.Ephemeral } : {}) });
        return;
      }
      await this.deferring;
      if (isError && !this.isEphemeral) {
        // A public "thinking…" cannot turn ephemeral: remove it and answer privately.
        await this.interaction.deleteReply();
        await this.interaction.followUp({ ...body, flags: MessageFlags.Ephemeral });
        return;
      }
      await this.interaction.editReply(body);
    } catch (error) {
      this.log.warn({ err: error, interactionId: this.interaction.id }, 'could not answer an interaction');
    }
  }
}

function describeFailure(error: unknown, what: string): { text: string; isInternal: boolean } {
  if (isAppError(error) && error.userFacing) return { text: error.message, isInternal: false };
  return { text: `Something went wrong running ${what}; it was logged. Try again, or ask an operator to check the bot's log.`, isInternal: true };
}

function noAgent(): AppError {
  return new AppError('NO_AGENT_IN_CHANNEL', 'use /agent bind <name> to bind one');
}

function dmRefused(): AppError {
  return new AppError('GUILD_ONLY', 'Chorus commands work in a channel bound to an agent, not in direct messages');
}

/** Routes slash commands, autocomplete and status buttons: agent from the channel, authorization, answer in time. */
export class InteractionRouter {
  private readonly byName: Map<string, Command>;
  private readonly deferAfterMs: number;
  private readonly log: Logger;

  constructor(private readonly options: InteractionRouterOptions) {
    this.byName = new Map(options.commands.map((command) => [command.data.name, command]));
    this.deferAfterMs = options.deferAfterMs ?? DEFAULT_DEFER_AFTER_MS;
    this.log = options.log.child({ module: 'discord-router' });
  }

  /** Never throws. */
  async handle(interaction: Interaction): Promise<void> {
    try {
      if (interaction.isChatInputCommand()) await this.handleCommand(interaction);
      else if (interaction.isAutocomplete()) await this.handleAutocomplete(interaction);
      else if (interaction.isButton()) await this.handleButton(interaction);
      else if (interaction.isModalSubmit()) await this.handleInputModal(interaction);
    } catch (error) {
      this.log.error({ err: error, interactionId: interaction.id }, 'interaction handling failed');
    }
  }

  private context(interaction: Interaction, agent: AgentConfig | null, actor: Actor, defer: () => Promise<void>): CommandContext {
    const { services } = this.options;
    return {
      services,
      agent,
      actorId: actor.userId,
      channelId: interaction.channelId ?? '',
      authorize: (target, what) => assertAllowed(actor, target && this.fresh(target), services.ownerIds, what),
      defer,
    };
  }

  /** The allow-list as agent.json says now, not as a cache remembers it. */
  private fresh(agent: AgentConfig): AgentConfig {
    try {
      return this.options.services.agents.load(agent.name).agent;
    } catch {
      return agent;
    }
  }

  private channelAgent(interaction: Interaction): AgentConfig | null {
    return interaction.channelId ? this.options.services.agents.agentForChannel(interaction.channelId) ?? null : null;
  }

  private async handleCommand(interaction: ChatInputCommandInteraction): Promise<void> {
    const command = this.byName.get(interaction.commandName);
    const subcommand = interaction.options.getSubcommand(false);
    const what = `/${interaction.commandName}${subcommand ? ` ${subcommand}` : ''}`;
    const responder = new Responder(interaction, !command?.isPublic(subcommand), this.deferAfterMs, this.log);
    try {
      if (!command) throw new AppError('INVALID_INPUT', `${what} is not a Chorus command any more; ask an operator to run npm run deploy-commands`);
      if (!interaction.inGuild()) throw dmRefused();
      const agent = this.channelAgent(interaction);
      if (command.needsAgent(subcommand) && !agent) throw noAgent();
      const actor = actorOfInteraction(interaction);
      const ctx = this.context(interaction, agent, actor, () => responder.defer());
      if (command.access(subcommand) === 'write') ctx.authorize(agent, what);
      const result = await command.execute(interaction, ctx);
      await responder.send(toPayload(result), result.isError ?? false);
    } catch (error) {
      const failure = describeFailure(error, what);
      if (failure.isInternal) {
        this.log.error({
          err: error, command: what, options: interaction.options.data, userId: interaction.user.id, channelId: interaction.channelId,
        }, 'command failed');
      }
      await responder.send({ content: failure.text }, true);
    }
  }

  private async handleAutocomplete(interaction: AutocompleteInteraction): Promise<void> {
    const command = this.byName.get(interaction.commandName);
    let choices: Awaited<ReturnType<NonNullable<Command['autocomplete']>>> = [];
    try {
      const agent = interaction.inGuild() ? this.channelAgent(interaction) : null;
      if (command?.autocomplete && agent) {
        const ctx = this.context(interaction, agent, actorOfInteraction(interaction), async () => undefined);
        choices = (await command.autocomplete(interaction, ctx)).slice(0, 25);
      }
    } catch (error) {
      this.log.error({ err: error, command: interaction.commandName }, 'autocomplete failed');
    }
    await interaction.respond(choices).catch((error: unknown) => {
      this.log.warn({ err: error, interactionId: interaction.id }, 'could not answer autocomplete');
    });
  }

  private async handleButton(interaction: ButtonInteraction): Promise<void> {
    const button = parseStatusButton(interaction.customId);
    // The Input button answers with a modal, which must be the first answer: no deferring responder for it.
    let responderOf: Responder | undefined;
    const responder = {
      get: () => (responderOf ??= new Responder(interaction, true, this.deferAfterMs, this.log)),
      send: (payload: ReplyPayload, isError: boolean) => responder.get().send(payload, isError),
      defer: () => responder.get().defer(),
    };
    if (button?.action !== 'input') responder.get();
    if (!button) {
      // Every button this bot receives is one of its own components: an unknown id is forged or from an older version.
      this.log.warn({ button: interaction.customId, userId: interaction.user.id }, 'unknown button');
      await responder.send({ content: `This button is not one Chorus knows (${describeValue(interaction.customId)}); use /process in the channel instead.` }, true);
      return;
    }
    const what = button.action === 'kill' ? 'the Kill button' : button.action === 'input' ? 'the Input button' : button.action === 'restart' ? 'the Restart button' : 'the Logs button';
    try {
      if (!interaction.inGuild()) throw dmRefused();
      const agent = this.channelAgent(interaction);
      if (!agent) throw noAgent();
      const { services } = this.options;
      const record = services.manager.find({ id: button.id });
      if (!record || record.agentName !== agent.name || record.pid === null) {
        throw new AppError('PROCESS_NOT_FOUND', `process #${button.id} is not one of agent ${agent.name}'s`);
      }
      // Checked on every press: the allow-list may have changed since the message was posted.
      assertAllowed(actorOfInteraction(interaction), this.fresh(agent), services.ownerIds, what);
      let result: CommandResult;
      if (button.action === 'input') {
        if (record.status !== 'running') throw new AppError('PROCESS_NOT_RUNNING', `pid ${record.pid} has already ended (${record.status})`);
        if (!record.isInteractive) throw new AppError('NOT_INTERACTIVE', `pid ${record.pid} reads no input`);
        await interaction.showModal(inputModal(record));
        return;
      }
      if (button.action === 'restart') {
        await responder.defer();
        result = await services.runProcessCommand(agent, interaction.user.id, 'restart', { pid: record.pid });
      } else if (button.action === 'kill') {
        if (record.status !== 'running' && record.status !== 'restarting') {
          result = { text: `pid ${record.pid} has already ended (${record.status}).` };
        } else {
          await responder.defer();
          result = await services.runProcessCommand(agent, interaction.user.id, 'kill', { pid: record.pid });
        }
      } else {
        result = await services.runProcessCommand(agent, interaction.user.id, 'logs', { pid: record.pid, lines: BUTTON_LOG_LINES });
      }
      await responder.send(toPayload(result), result.isError ?? false);
    } catch (error) {
      const failure = describeFailure(error, what);
      if (failure.isInternal) this.log.error({ err: error, button: interaction.customId, userId: interaction.user.id }, 'button failed');
      await responder.send({ content: failure.text }, true);
    }
  }

  /** The Input modal's text, typed into the process; allow-list and ownership checked again. */
  private async handleInputModal(interaction: ModalSubmitInteraction): Promise<void> {
    const responder = new Responder(interaction, true, this.deferAfterMs, this.log);
    const what = 'the Input form';
    try {
      const id = parseInputModal(interaction.customId);
      if (id === undefined) throw new AppError('INVALID_INPUT', `this form is not one Chorus knows (${describeValue(interaction.customId)}); use /process input instead`);
      if (!interaction.inGuild()) throw dmRefused();
      const agent = this.channelAgent(interaction);
      if (!agent) throw noAgent();
      const { services } = this.options;
      const record = services.manager.find({ id });
      if (!record || record.agentName !== agent.name || record.pid === null) throw new AppError('PROCESS_NOT_FOUND', `process #${id} is not one of agent ${agent.name}'s`);
      assertAllowed(actorOfInteraction(interaction), this.fresh(agent), services.ownerIds, what);
      const text = interaction.fields.getTextInputValue(INPUT_MODAL_FIELD);
      await responder.defer();
      const result = await services.runProcessCommand(agent, interaction.user.id, 'input', { pid: record.pid, text });
      await responder.send(toPayload(result), result.isError ?? false);
    } catch (error) {
      const failure = describeFailure(error, what);
      if (failure.isInternal) this.log.error({ err: error, modal: interaction.customId, userId: interaction.user.id }, 'input form failed');
      await responder.send({ content: failure.text }, true);
    }
  }
}

function toPayload(result: CommandResult): ReplyPayload {
  const payload = replyToPayload(result);
  if (result.embeds?.length) {
    payload.embeds = result.embeds;
    if (!result.text) payload.content = '';
  }
  return payload;
}

import { MessageType, type Message } from 'discord.js';
import type { AgentDirectory } from '../../commands/command.js';
import { errorMessage, isAppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { actorOfMessage, isAllowed } from './authorization.js';
import { NO_MENTIONS } from './reply-format.js';

export interface IncomingChat {
  agentName: string;
  authorId: string;
  content: string;
  messageId?: string;
  replyToMessageId?: string;
}

/** The agents layer's entry for chat: a message starts a branch, a reply to the bot continues one. */
export interface ChatPort {
  handleMessage(input: IncomingChat): Promise<unknown>;
}

export interface ChatHandlerOptions {
  agents: AgentDirectory;
  chat: () => ChatPort | undefined;
  ownerIds: readonly string[];
  log: Logger;
  /** Maps a reply to one part of a split answer onto the id the branch knows. */
  replyTarget?: (messageId: string) => string;
  /** A refused user hears it once per channel in this period, not on every message. */
  refusalCooldownMs?: number;
  now?: () => number;
}

const CHAT_TYPES: readonly MessageType[] = [MessageType.Default, MessageType.Reply];

/** Messages in agents' channels: who may talk, what reaches the agent. */
export class ChatHandler {
  private readonly refusedAt = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly options: ChatHandlerOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Never throws. */
  async handle(message: Message): Promise<void> {
    try {
      await this.route(message);
    } catch (error) {
      this.options.log.error({ err: error, messageId: message.id, channelId: message.channelId }, 'chat message handling failed');
    }
  }

  private async route(message: Message): Promise<void> {
    if (message.author.bot || message.webhookId || message.system || !CHAT_TYPES.includes(message.type)) return;
    if (!message.inGuild()) return;
    const agent = this.options.agents.agentForChannel(message.channelId);
    if (!agent) return;
    const content = [message.content, ...message.attachments.map((file) => `[attachment: ${file.name} ${file.url}]`)].join('\n').trim();
    if (!content) return;
    // The allow-list as agent.json says now: a removed user is refused from the next message on.
    const current = this.options.agents.load(agent.name).agent;
    if (!isAllowed(actorOfMessage(message), current, this.options.ownerIds)) {
      await this.refuse(message, agent.name);
      return;
    }
    const chat = this.options.chat();
    if (!chat) {
      this.options.log.warn({ agent: agent.name }, 'a chat message arrived before the agents layer was attached');
      return;
    }
    const reference = message.reference?.messageId;
    const input: IncomingChat = { agentName: agent.name, authorId: message.author.id, content, messageId: message.id };
    if (reference) input.replyToMessageId = this.options.replyTarget?.(reference) ?? reference;
    try {
      await chat.handleMessage(input);
    } catch (error) {
      this.options.log.error({ err: error, agent: agent.name, messageId: message.id }, 'the agent could not handle a message');
      const text = isAppError(error) && error.userFacing ? errorMessage(error) : 'Something went wrong; it was logged.';
      await message.reply({ content: `⚠️ ${text}`, allowedMentions: NO_MENTIONS }).catch(() => undefined);
    }
  }

  private async refuse(message: Message, agentName: string): Promise<void> {
    const key = `${message.channelId}:${message.author.id}`;
    const last = this.refusedAt.get(key);
    if (last !== undefined && this.now() - last < (this.options.refusalCooldownMs ?? 10 * 60_000)) return;
    this.refusedAt.set(key, this.now());
    await message.reply({
      content: `You are not on agent **${agentName}**'s allow-list, so it will not answer you. `
        + `Ask an operator to add your user id to allowed_user_ids in agents/${agentName}/agent.json.`,
      allowedMentions: NO_MENTIONS,
    });
  }
}

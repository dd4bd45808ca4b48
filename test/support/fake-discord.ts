import type { EventEmitter } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { FakeGateway, type GatewayCounters } from './fake-discord/gateway.js';
import type { Payload, UploadedFile } from './fake-discord/http.js';
import {
  InteractionBuilder, type AutocompleteInput, type BuiltInteraction, type ButtonInput, type CommandInput, type ModalSubmitInput,
} from './fake-discord/interaction-builder.js';
import type { ChannelInfo, FakeUser, RoleInfo } from './fake-discord/payloads.js';
import { dispatchMessage, readyPayloads } from './fake-discord/dispatch.js';
import { RestRoutes } from './fake-discord/routes.js';
import { SnowflakeFactory } from './fake-discord/snowflake.js';
import {
  DEFAULT_EVERYONE_PERMISSIONS, DiscordState,
  type InteractionRecord, type InteractionReply, type InteractionResponseRecord,
  type LoggedRequest, type MessageEdit, type RejectedRequest, type ResolvedConfig, type StateEvents, type StoredMessage,
} from './fake-discord/state.js';

export { DISCORD_ERRORS } from './fake-discord/errors.js';
export type { Payload, UploadedFile } from './fake-discord/http.js';
export type {
  ActorInput, AutocompleteInput, ButtonInput, CommandInput, ModalSubmitInput, OptionValue, RawOption,
} from './fake-discord/interaction-builder.js';
export type { ChannelInfo, RoleInfo, StoredAttachment } from './fake-discord/payloads.js';
export type {
  InteractionReply, InteractionResponseRecord, LoggedRequest, MessageEdit, MessageVersion, RejectedRequest, StoredMessage,
} from './fake-discord/state.js';

export interface FakeDiscordOptions {
  token?: string;
  guildId?: string;
  botUserId?: string;
  applicationId?: string;
  ownerUserId?: string;
  channels?: ChannelInfo[];
  roles?: RoleInfo[];
  /** Enforce `editLimit` on PATCH /channels/:id/messages/:id, per channel (fixed window). */
  enforceRateLimit?: boolean;
  editLimit?: { count: number; windowMs: number };
  /**
   * true (default): edit responses carry the real bucket state, so discord.js queues by itself (`rateLimited`
   * fires, few or no 429s). false: they advertise a roomy bucket, so only the bot's own pacing avoids 429s.
   */
  advertiseEditLimit?: boolean;
  heartbeatIntervalMs?: number;
}

export interface UserMessageInput {
  channelId?: string;
  content: string;
  authorId?: string;
  username?: string;
  roles?: string[];
  referencedMessageId?: string;
  mentionsBot?: boolean;
  files?: Array<{ name: string; data: Buffer | string; contentType?: string }>;
}

export interface WaitOptions {
  timeoutMs?: number;
}

export interface ReplyWaitOptions extends WaitOptions {
  /** Resolve on the first reply state that passes; default: the first visible one (not a bare defer). */
  until?: (reply: InteractionReply) => boolean;
}

export interface SentInteraction {
  id: string;
  token: string;
  payload: Payload;
  waitForReply(options?: ReplyWaitOptions): Promise<InteractionReply>;
  responses(): InteractionResponseRecord[];
}

export interface GatewayStats extends GatewayCounters {
  connectedSessions: number;
}

const DEFAULT_TIMEOUT_MS = 5_000;
const MANAGE_GUILD = '32';

/** A local Discord (REST + gateway) that the real discord.js client can log in to. */
export class FakeDiscord {
  readonly apiUrl: string;
  readonly gatewayUrl: string;
  readonly token: string;
  readonly guildId: string;
  readonly botUserId: string;
  readonly applicationId: string;
  readonly ownerUserId: string;
  readonly channels: readonly ChannelInfo[];
  readonly roles: readonly RoleInfo[];
  /** The first text channel. */
  readonly channelId: string;
  /** messageCreate, messageEdit, messageDelete, interactionResponse, rateLimited (and an internal 'change'). */
  readonly events: EventEmitter<StateEvents>;

  private readonly state: DiscordState;
  private readonly gateway: FakeGateway;
  private readonly routes: RestRoutes;
  private readonly builder: InteractionBuilder;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly pendingWaits = new Set<(reason: Error) => void>();
  private isClosed = false;

  private constructor(private readonly server: Server, port: number, options: FakeDiscordOptions) {
    const ids = new SnowflakeFactory();
    const baseUrl = `http://127.0.0.1:${port}`;
    const roles = options.roles ?? [{ id: ids.next(), name: 'Operators', permissions: MANAGE_GUILD }];
    const channels = options.channels ?? [{ id: ids.next(), name: 'general' }, { id: ids.next(), name: 'agent-alpha' }];
    const config: ResolvedConfig = {
      token: options.token ?? 'test-token',
      guildId: options.guildId ?? ids.next(),
      guildName: 'Chorus Test Guild',
      applicationId: options.applicationId ?? options.botUserId ?? ids.next(),
      bot: { id: options.botUserId ?? ids.next(), username: 'chorus', globalName: 'Chorus', isBot: true },
      owner: { id: options.ownerUserId ?? ids.next(), username: 'owner', globalName: 'Owner', isBot: false },
      botRoleId: ids.next(),
      channels,
      roles,
      everyonePermissions: DEFAULT_EVERYONE_PERMISSIONS,
      enforceRateLimit: options.enforceRateLimit ?? false,
      advertiseEditLimit: options.advertiseEditLimit ?? true,
      editLimit: options.editLimit ?? { count: 5, windowMs: 5_000 },
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 41_250,
      baseUrl,
    };
    if (channels.length === 0) throw new Error('FakeDiscord needs at least one channel');
    this.state = new DiscordState(config);
    this.gateway = new FakeGateway({
      token: config.token,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      readyPayloads: (session) => readyPayloads(this.state, session),
      memberChunk: () => [...this.state.memberRoles.keys()]
        .map((id) => this.state.users.get(id))
        .filter((user): user is FakeUser => user !== undefined)
        .map((user) => this.state.memberPayloadOf(user, true)),
      onChange: () => this.state.changed(),
    });
    this.routes = new RestRoutes(this.state, this.gateway);
    this.builder = new InteractionBuilder(this.state);
    this.apiUrl = `${baseUrl}/api`;
    this.gatewayUrl = baseUrl.replace(/^http/, 'ws');
    this.token = config.token;
    this.guildId = config.guildId;
    this.botUserId = config.bot.id;
    this.applicationId = config.applicationId;
    this.ownerUserId = config.owner.id;
    this.channels = channels;
    this.roles = roles;
    this.channelId = channels[0]?.id ?? '';
    this.events = this.state.events;
    server.on('request', (request, response) => {
      this.routes.handle(request, response).catch((error: unknown) => {
        if (!response.headersSent) response.writeHead(500, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ message: '500: Internal Server Error', code: 0, detail: String(error) }));
      });
    });
    server.on('upgrade', (request, socket, head) => {
      this.wss.handleUpgrade(request, socket, head, (ws) => this.gateway.accept(ws));
    });
  }

  /** Starts a fake on 127.0.0.1 with a free port. */
  static async start(options: FakeDiscordOptions = {}): Promise<FakeDiscord> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return new FakeDiscord(server, (server.address() as AddressInfo).port, options);
  }

  /** Closes every socket and the HTTP server; pending waits reject. */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const cancel of [...this.pendingWaits]) cancel(new Error('FakeDiscord was closed'));
    this.gateway.closeAll();
    this.wss.close();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  // ---- observations ------------------------------------------------------------------------------

  /** Requests that matched no route (answered 404); a healthy test leaves this empty. */
  get unhandled(): readonly LoggedRequest[] {
    return this.state.unhandled;
  }

  /** Requests answered with a 4xx/5xx other than 429 (validation, 10008, 30046, 40060, ...). */
  get rejected(): readonly RejectedRequest[] {
    return this.state.rejected;
  }

  get requests(): readonly LoggedRequest[] {
    return this.state.requests;
  }

  /** 429s served by the edit rate limit. */
  get rateLimitHits(): number {
    return this.state.rateLimitHits;
  }

  get gatewayStats(): GatewayStats {
    return { ...this.gateway.counters, connectedSessions: this.gateway.connectedSessions().length };
  }

  /** Commands stored by PUT; `scope` is 'global' or a guild id (default: the fake's guild). */
  registeredCommands(scope: string = this.guildId): Payload[] {
    return this.state.commands.get(scope) ?? [];
  }

  messages(channelId: string = this.channelId, options: { includeDeleted?: boolean } = {}): StoredMessage[] {
    return (this.state.channelMessages.get(channelId) ?? [])
      .map((id) => this.state.messagesById.get(id))
      .filter((record) => record !== undefined && (options.includeDeleted || !record.isDeleted))
      .map((record) => this.state.snapshot(record!));
  }

  /** Any message by id, including ephemeral and deleted ones. */
  message(messageId: string): StoredMessage | undefined {
    const record = this.state.messagesById.get(messageId);
    return record && this.state.snapshot(record);
  }

  /** Accepted edits, oldest first; `via: 'channel'` are PATCH /channels/:id/messages/:id. */
  edits(channelId?: string): MessageEdit[] {
    return this.state.edits.filter((edit) => channelId === undefined || edit.channelId === channelId);
  }

  /** Accepted PATCH /channels/:id/messages/:id in a channel. */
  editCount(channelId: string = this.channelId): number {
    return this.edits(channelId).filter((edit) => edit.via === 'channel').length;
  }

  /** The most channel edits accepted within any sliding window of `windowMs` in a channel. */
  maxEditsInWindow(channelId: string, windowMs: number): number {
    const times = this.edits(channelId).filter((edit) => edit.via === 'channel').map((edit) => edit.at);
    let best = 0;
    for (let start = 0, end = 0; end < times.length; end += 1) {
      while ((times[end] ?? 0) - (times[start] ?? 0) >= windowMs) start += 1;
      best = Math.max(best, end - start + 1);
    }
    return best;
  }

  interactionResponses(interactionId: string): InteractionResponseRecord[] {
    return [...(this.state.interactions.get(interactionId)?.responses ?? [])];
  }

  interactionReply(interactionId: string): InteractionReply | undefined {
    const interaction = this.state.interactions.get(interactionId);
    return interaction && this.state.replyOf(interaction);
  }

  // ---- waiting ----------------------------------------------------------------------------------

  waitForBot(options: WaitOptions = {}): Promise<void> {
    return this.waitUntil('a bot to identify on the gateway', options, () => (this.gateway.connectedSessions().length > 0 ? true : undefined)).then(() => undefined);
  }

  waitForReply(interactionId: string, options: ReplyWaitOptions = {}): Promise<InteractionReply> {
    const until = options.until ?? ((reply: InteractionReply) => reply.isVisible);
    return this.waitUntil(`a reply to interaction ${interactionId}`, options, () => {
      const reply = this.interactionReply(interactionId);
      return reply && until(reply) ? reply : undefined;
    });
  }

  /** The first message (already stored or arriving later, any channel, ephemeral included) that passes. */
  waitForMessage(predicate: (message: StoredMessage) => boolean, options: WaitOptions = {}): Promise<StoredMessage> {
    return this.waitUntil('a matching message', options, () => {
      for (const record of this.state.messagesById.values()) {
        const snapshot = this.state.snapshot(record);
        if (predicate(snapshot)) return snapshot;
      }
      return undefined;
    });
  }

  /** The first accepted edit (past or future) that passes. */
  waitForEdit(predicate: (edit: MessageEdit) => boolean, options: WaitOptions = {}): Promise<MessageEdit> {
    return this.waitUntil('a matching edit', options, () => this.state.edits.find(predicate));
  }

  // ---- test controls ----------------------------------------------------------------------------

  /** Deletes a message as a moderator would: later GET/PATCH/DELETE answer 10008 Unknown Message. */
  deleteMessage(channelId: string, messageId: string): void {
    const record = this.state.liveMessage(messageId);
    if (!record || record.channelId !== channelId) throw new Error(`no live message ${messageId} in channel ${channelId}`);
    this.state.deleteMessage(record);
    dispatchMessage(this.state, this.gateway, 'MESSAGE_DELETE', record);
  }

  /** Treats a message as over an hour old with its edit budget spent: later edits answer 400/30046. */
  markOld(messageId: string): void {
    const record = this.state.messagesById.get(messageId);
    if (!record) throw new Error(`no message ${messageId}`);
    record.isOld = true;
  }

  /** Makes an interaction's token stale: callbacks answer 10062, webhook calls 50027. */
  expireInteraction(interactionId: string): void {
    const interaction = this.state.interactions.get(interactionId);
    if (!interaction) throw new Error(`no interaction ${interactionId}`);
    interaction.isExpired = true;
  }

  /** Closes gateway sockets with `code`; 4000 lets discord.js resume, 1000 ends the session. */
  dropGateway(code = 4000): void {
    this.gateway.drop(code);
  }

  /**
   * Closes every gateway connection with `code`, now and at each later IDENTIFY/RESUME (4002 keeps discord.js
   * retrying, 4004 and 4010-4014 are fatal to it); `null` lets connections through again.
   */
  closeEveryConnection(code: number | null): void {
    this.gateway.rejectConnections(code);
  }

  /**
   * A payload discord.js cannot parse: a button interaction whose message has `thread: null`, or an autocomplete
   * with no `data`. Delivered like any interaction.
   */
  sendMalformedInteraction(kind: 'button-thread-null' | 'autocomplete-no-data', input: { messageId?: string; channelId?: string } = {}): SentInteraction {
    if (kind === 'button-thread-null') {
      if (!input.messageId) throw new Error('sendMalformedInteraction: button-thread-null needs a messageId');
      const built = this.builder.button({ customId: 'proc:logs:1', messageId: input.messageId, userId: this.ownerUserId });
      (built.payload.message as Payload).thread = null;
      return this.register(built);
    }
    const built = this.builder.autocomplete({ name: 'process', subcommand: 'kill', focused: 'pid', channelId: input.channelId ?? this.channelId, userId: this.ownerUserId });
    delete built.payload.data;
    return this.register(built);
  }

  /** Sends op 7 Reconnect; discord.js reconnects and resumes. */
  requestReconnect(): void {
    this.gateway.requestReconnect();
  }

  /** The DM channel between the bot and a user (created on first use). */
  dmChannelId(userId: string): string {
    this.state.ensureUser(userId);
    return this.state.dmChannelFor(userId);
  }

  // ---- events to the bot ------------------------------------------------------------------------

  sendCommand(input: CommandInput): SentInteraction {
    return this.register(this.builder.command(input));
  }

  sendAutocomplete(input: AutocompleteInput): SentInteraction {
    return this.register(this.builder.autocomplete(input));
  }

  sendButton(input: ButtonInput): SentInteraction {
    return this.register(this.builder.button(input));
  }

  /** A user submitting a modal the bot showed (its `customId`) with these text input values. */
  sendModalSubmit(input: ModalSubmitInput): SentInteraction {
    return this.register(this.builder.modalSubmit(input));
  }

  /** Sends any interaction payload; `id`, `token` and `application_id` are filled in when missing. */
  sendInteraction(payload: Payload): SentInteraction {
    return this.register(this.builder.raw(payload));
  }

  /** A user's message as MESSAGE_CREATE (a reply when `referencedMessageId` is set). */
  sendMessage(input: UserMessageInput): StoredMessage {
    const channelId = input.channelId ?? this.channelId;
    if (!this.state.isKnownChannel(channelId)) throw new Error(`sendMessage: unknown channel ${channelId}`);
    if (input.referencedMessageId && !this.state.liveMessage(input.referencedMessageId)) {
      throw new Error(`sendMessage: no live message ${input.referencedMessageId} to reply to`);
    }
    this.assertBotSession('MESSAGE_CREATE');
    const author = this.state.ensureUser(input.authorId ?? this.ownerUserId, input.username);
    const isGuild = this.state.guildChannel(channelId) !== undefined;
    const roles = input.roles ?? this.state.memberRoles.get(author.id) ?? [];
    if (isGuild) this.state.memberRoles.set(author.id, roles);
    const files: UploadedFile[] = (input.files ?? []).map((file, index) => ({
      field: `files[${index}]`,
      filename: file.name,
      contentType: file.contentType ?? 'application/octet-stream',
      data: Buffer.from(file.data),
    }));
    const body: Payload = { content: input.content };
    if (input.referencedMessageId) body.message_reference = { message_id: input.referencedMessageId };
    const record = this.state.createMessage({
      channelId, author, authorRoles: isGuild ? roles : null, body, files, source: 'user',
      extraMentions: input.mentionsBot ? [this.state.config.bot] : [],
    });
    dispatchMessage(this.state, this.gateway, 'MESSAGE_CREATE', record);
    return this.state.snapshot(record);
  }

  // ---- internals --------------------------------------------------------------------------------

  private register({ kind, payload, user, channelId, componentMessageId }: BuiltInteraction): SentInteraction {
    this.assertBotSession('INTERACTION_CREATE');
    const record: InteractionRecord = {
      id: String(payload.id),
      token: String(payload.token),
      kind,
      channelId,
      guildId: typeof payload.guild_id === 'string' ? payload.guild_id : null,
      user,
      payload,
      componentMessageId,
      callbackType: null,
      replyMessageId: null,
      isOriginalEditedAfterAck: false,
      choices: null,
      modal: null,
      followUpIds: [],
      responses: [],
      isExpired: false,
    };
    this.state.interactions.set(record.id, record);
    this.state.interactionIdsByToken.set(record.token, record.id);
    this.gateway.dispatch('INTERACTION_CREATE', payload);
    return {
      id: record.id,
      token: record.token,
      payload,
      waitForReply: (options) => this.waitForReply(record.id, options),
      responses: () => this.interactionResponses(record.id),
    };
  }

  /** Events go to sessions that are connected or resumable; with none, the test forgot to wait for the bot. */
  private assertBotSession(event: string): void {
    if (this.gateway.liveSessions().length === 0) {
      throw new Error(`FakeDiscord: no bot session to deliver ${event} to; await waitForBot() (or clientReady) first`);
    }
  }

  private waitUntil<T>(what: string, options: WaitOptions, check: () => T | undefined): Promise<T> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const first = check();
    if (first !== undefined) return Promise.resolve(first);
    if (this.isClosed) return Promise.reject(new Error(`FakeDiscord is closed; cannot wait for ${what}`));
    return new Promise<T>((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.state.events.off('change', onChange);
        this.pendingWaits.delete(cancel);
      };
      const cancel = (reason: Error): void => {
        finish();
        reject(reason);
      };
      const onChange = (): void => {
        let value: T | undefined;
        try {
          value = check();
        } catch (error) {
          cancel(error instanceof Error ? error : new Error(String(error)));
          return;
        }
        if (value === undefined) return;
        finish();
        resolve(value);
      };
      const timer = setTimeout(() => cancel(new Error(`FakeDiscord: timed out after ${timeoutMs} ms waiting for ${what}\n${this.describe()}`)), timeoutMs);
      this.pendingWaits.add(cancel);
      this.state.events.on('change', onChange);
    });
  }

  /** A short account of what happened so far, for timeout messages. */
  describe(): string {
    const lines: string[] = [];
    const stats = this.gatewayStats;
    lines.push(`gateway: ${stats.connectedSessions} connected, ${stats.identifies} identify, ${stats.resumes} resume`);
    for (const interaction of [...this.state.interactions.values()].slice(-5)) {
      const responses = interaction.responses.map((response) => `${response.kind}${response.callbackType ?? ''}→${response.status}`);
      lines.push(`interaction ${interaction.id} (${interaction.kind}): [${responses.join(', ')}]`);
    }
    for (const record of [...this.state.messagesById.values()].slice(-5)) {
      lines.push(`message ${record.id} in ${record.channelId} by ${record.authorId}: ${JSON.stringify(record.content.slice(0, 80))} edits=${record.editCount}${record.isDeleted ? ' deleted' : ''}`);
    }
    for (const request of this.state.unhandled.slice(-5)) lines.push(`unhandled: ${request.method} ${request.path}`);
    for (const request of this.state.rejected.slice(-5)) lines.push(`rejected: ${request.method} ${request.path} ${request.status} ${request.code} ${request.message}`);
    return lines.join('\n');
  }
}

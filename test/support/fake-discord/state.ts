import { EventEmitter } from 'node:events';
import { PermissionFlagsBits, PermissionsBitField } from 'discord.js';
import { isPayload, type Payload, type UploadedFile } from './http.js';
import {
  attachmentPayload, isoTime, memberPayload, userPayload,
  type ChannelInfo, type FakeUser, type RoleInfo, type StoredAttachment,
} from './payloads.js';
import { SnowflakeFactory } from './snowflake.js';

export const EPHEMERAL_FLAG = 64;
export const LOADING_FLAG = 128;
const SUPPRESS_EMBEDS_FLAG = 4;

export const DEFAULT_EVERYONE_PERMISSIONS = (
  PermissionFlagsBits.ViewChannel | PermissionFlagsBits.SendMessages | PermissionFlagsBits.ReadMessageHistory
  | PermissionFlagsBits.EmbedLinks | PermissionFlagsBits.AttachFiles | PermissionFlagsBits.AddReactions
  | PermissionFlagsBits.UseApplicationCommands
).toString();

export interface ResolvedConfig {
  token: string;
  guildId: string;
  guildName: string;
  applicationId: string;
  bot: FakeUser;
  owner: FakeUser;
  botRoleId: string;
  channels: ChannelInfo[];
  roles: RoleInfo[];
  everyonePermissions: string;
  enforceRateLimit: boolean;
  advertiseEditLimit: boolean;
  editLimit: { count: number; windowMs: number };
  heartbeatIntervalMs: number;
  baseUrl: string;
}

export type MessageSource = 'bot' | 'user' | 'interaction';

export interface MessageVersion {
  content: string;
  embeds: Payload[];
  components: Payload[];
  attachmentNames: string[];
  at: number;
}

/** A message as a test sees it: current state plus its edit history. */
export interface StoredMessage {
  id: string;
  channelId: string;
  guildId: string | null;
  authorId: string;
  content: string;
  embeds: Payload[];
  components: Payload[];
  attachments: StoredAttachment[];
  flags: number;
  type: number;
  source: MessageSource;
  isEphemeral: boolean;
  isDeleted: boolean;
  isOld: boolean;
  editCount: number;
  history: MessageVersion[];
  interactionId: string | null;
  referencedMessageId: string | null;
  createdAt: number;
  editedAt: number | null;
}

/** The mutable record behind a StoredMessage; only the fake's modules touch it. */
export interface MessageRecord extends StoredMessage {
  author: FakeUser;
  authorRoles: string[] | null;
  mentions: FakeUser[];
  webhookId: string | null;
  interactionMetadata: Payload | null;
}

export interface MessageEdit {
  channelId: string;
  messageId: string;
  via: 'channel' | 'interaction';
  at: number;
  message: StoredMessage;
}

export type InteractionKind = 'command' | 'autocomplete' | 'button' | 'modal' | 'raw';

export type InteractionResponseKind =
  | 'callback' | 'get-original' | 'edit-original' | 'delete-original' | 'followup' | 'edit-followup' | 'delete-followup';

/** One request the bot made about an interaction, with what the fake answered. */
export interface InteractionResponseRecord {
  interactionId: string;
  kind: InteractionResponseKind;
  callbackType: number | null;
  body: Payload;
  files: UploadedFile[];
  status: number;
  error: { code: number; message: string } | null;
  at: number;
}

export interface InteractionRecord {
  id: string;
  token: string;
  kind: InteractionKind;
  channelId: string;
  guildId: string | null;
  user: FakeUser;
  payload: Payload;
  componentMessageId: string | null;
  callbackType: number | null;
  replyMessageId: string | null;
  isOriginalEditedAfterAck: boolean;
  choices: Payload[] | null;
  modal: Payload | null;
  followUpIds: string[];
  responses: InteractionResponseRecord[];
  isExpired: boolean;
}

/** What the user would see as the answer to an interaction. */
export interface InteractionReply {
  interactionId: string;
  callbackType: number | null;
  isVisible: boolean;
  isDeferred: boolean;
  isEphemeral: boolean;
  content: string;
  embeds: Payload[];
  components: Payload[];
  attachments: StoredAttachment[];
  flags: number;
  messageId: string | null;
  choices: Payload[] | null;
  modal: Payload | null;
  followUps: StoredMessage[];
}

export interface LoggedRequest {
  method: string;
  path: string;
  status: number;
  at: number;
}

export interface RejectedRequest extends LoggedRequest {
  code: number;
  message: string;
  body: unknown;
}

export interface StateEvents {
  change: [];
  messageCreate: [message: StoredMessage];
  messageEdit: [edit: MessageEdit];
  messageDelete: [message: StoredMessage];
  interactionResponse: [record: InteractionResponseRecord];
  rateLimited: [info: { channelId: string; retryAfterMs: number }];
}

export interface NewMessage {
  channelId: string;
  author: FakeUser;
  authorRoles?: string[] | null;
  body: Payload;
  files: UploadedFile[];
  source: MessageSource;
  type?: number;
  interactionId?: string | null;
  interactionMetadata?: Payload | null;
  webhookId?: string | null;
  extraFlags?: number;
  extraMentions?: FakeUser[];
}

function records(value: unknown): Payload[] {
  return Array.isArray(value) ? value.filter(isPayload) : [];
}

/** Everything the fake knows: guild, members, messages, interactions, commands and counters. */
export class DiscordState {
  readonly ids = new SnowflakeFactory();
  readonly events = new EventEmitter<StateEvents>();
  readonly users = new Map<string, FakeUser>();
  readonly memberRoles = new Map<string, string[]>();
  readonly dmChannels = new Map<string, string>();
  readonly messagesById = new Map<string, MessageRecord>();
  readonly channelMessages = new Map<string, string[]>();
  readonly edits: MessageEdit[] = [];
  readonly interactions = new Map<string, InteractionRecord>();
  readonly interactionIdsByToken = new Map<string, string>();
  readonly commands = new Map<string, Payload[]>();
  readonly unhandled: LoggedRequest[] = [];
  readonly rejected: RejectedRequest[] = [];
  readonly requests: LoggedRequest[] = [];
  readonly startedAt = Date.now();
  rateLimitHits = 0;

  constructor(readonly config: ResolvedConfig) {
    this.events.setMaxListeners(0);
    for (const user of [config.bot, config.owner]) this.users.set(user.id, user);
    this.memberRoles.set(config.bot.id, [config.botRoleId]);
    this.memberRoles.set(config.owner.id, []);
    for (const channel of config.channels) this.channelMessages.set(channel.id, []);
  }

  changed(): void {
    this.events.emit('change');
  }

  ensureUser(id: string, username?: string): FakeUser {
    let user = this.users.get(id);
    if (!user) {
      user = { id, username: username ?? `user-${id.slice(-6)}`, globalName: null, isBot: false };
      this.users.set(id, user);
    } else if (username && user.username !== username) {
      user.username = username;
    }
    return user;
  }

  guildChannel(channelId: string): ChannelInfo | undefined {
    return this.config.channels.find((channel) => channel.id === channelId);
  }

  isKnownChannel(channelId: string): boolean {
    return this.channelMessages.has(channelId);
  }

  /** The DM channel between the bot and a user, created on first use. */
  dmChannelFor(userId: string): string {
    let channelId = this.dmChannels.get(userId);
    if (!channelId) {
      channelId = this.ids.next();
      this.dmChannels.set(userId, channelId);
      this.channelMessages.set(channelId, []);
    }
    return channelId;
  }

  dmRecipientOf(channelId: string): FakeUser | undefined {
    for (const [userId, id] of this.dmChannels) if (id === channelId) return this.users.get(userId);
    return undefined;
  }

  /** Guild permissions as Discord computes them: owner and Administrator get everything, else @everyone | roles. */
  permissionsOf(userId: string, roles: string[]): string {
    if (userId === this.config.owner.id) return PermissionsBitField.All.toString();
    let bits = BigInt(this.config.everyonePermissions);
    for (const role of this.config.roles) if (roles.includes(role.id)) bits |= BigInt(role.permissions);
    if (userId === this.config.bot.id) bits |= BigInt(DEFAULT_EVERYONE_PERMISSIONS) | PermissionFlagsBits.ManageMessages;
    if ((bits & PermissionFlagsBits.Administrator) !== 0n) return PermissionsBitField.All.toString();
    return bits.toString();
  }

  memberPayloadOf(user: FakeUser, withUser: boolean, permissions?: string): Payload {
    const roles = this.memberRoles.get(user.id) ?? [];
    return memberPayload(withUser ? user : null, roles, isoTime(this.startedAt), permissions);
  }

  buildAttachments(channelId: string, body: Payload, files: UploadedFile[], existing: StoredAttachment[] = []): StoredAttachment[] {
    const descriptors = records(body.attachments);
    const byIndex = new Map(files.map((file, index) => [file.field.match(/^files\[(.+)\]$/)?.[1] ?? String(index), file]));
    const build = (file: UploadedFile, descriptor?: Payload): StoredAttachment => {
      const id = this.ids.next();
      const filename = typeof descriptor?.filename === 'string' ? descriptor.filename : file.filename;
      return {
        id,
        filename,
        description: typeof descriptor?.description === 'string' ? descriptor.description : null,
        contentType: file.contentType,
        size: file.data.length,
        url: `${this.config.baseUrl}/attachments/${channelId}/${id}/${encodeURIComponent(filename)}`,
        data: file.data,
      };
    };
    if (!('attachments' in body)) return [...existing, ...files.map((file) => build(file))];
    const result: StoredAttachment[] = [];
    const used = new Set<UploadedFile>();
    for (const descriptor of descriptors) {
      const id = String(descriptor.id);
      const kept = existing.find((attachment) => attachment.id === id);
      const file = byIndex.get(id);
      if (kept) result.push(kept);
      else if (file) {
        used.add(file);
        result.push(build(file, descriptor));
      }
    }
    for (const file of files) if (!used.has(file)) result.push(build(file));
    return result;
  }

  createMessage(init: NewMessage): MessageRecord {
    const id = this.ids.next();
    const now = Date.now();
    const guildId = this.guildChannel(init.channelId) ? this.config.guildId : null;
    const flags = (typeof init.body.flags === 'number' ? init.body.flags : 0) | (init.extraFlags ?? 0);
    const reference = isPayload(init.body.message_reference) ? init.body.message_reference : null;
    const referencedMessageId = typeof reference?.message_id === 'string' ? reference.message_id : null;
    const referenced = referencedMessageId ? this.messagesById.get(referencedMessageId) : undefined;
    const mentions = referenced && referenced.author.id !== init.author.id ? [referenced.author] : [];
    for (const user of init.extraMentions ?? []) if (!mentions.includes(user)) mentions.push(user);
    const record: MessageRecord = {
      id,
      channelId: init.channelId,
      guildId,
      authorId: init.author.id,
      author: init.author,
      authorRoles: init.authorRoles ?? null,
      content: typeof init.body.content === 'string' ? init.body.content : '',
      embeds: records(init.body.embeds),
      components: records(init.body.components),
      attachments: this.buildAttachments(init.channelId, init.body, init.files),
      flags,
      type: init.type ?? (referencedMessageId ? 19 : 0),
      source: init.source,
      isEphemeral: (flags & EPHEMERAL_FLAG) !== 0,
      isDeleted: false,
      isOld: false,
      editCount: 0,
      history: [],
      interactionId: init.interactionId ?? null,
      interactionMetadata: init.interactionMetadata ?? null,
      webhookId: init.webhookId ?? null,
      referencedMessageId,
      mentions,
      createdAt: now,
      editedAt: null,
    };
    this.messagesById.set(id, record);
    if (!record.isEphemeral) this.channelMessages.get(init.channelId)?.push(id);
    this.events.emit('messageCreate', this.snapshot(record));
    this.changed();
    return record;
  }

  editMessage(record: MessageRecord, body: Payload, files: UploadedFile[], via: MessageEdit['via']): MessageEdit {
    const now = Date.now();
    record.history.push({
      content: record.content,
      embeds: record.embeds,
      components: record.components,
      attachmentNames: record.attachments.map((attachment) => attachment.filename),
      at: record.editedAt ?? record.createdAt,
    });
    if ('content' in body) record.content = typeof body.content === 'string' ? body.content : '';
    if ('embeds' in body) record.embeds = records(body.embeds);
    if ('components' in body) record.components = records(body.components);
    if ('attachments' in body || files.length > 0) {
      record.attachments = this.buildAttachments(record.channelId, body, files, record.attachments);
    }
    if (typeof body.flags === 'number') {
      record.flags = (record.flags & ~SUPPRESS_EMBEDS_FLAG) | (body.flags & SUPPRESS_EMBEDS_FLAG);
    }
    record.flags &= ~LOADING_FLAG;
    record.editCount += 1;
    record.editedAt = now;
    const edit: MessageEdit = { channelId: record.channelId, messageId: record.id, via, at: now, message: this.snapshot(record) };
    this.edits.push(edit);
    this.events.emit('messageEdit', edit);
    this.changed();
    return edit;
  }

  deleteMessage(record: MessageRecord): void {
    record.isDeleted = true;
    this.events.emit('messageDelete', this.snapshot(record));
    this.changed();
  }

  liveMessage(messageId: string): MessageRecord | undefined {
    const record = this.messagesById.get(messageId);
    return record && !record.isDeleted ? record : undefined;
  }

  snapshot(record: MessageRecord): StoredMessage {
    return {
      id: record.id,
      channelId: record.channelId,
      guildId: record.guildId,
      authorId: record.authorId,
      content: record.content,
      embeds: record.embeds,
      components: record.components,
      attachments: [...record.attachments],
      flags: record.flags,
      type: record.type,
      source: record.source,
      isEphemeral: record.isEphemeral,
      isDeleted: record.isDeleted,
      isOld: record.isOld,
      editCount: record.editCount,
      history: [...record.history],
      interactionId: record.interactionId,
      referencedMessageId: record.referencedMessageId,
      createdAt: record.createdAt,
      editedAt: record.editedAt,
    };
  }

  /** The message in Discord's API shape. */
  messagePayload(record: MessageRecord, depth = 0): Payload {
    const payload: Payload = {
      id: record.id,
      type: record.type,
      channel_id: record.channelId,
      author: userPayload(record.author),
      content: record.content,
      timestamp: isoTime(record.createdAt),
      edited_timestamp: record.editedAt === null ? null : isoTime(record.editedAt),
      tts: false,
      mention_everyone: false,
      mentions: record.mentions.map(userPayload),
      mention_roles: [],
      attachments: record.attachments.map(attachmentPayload),
      embeds: record.embeds,
      components: record.components,
      pinned: false,
      flags: record.flags,
    };
    if (record.guildId) payload.guild_id = record.guildId;
    if (record.guildId && record.authorRoles) {
      payload.member = memberPayload(null, record.authorRoles, isoTime(this.startedAt));
    }
    if (record.webhookId) {
      payload.webhook_id = record.webhookId;
      payload.application_id = this.config.applicationId;
    }
    if (record.interactionMetadata) payload.interaction_metadata = record.interactionMetadata;
    if (record.referencedMessageId) {
      payload.message_reference = {
        type: 0,
        message_id: record.referencedMessageId,
        channel_id: record.channelId,
        ...(record.guildId ? { guild_id: record.guildId } : {}),
      };
      const referenced = this.messagesById.get(record.referencedMessageId);
      payload.referenced_message = referenced && !referenced.isDeleted && depth === 0 ? this.messagePayload(referenced, 1) : null;
    }
    return payload;
  }

  interactionByToken(token: string): InteractionRecord | undefined {
    const id = this.interactionIdsByToken.get(token);
    return id === undefined ? undefined : this.interactions.get(id);
  }

  /** The message `@original` points at: the reply, or the component's message after a type 6/7 answer. */
  originalMessageOf(interaction: InteractionRecord): MessageRecord | undefined {
    const id = interaction.replyMessageId ?? (interaction.callbackType === 6 || interaction.callbackType === 7 ? interaction.componentMessageId : null);
    return id ? this.messagesById.get(id) : undefined;
  }

  replyOf(interaction: InteractionRecord): InteractionReply {
    const followUps = interaction.followUpIds
      .map((id) => this.messagesById.get(id))
      .filter((record): record is MessageRecord => record !== undefined)
      .map((record) => this.snapshot(record));
    const base: InteractionReply = {
      interactionId: interaction.id,
      callbackType: interaction.callbackType,
      isVisible: false,
      isDeferred: false,
      isEphemeral: false,
      content: '',
      embeds: [],
      components: [],
      attachments: [],
      flags: 0,
      messageId: null,
      choices: interaction.choices,
      modal: interaction.modal,
      followUps,
    };
    const type = interaction.callbackType;
    if (type === null) return base;
    if (type === 8 || type === 9) return { ...base, isVisible: true };
    const original = this.originalMessageOf(interaction);
    if (!original) return { ...base, isVisible: type === 7, isDeferred: type === 5 || type === 6 };
    const isLoading = (original.flags & LOADING_FLAG) !== 0;
    const isVisible = type === 4 || type === 7 || (type === 5 && !isLoading) || (type === 6 && interaction.isOriginalEditedAfterAck);
    return {
      ...base,
      isVisible,
      isDeferred: !isVisible,
      isEphemeral: original.isEphemeral,
      content: original.content,
      embeds: original.embeds,
      components: original.components,
      attachments: [...original.attachments],
      flags: original.flags,
      messageId: original.id,
    };
  }
}

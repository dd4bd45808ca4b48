import { randomBytes } from 'node:crypto';
import { isPayload, type Payload } from './http.js';
import { dmChannelPayload, guildChannelPayload, userPayload, type FakeUser } from './payloads.js';
import type { DiscordState, InteractionKind } from './state.js';

/** Who triggers an interaction; defaults to the guild owner, who has every permission. */
export interface ActorInput {
  userId?: string;
  username?: string;
  /** Role ids; also remembered as the member's roles for later events and GET /guilds/:id/members/:id. */
  roles?: string[];
  /** Overrides the permissions computed from @everyone and `roles` (e.g. '32' for Manage Guild). */
  permissions?: string;
}

export type OptionValue = string | number | boolean;

export interface RawOption {
  name: string;
  type: number;
  value?: OptionValue;
  focused?: boolean;
  options?: RawOption[];
}

export interface CommandInput extends ActorInput {
  name: string;
  subcommandGroup?: string;
  subcommand?: string;
  /** A record takes option types from the registered command, else infers them (integer 4, number 10, boolean 5, string 3). */
  options?: Record<string, OptionValue> | RawOption[];
  channelId?: string;
  /** Send from the user's DM with the bot: no guild_id, `user` instead of `member`. */
  isDm?: boolean;
}

export interface AutocompleteInput extends CommandInput {
  /** Name of the focused option; its value comes from `options` ('' when absent). */
  focused: string;
}

export interface ButtonInput extends ActorInput {
  customId: string;
  /** A message in the store (normally one the bot posted); its current state is sent as `message`. */
  messageId: string;
}

export interface ModalSubmitInput extends ActorInput {
  /** The custom_id of the modal the bot showed. */
  customId: string;
  /** Text input values by custom_id. */
  fields: Record<string, string>;
  channelId?: string;
}

/** An INTERACTION_CREATE payload ready to dispatch, with what the fake needs to track it. */
export interface BuiltInteraction {
  kind: InteractionKind;
  payload: Payload;
  user: FakeUser;
  channelId: string;
  componentMessageId: string | null;
}

function payloads(value: unknown): Payload[] {
  return Array.isArray(value) ? value.filter(isPayload) : [];
}

/** Builds interaction payloads shaped like Discord's, typed after the commands the bot registered. */
export class InteractionBuilder {
  private readonly commandIds = new Map<string, string>();

  constructor(private readonly state: DiscordState) {}

  command(input: CommandInput): BuiltInteraction {
    return this.build('command', 2, input, input.channelId, input.isDm ?? false, this.commandData(input, this.buildOptions(input)));
  }

  autocomplete(input: AutocompleteInput): BuiltInteraction {
    const hasFocused = Array.isArray(input.options) || (input.options !== undefined && input.focused in input.options);
    const options = hasFocused ? input.options : { ...(input.options as Record<string, OptionValue> | undefined), [input.focused]: '' };
    const data = this.commandData(input, this.buildOptions({ ...input, options }, input.focused));
    return this.build('autocomplete', 4, input, input.channelId, input.isDm ?? false, data);
  }

  button(input: ButtonInput): BuiltInteraction {
    const message = this.state.liveMessage(input.messageId);
    if (!message) throw new Error(`sendButton: no live message ${input.messageId}`);
    const built = this.build('button', 3, input, message.channelId, message.guildId === null, { component_type: 2, custom_id: input.customId });
    built.payload.message = this.state.messagePayload(message);
    built.componentMessageId = message.id;
    return built;
  }

  /** MODAL_SUBMIT (type 5): the values of a modal's text inputs, each in its own action row. */
  modalSubmit(input: ModalSubmitInput): BuiltInteraction {
    const components = Object.entries(input.fields).map(([customId, value]) => ({
      type: 1, components: [{ type: 4, custom_id: customId, value }],
    }));
    return this.build('modal', 5, input, input.channelId, false, { custom_id: input.customId, components });
  }

  /** Completes a hand-written payload (`id`, `token`, `application_id`, `version` when missing). */
  raw(payload: Payload): BuiltInteraction {
    const { config } = this.state;
    const full: Payload = {
      application_id: config.applicationId,
      version: 1,
      ...payload,
      id: typeof payload.id === 'string' ? payload.id : this.state.ids.next(),
      token: typeof payload.token === 'string' ? payload.token : randomBytes(32).toString('base64url'),
    };
    const member = isPayload(full.member) ? full.member : null;
    const userData = isPayload(member?.user) ? member.user : isPayload(full.user) ? full.user : {};
    const message = isPayload(full.message) ? full.message : null;
    return {
      kind: 'raw',
      payload: full,
      user: this.state.ensureUser(typeof userData.id === 'string' ? userData.id : config.owner.id),
      channelId: typeof full.channel_id === 'string' ? full.channel_id : config.channels[0]?.id ?? '',
      componentMessageId: typeof message?.id === 'string' ? message.id : null,
    };
  }

  private build(kind: InteractionKind, type: number, actor: ActorInput, channelId: string | undefined, isDm: boolean, data: Payload): BuiltInteraction {
    const { config } = this.state;
    const user = this.state.ensureUser(actor.userId ?? config.owner.id, actor.username);
    const payload: Payload = {
      id: this.state.ids.next(),
      application_id: config.applicationId,
      type,
      token: randomBytes(32).toString('base64url'),
      version: 1,
      data,
      locale: 'en-US',
      entitlements: [],
      attachment_size_limit: 10_485_760,
      app_permissions: this.state.permissionsOf(config.bot.id, []),
    };
    if (isDm) {
      const dmId = this.state.dmChannelFor(user.id);
      Object.assign(payload, {
        channel_id: dmId, channel: dmChannelPayload(dmId, user), user: userPayload(user),
        context: 1, authorizing_integration_owners: { 0: '0' },
      });
      return { kind, payload, user, channelId: dmId, componentMessageId: null };
    }
    const index = config.channels.findIndex((channel) => channel.id === (channelId ?? config.channels[0]?.id));
    const channel = config.channels[index];
    if (!channel) throw new Error(`unknown guild channel ${channelId}`);
    const roles = actor.roles ?? this.state.memberRoles.get(user.id) ?? [];
    this.state.memberRoles.set(user.id, roles);
    Object.assign(payload, {
      guild_id: config.guildId,
      guild: { id: config.guildId, locale: 'en-US', features: [] },
      guild_locale: 'en-US',
      channel_id: channel.id,
      channel: guildChannelPayload(channel, config.guildId, index),
      member: this.state.memberPayloadOf(user, true, actor.permissions ?? this.state.permissionsOf(user.id, roles)),
      context: 0,
      authorizing_integration_owners: { 0: config.guildId },
    });
    return { kind, payload, user, channelId: channel.id, componentMessageId: null };
  }

  private commandDefinition(name: string): { command: Payload; scope: string } | undefined {
    for (const scope of [this.state.config.guildId, 'global']) {
      const command = this.state.commands.get(scope)?.find((candidate) => candidate.name === name && (candidate.type ?? 1) === 1);
      if (command) return { command, scope };
    }
    return undefined;
  }

  private commandData(input: CommandInput, options: RawOption[]): Payload {
    const definition = this.commandDefinition(input.name);
    let id = typeof definition?.command.id === 'string' ? definition.command.id : this.commandIds.get(input.name);
    if (!id) {
      id = this.state.ids.next();
      this.commandIds.set(input.name, id);
    }
    const data: Payload = { id, name: input.name, type: 1, options };
    if (definition && definition.scope !== 'global') data.guild_id = definition.scope;
    return data;
  }

  private buildOptions(input: CommandInput, focused?: string): RawOption[] {
    const definitions = this.optionDefinitions(input);
    let leaves: RawOption[];
    if (Array.isArray(input.options)) {
      leaves = input.options.map((option) => (option.name === focused ? { ...option, focused: true } : option));
    } else {
      leaves = Object.entries(input.options ?? {}).map(([name, value]) => {
        const declared = definitions.find((definition) => definition.name === name)?.type;
        const inferred = typeof value === 'boolean' ? 5 : typeof value === 'number' ? (Number.isInteger(value) ? 4 : 10) : 3;
        const option: RawOption = { name, type: typeof declared === 'number' ? declared : inferred, value };
        if (name === focused) option.focused = true;
        return option;
      });
    }
    if (!input.subcommand) return leaves;
    const sub: RawOption = { type: 1, name: input.subcommand, options: leaves };
    return input.subcommandGroup ? [{ type: 2, name: input.subcommandGroup, options: [sub] }] : [sub];
  }

  private optionDefinitions(input: CommandInput): Payload[] {
    let options = payloads(this.commandDefinition(input.name)?.command.options);
    if (input.subcommandGroup) options = payloads(options.find((option) => option.type === 2 && option.name === input.subcommandGroup)?.options);
    if (input.subcommand) options = payloads(options.find((option) => option.type === 1 && option.name === input.subcommand)?.options);
    return options;
  }
}

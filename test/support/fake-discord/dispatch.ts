import type { FakeGateway, GatewaySession } from './gateway.js';
import { INTENTS } from './gateway.js';
import type { Payload } from './http.js';
import { guildChannelPayload, isoTime, rolePayload, userPayload } from './payloads.js';
import type { DiscordState, MessageRecord } from './state.js';

/** The guild as GUILD_CREATE (and GET /guilds/:id) describes it. */
export function guildPayload(state: DiscordState): Payload {
  const { config } = state;
  const everyone = { id: config.guildId, name: '@everyone', permissions: config.everyonePermissions };
  const botRole = { id: config.botRoleId, name: config.bot.username, permissions: state.permissionsOf(config.bot.id, []) };
  return {
    id: config.guildId,
    name: config.guildName,
    icon: null,
    splash: null,
    discovery_splash: null,
    banner: null,
    description: null,
    owner_id: config.owner.id,
    afk_channel_id: null,
    afk_timeout: 300,
    verification_level: 0,
    default_message_notifications: 0,
    explicit_content_filter: 0,
    mfa_level: 0,
    nsfw_level: 0,
    premium_tier: 0,
    premium_subscription_count: 0,
    premium_progress_bar_enabled: false,
    preferred_locale: 'en-US',
    system_channel_id: null,
    system_channel_flags: 0,
    rules_channel_id: null,
    public_updates_channel_id: null,
    safety_alerts_channel_id: null,
    vanity_url_code: null,
    application_id: null,
    features: [],
    emojis: [],
    stickers: [],
    roles: [
      rolePayload(everyone, 0),
      rolePayload(botRole, 1, true),
      ...config.roles.map((role, index) => rolePayload(role, index + 2)),
    ],
    max_members: 500_000,
    max_video_channel_users: 25,
    max_stage_video_channel_users: 50,
  };
}

/** READY followed by the one GUILD_CREATE that discord.js waits for before `clientReady`. */
export function readyPayloads(state: DiscordState, session: GatewaySession): Array<{ t: string; d: Payload }> {
  const { config } = state;
  const ready: Payload = {
    v: 10,
    user: { ...userPayload(config.bot), verified: true, mfa_enabled: false, email: null },
    guilds: [{ id: config.guildId, unavailable: true }],
    session_id: session.id,
    resume_gateway_url: state.config.baseUrl.replace(/^http/, 'ws'),
    session_type: 'normal',
    shard: [0, 1],
    application: { id: config.applicationId, flags: 0 },
    private_channels: [],
    presences: [],
    relationships: [],
    guild_join_requests: [],
    geo_ordered_rtc_regions: [],
    auth: {},
    user_settings: {},
  };
  const guildCreate: Payload = {
    ...guildPayload(state),
    joined_at: isoTime(state.startedAt),
    large: false,
    unavailable: false,
    lazy: true,
    member_count: 2,
    members: [state.memberPayloadOf(config.bot, true)],
    channels: config.channels.map((channel, index) => guildChannelPayload(channel, config.guildId, index)),
    threads: [],
    presences: [],
    voice_states: [],
    stage_instances: [],
    guild_scheduled_events: [],
    soundboard_sounds: [],
    embedded_activities: [],
  };
  return [{ t: 'READY', d: ready }, { t: 'GUILD_CREATE', d: guildCreate }];
}

/** MESSAGE_CREATE/UPDATE/DELETE, filtered by intents the way Discord does (privileged content stripped). */
export function dispatchMessage(state: DiscordState, gateway: FakeGateway, t: string, record: MessageRecord): number {
  if (record.isEphemeral) return 0;
  return gateway.dispatch(t, (session) => {
    const needed = record.guildId ? INTENTS.guildMessages : INTENTS.directMessages;
    if ((session.intents & needed) === 0) return null;
    if (t === 'MESSAGE_DELETE') {
      return { id: record.id, channel_id: record.channelId, ...(record.guildId ? { guild_id: record.guildId } : {}) };
    }
    const payload = state.messagePayload(record);
    const mentionsBot = record.mentions.some((user) => user.id === state.config.bot.id);
    const seesContent = (session.intents & INTENTS.messageContent) !== 0
      || record.authorId === state.config.bot.id || mentionsBot || record.guildId === null;
    if (!seesContent) Object.assign(payload, { content: '', embeds: [], attachments: [], components: [] });
    return payload;
  });
}

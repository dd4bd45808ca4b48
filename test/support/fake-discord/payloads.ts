import type { Payload } from './http.js';

export interface FakeUser {
  id: string;
  username: string;
  globalName: string | null;
  isBot: boolean;
}

export interface RoleInfo {
  id: string;
  name: string;
  permissions: string;
}

export interface ChannelInfo {
  id: string;
  name: string;
}

/** A stored attachment: what Discord shows plus the bytes that were uploaded. */
export interface StoredAttachment {
  id: string;
  filename: string;
  description: string | null;
  contentType: string;
  size: number;
  url: string;
  data: Buffer;
}

export function userPayload(user: FakeUser): Payload {
  return {
    id: user.id,
    username: user.username,
    global_name: user.globalName,
    discriminator: '0',
    avatar: null,
    bot: user.isBot,
    system: false,
    public_flags: 0,
    flags: 0,
    banner: null,
    accent_color: null,
    avatar_decoration_data: null,
  };
}

export function rolePayload(role: RoleInfo, position: number, isManaged = false): Payload {
  return {
    id: role.id,
    name: role.name,
    color: 0,
    colors: { primary_color: 0, secondary_color: null, tertiary_color: null },
    hoist: false,
    icon: null,
    unicode_emoji: null,
    position,
    permissions: role.permissions,
    managed: isManaged,
    mentionable: false,
    flags: 0,
  };
}

export function guildChannelPayload(channel: ChannelInfo, guildId: string, position: number): Payload {
  return {
    id: channel.id,
    type: 0,
    guild_id: guildId,
    name: channel.name,
    position,
    permission_overwrites: [],
    parent_id: null,
    nsfw: false,
    topic: null,
    last_message_id: null,
    rate_limit_per_user: 0,
    flags: 0,
  };
}

export function dmChannelPayload(channelId: string, recipient: FakeUser): Payload {
  return { id: channelId, type: 1, recipients: [userPayload(recipient)], last_message_id: null, flags: 0 };
}

export function memberPayload(user: FakeUser | null, roles: string[], joinedAt: string, permissions?: string): Payload {
  const member: Payload = {
    nick: null,
    avatar: null,
    banner: null,
    roles,
    joined_at: joinedAt,
    premium_since: null,
    deaf: false,
    mute: false,
    pending: false,
    flags: 0,
    communication_disabled_until: null,
  };
  if (user) member.user = userPayload(user);
  if (permissions !== undefined) member.permissions = permissions;
  return member;
}

export function attachmentPayload(attachment: StoredAttachment): Payload {
  return {
    id: attachment.id,
    filename: attachment.filename,
    description: attachment.description ?? undefined,
    content_type: attachment.contentType,
    size: attachment.size,
    url: attachment.url,
    proxy_url: attachment.url,
  };
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace('Z', '+00:00');
}

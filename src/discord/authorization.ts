import {
  PermissionFlagsBits, PermissionsBitField, type GuildMember, type Interaction, type Message,
} from 'discord.js';
import type { AgentConfig } from '../agents/agent-config.js';
import { AppError } from '../errors.js';

/** Who asks, as far as authorization cares. */
export interface Actor {
  userId: string;
  roleIds: readonly string[];
  canManageGuild: boolean;
}

/**
 * Allowed: CHORUS_OWNER_IDS always; then the agent's allowed users and roles when agent.json lists any. Members with
 * Manage Server are the default only: an agent with its own allow-list admits no one else. Without an agent, owners
 * and Manage Server.
 */
export function isAllowed(actor: Actor, agent: AgentConfig | null, ownerIds: readonly string[]): boolean {
  if (ownerIds.includes(actor.userId)) return true;
  if (!agent || (!agent.allowedUserIds.length && !agent.allowedRoleIds.length)) return actor.canManageGuild;
  return agent.allowedUserIds.includes(actor.userId) || actor.roleIds.some((role) => agent.allowedRoleIds.includes(role));
}

export function notAuthorized(agent: AgentConfig | null, what: string): AppError {
  const where = agent
    ? `add your user id to allowed_user_ids (or a role of yours to allowed_role_ids) in agents/${agent.name}/agent.json`
    : 'be listed in CHORUS_OWNER_IDS';
  const manage = agent && (agent.allowedUserIds.length || agent.allowedRoleIds.length) ? '' : ', or to give you Manage Server';
  return new AppError('NOT_AUTHORIZED', `${what} needs an allowed user; ask an operator to ${where}${manage}`);
}

export function assertAllowed(actor: Actor, agent: AgentConfig | null, ownerIds: readonly string[], what: string): void {
  if (!isAllowed(actor, agent, ownerIds)) throw notAuthorized(agent, what);
}

function hasManageGuild(permissions: Readonly<PermissionsBitField> | null | undefined): boolean {
  return permissions?.has(PermissionFlagsBits.ManageGuild) ?? false;
}

/** The actor of an interaction in a guild; `member` is a cached GuildMember or the raw API member. */
export function actorOfInteraction(interaction: Interaction): Actor {
  const member = interaction.member;
  const roleIds = !member ? [] : Array.isArray(member.roles) ? member.roles : [...(member as GuildMember).roles.cache.keys()];
  return { userId: interaction.user.id, roleIds, canManageGuild: hasManageGuild(interaction.memberPermissions) };
}

export function actorOfMessage(message: Message): Actor {
  const member = message.member;
  const isOwner = message.guild?.ownerId === message.author.id;
  return {
    userId: message.author.id,
    roleIds: member ? [...member.roles.cache.keys()] : [],
    canManageGuild: isOwner || hasManageGuild(member?.permissions),
  };
}

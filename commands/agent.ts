import { InteractionContextType, SlashCommandBuilder } from 'discord.js';
import { checkAgentName } from '../src/agents/agent-config.js';
import { AppError, invalidField } from '../src/errors.js';
import { EMBED_DESCRIPTION_LIMIT, fitLines } from '../src/discord/reply-format.js';
import type { Command } from './command.js';

const data = new SlashCommandBuilder()
  .setName('agent')
  .setDescription('Bind agents to channels')
  .setContexts(InteractionContextType.Guild)
  .addSubcommand((sub) => sub
    .setName('bind')
    .setDescription('Make this the channel of an agent (created with defaults if it does not exist)')
    .addStringOption((option) => option.setName('name').setDescription('Agent name: lowercase letters, digits, - or _').setRequired(true).setMaxLength(32)))
  .addSubcommand((sub) => sub.setName('unbind').setDescription('Detach the agent from this channel (its processes keep running)'))
  .addSubcommand((sub) => sub.setName('list').setDescription('Every agent and its channel'));

export default {
  data,
  needsAgent: (subcommand) => subcommand === 'unbind',
  access: (subcommand) => (subcommand === 'list' ? 'read' : subcommand === 'bind' ? 'self' : 'write'),
  isPublic: (subcommand) => subcommand !== 'list',

  async execute(interaction, ctx) {
    const { agents, manager } = ctx.services;
    const subcommand = interaction.options.getSubcommand(false);
    switch (subcommand) {
      case 'bind': {
        // Read whatever type arrives: a hand-built interaction may send none, or a number.
        const given = interaction.options.get('name')?.value;
        if (given === undefined || given === null) throw new AppError('INVALID_INPUT', "name is required: the agent's name, e.g. /agent bind name:builder");
        const name = checkAgentName(typeof given === 'string' ? given.trim() : given, 'name');
        const current = ctx.agent;
        if (current && current.name !== name) {
          throw new AppError('INVALID_INPUT', `this channel is bound to agent ${current.name}; run /agent unbind first`);
        }
        const { agent: target, exists } = agents.load(name);
        // Binding decides where the agent listens: its own allowed users (or owners, Manage Server) only.
        ctx.authorize(exists ? target : null, '/agent bind');
        if (target.channelId === ctx.channelId) return { text: `Agent **${name}** is already bound to this channel.` };
        const moved = target.channelId ? ` (moved from <#${target.channelId}>)` : '';
        agents.bind(name, ctx.channelId);
        return {
          text: `Agent **${name}** is now bound to this channel${moved}${exists ? '' : ', created with default settings'}. `
            + 'Messages here start its branches; `/process` manages its processes.',
        };
      }
      case 'unbind': {
        const agent = ctx.agent!;
        agents.unbind(agent);
        const running = manager.repo.countActive(agent.name);
        return { text: `Agent **${agent.name}** is no longer bound to this channel.${running ? ` Its ${running} running process(es) keep running.` : ''}` };
      }
      case 'list': {
        const all = agents.list();
        if (!all.length) return { text: 'No agents yet: `/agent bind <name>` in a channel creates one.' };
        const lines = all.map((agent) => {
          const where = agent.channelId ? `<#${agent.channelId}>` : 'not bound';
          const running = manager.repo.countActive(agent.name);
          return `• **${agent.name}** → ${where} · ${running} running${agent.model ? ` · ${agent.model}` : ''}`;
        });
        return { text: '', embeds: [{ title: `Agents (${all.length})`, description: fitLines(lines, EMBED_DESCRIPTION_LIMIT) }] };
      }
      default:
        throw invalidField('subcommand', 'bind, unbind or list', subcommand);
    }
  },
} satisfies Command;

import { InteractionContextType, SlashCommandBuilder } from 'discord.js';
import { LIST_FILTERS, LOG_LINES_DEFAULT, LOG_LINES_MAX, LOG_STREAMS, MUTATING_SUBCOMMANDS, PROCESS_SUBCOMMANDS } from '../src/agents/process-commands.js';
import { SENDABLE_SIGNALS } from '../src/process/signals.js';
import { AppError, invalidField } from '../src/errors.js';
import type { StatusFilter } from '../src/store/process-repo.js';
import type { Command, CommandContext, ProcessCommandOptions, ProcessSubcommand } from './command.js';

const SUBCOMMANDS: readonly ProcessSubcommand[] = PROCESS_SUBCOMMANDS;
const FILTERS = LIST_FILTERS;
const STREAMS = LOG_STREAMS;
const MAX_LOG_LINES = LOG_LINES_MAX;
const MAX_CHOICES = 25;

const data = new SlashCommandBuilder()
  .setName('process')
  .setDescription("Manage this channel's agent processes")
  .setContexts(InteractionContextType.Guild)
  .addSubcommand((sub) => sub
    .setName('list')
    .setDescription('List the processes of this channel\'s agent')
    .addStringOption((option) => option
      .setName('filter').setDescription('Which processes (default: all, newest first)')
      .addChoices(...FILTERS.map((value) => ({ name: value, value })))))
  .addSubcommand((sub) => sub
    .setName('kill')
    .setDescription('Stop a process and everything it started (SIGTERM, then SIGKILL after a grace period)')
    .addIntegerOption((option) => option.setName('pid').setDescription('Process id').setRequired(true).setMinValue(1).setAutocomplete(true))
    .addBooleanOption((option) => option.setName('force').setDescription('SIGKILL at once')))
  .addSubcommand((sub) => sub
    .setName('logs')
    .setDescription('The last lines a process printed')
    .addIntegerOption((option) => option.setName('pid').setDescription('Process id').setRequired(true).setMinValue(1).setAutocomplete(true))
    .addIntegerOption((option) => option.setName('lines').setDescription(`How many lines (1-${MAX_LOG_LINES}, default ${LOG_LINES_DEFAULT})`).setMinValue(1).setMaxValue(MAX_LOG_LINES))
    .addStringOption((option) => option
      .setName('stream').setDescription('Which stream (default: both)')
      .addChoices(...STREAMS.map((value) => ({ name: value, value })))))
  .addSubcommand((sub) => sub
    .setName('status')
    .setDescription('State, uptime, exit code, CPU and memory, hooks of a process')
    .addIntegerOption((option) => option.setName('pid').setDescription('Process id').setRequired(true).setMinValue(1).setAutocomplete(true)))
  .addSubcommand((sub) => sub
    .setName('restart')
    .setDescription('Stop a process if it runs, then start the same command again')
    .addIntegerOption((option) => option.setName('pid').setDescription('Process id').setRequired(true).setMinValue(1).setAutocomplete(true)))
  .addSubcommand((sub) => sub
    .setName('input')
    .setDescription('Type a line into an interactive process (Enter is added)')
    .addIntegerOption((option) => option.setName('pid').setDescription('Process id').setRequired(true).setMinValue(1).setAutocomplete(true))
    .addStringOption((option) => option.setName('text').setDescription('The line to type').setRequired(true).setMaxLength(4000))
    .addBooleanOption((option) => option.setName('eof').setDescription('Close its input after the line')))
  .addSubcommand((sub) => sub
    .setName('signal')
    .setDescription('Send a signal to a process (STOP pauses, CONT resumes; to stop it use kill)')
    .addIntegerOption((option) => option.setName('pid').setDescription('Process id').setRequired(true).setMinValue(1).setAutocomplete(true))
    .addStringOption((option) => option
      .setName('signal').setDescription('Which signal').setRequired(true)
      .addChoices(...SENDABLE_SIGNALS.map((value) => ({ name: value, value })))))
  .addSubcommand((sub) => sub
    .setName('start')
    .setDescription("Start a background process as this channel's agent")
    .addStringOption((option) => option.setName('command').setDescription('A shell command line').setRequired(true).setMaxLength(4000))
    .addStringOption((option) => option.setName('cwd').setDescription("Working directory inside the agent's workspace"))
    .addStringOption((option) => option.setName('name').setDescription('A short label').setMaxLength(100))
    .addBooleanOption((option) => option.setName('interactive').setDescription('Give it a stdin for /process input')));

function subcommandOf(name: string | null): ProcessSubcommand {
  if (!name || !(SUBCOMMANDS as readonly string[]).includes(name)) throw invalidField('subcommand', `one of ${SUBCOMMANDS.join(', ')}`, name);
  return name as ProcessSubcommand;
}

/** An option's value whatever type the payload gives it: a hand-built or stale interaction may send any. */
function rawOption(interaction: Parameters<Command['execute']>[0], name: string): unknown {
  return interaction.options.get(name)?.value ?? undefined;
}

function checkChoice<T extends string>(field: string, value: unknown, choices: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) throw invalidField(field, `one of ${choices.join(', ')}`, value);
  return value as T;
}

/**
 * Discord checks types and ranges in its client; interactions built by hand (or older clients, or a command registered
 * with other option types) still get a clear refusal rather than an internal error.
 */
export function readOptions(interaction: Parameters<Command['execute']>[0], subcommand: ProcessSubcommand): ProcessCommandOptions {
  const options: ProcessCommandOptions = {};
  const filter = checkChoice('filter', rawOption(interaction, 'filter'), FILTERS);
  if (filter) options.filter = filter;
  if (subcommand !== 'list' && subcommand !== 'start') {
    const pid = rawOption(interaction, 'pid');
    if (pid === undefined) throw new AppError('INVALID_INPUT', "pid is required: the pid of one of this agent's processes (see /process list)");
    if (typeof pid !== 'number' || !Number.isInteger(pid) || pid < 1) throw invalidField('pid', 'a positive process id', pid);
    options.pid = pid;
  }
  const force = rawOption(interaction, 'force');
  if (force !== undefined) {
    if (typeof force !== 'boolean') throw invalidField('force', 'true or false', force);
    options.force = force;
  }
  const lines = rawOption(interaction, 'lines');
  if (lines !== undefined) {
    if (typeof lines !== 'number' || !Number.isInteger(lines) || lines < 1 || lines > MAX_LOG_LINES) {
      throw invalidField('lines', `an integer from 1 to ${MAX_LOG_LINES}`, lines);
    }
    options.lines = lines;
  }
  const stream = checkChoice('stream', rawOption(interaction, 'stream'), STREAMS);
  if (stream) options.stream = stream;
  for (const key of ['text', 'command', 'cwd', 'name'] as const) {
    const value = rawOption(interaction, key);
    if (value === undefined) continue;
    if (typeof value !== 'string') throw invalidField(key, 'text', value);
    options[key] = value;
  }
  for (const key of ['eof', 'interactive'] as const) {
    const value = rawOption(interaction, key);
    if (value === undefined) continue;
    if (typeof value !== 'boolean') throw invalidField(key, 'true or false', value);
    options[key] = value;
  }
  const signal = checkChoice('signal', rawOption(interaction, 'signal'), SENDABLE_SIGNALS);
  if (signal) options.signal = signal;
  return options;
}

function isMutating(subcommand: string | null): boolean {
  return subcommand !== null && MUTATING_SUBCOMMANDS.includes(subcommand);
}

export default {
  data,
  needsAgent: () => true,
  access: (subcommand) => (isMutating(subcommand) ? 'write' : 'read'),
  isPublic: isMutating,

  async execute(interaction, ctx: CommandContext) {
    const agent = ctx.agent!;
    const subcommand = subcommandOf(interaction.options.getSubcommand(false));
    const options = readOptions(interaction, subcommand);
    // start, input and signal answer quickly (and refusals stay private); a slow one is deferred by the router.
    if (subcommand === 'kill' || subcommand === 'restart') {
      // Refusals (a pid of another agent, a process already ended) answer at once and privately; a stop may take
      // the whole grace period, so only then is the answer deferred.
      const record = ctx.services.manager.resolve({ pid: options.pid!, agentName: agent.name });
      if (subcommand === 'restart' || record.status === 'running') await ctx.defer();
    }
    return ctx.services.runProcessCommand(agent, ctx.actorId, subcommand, options);
  },

  /** The agent's processes whose pid starts with, or whose command contains, what was typed: one indexed query. */
  async autocomplete(interaction, ctx) {
    const agent = ctx.agent;
    if (!agent) return [];
    const focused = interaction.options.getFocused(true);
    if (focused.name !== 'pid') return [];
    const typed = String(focused.value).trim().toLowerCase();
    const status: StatusFilter = ['kill', 'input', 'signal'].includes(interaction.options.getSubcommand(false) ?? '') ? 'running' : 'all';
    return ctx.services.manager.list({ agentName: agent.name, status, limit: 200 })
      .filter((row) => row.pid !== null && (!typed || String(row.pid).startsWith(typed) || row.command.toLowerCase().includes(typed)))
      .slice(0, MAX_CHOICES)
      .map((row) => {
        const label = `${row.pid} · ${row.status} · ${(row.name ?? row.command).replace(/\s+/g, ' ')}`;
        return { name: label.length > 100 ? `${label.slice(0, 99)}…` : label, value: row.pid! };
      });
  },
} satisfies Command;

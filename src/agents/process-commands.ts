import { AppError, describeValue, errorMessage, invalidField, isAppError } from '../errors.js';
import type { HookEngine } from '../hooks/hook-engine.js';
import type { Logger } from '../logger.js';
import { logPath, readLastLines } from '../process/log-reader.js';
import { describeEnd, type ProcessManager } from '../process/process-manager.js';
import type { LogStream, ProcessRecord, StatusFilter } from '../store/process-repo.js';
import { agentOwner, type AgentConfig } from './agent-config.js';
import { COMMAND_WIDTHS, cutLine, describeSandbox, elideMiddle, formatBytes, interactionTraits, readinessState, runTime, shortOutcome, supervisionLines } from './describe.js';
import { INPUT_MAX_BYTES } from '../process/input.js';
import { parseSignal, SENDABLE_SIGNALS } from '../process/signals.js';
import type { CommandReply } from './front-end.js';
import { ASKED_SAMPLE_MAX_AGE_MS } from '../process/resource-sampler.js';

export const PROCESS_SUBCOMMANDS = ['list', 'kill', 'logs', 'status', 'restart', 'input', 'signal', 'start'] as const;
/** Subcommands that change something: they need an allowed user, and are answered in public. */
export const MUTATING_SUBCOMMANDS: readonly string[] = ['kill', 'restart', 'input', 'signal', 'start'];
export type ProcessSubcommand = (typeof PROCESS_SUBCOMMANDS)[number];
export const LIST_FILTERS = ['all', 'running', 'exited', 'killed', 'lost', 'restarting', 'crash_loop'] as const;
export const LOG_STREAMS = ['stdout', 'stderr', 'both'] as const;
export const LOG_LINES_MIN = 1;
export const LOG_LINES_MAX = 1000;
export const LOG_LINES_DEFAULT = 50;
/** Discord's message limit: longer replies go out as a file. */
export const REPLY_LIMIT = 2_000;
/** The most an attachment carries; the end of the output is kept. */
export const ATTACHMENT_LIMIT_BYTES = 1024 * 1024;
const LIST_LIMIT = 50;

export interface ProcessCommandContext {
  manager: ProcessManager;
  hooks: Pick<HookEngine, 'hooksFor' | 'restartProcess'>;
  /** The agent of the channel (or console): only its processes are seen or touched. */
  agent: AgentConfig;
  /** Who asks (a Discord user id, `console`): recorded as who stopped a process. */
  actorId: string;
  log?: Logger;
  /** Why a process's live status message is no longer updated, when the front end gave up on it. */
  statusMessageProblem?: (processId: number) => string | undefined;
}

/** Raw option values, as a slash command (typed) or a console line (strings) gives them; all are checked here. */
export interface ProcessCommandOptions {
  filter?: unknown;
  pid?: unknown;
  force?: unknown;
  lines?: unknown;
  stream?: unknown;
  /** input: a line to type (Enter is added); with eof, stdin is closed after it. */
  text?: unknown;
  eof?: unknown;
  signal?: unknown;
  /** start: a command line, its directory, a label, and whether it takes input. */
  command?: unknown;
  cwd?: unknown;
  name?: unknown;
  interactive?: unknown;
}

const isAbsent = (value: unknown) => value === undefined || value === null || value === '';

function readPid(value: unknown): number {
  if (isAbsent(value)) throw new AppError('INVALID_INPUT', 'pid is required: the pid of one of this agent\'s processes (see /process list)');
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 2 ** 31 - 1) throw invalidField('pid', 'a positive integer', value);
  return n;
}

function readLines(value: unknown): number {
  if (isAbsent(value)) return LOG_LINES_DEFAULT;
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < LOG_LINES_MIN || n > LOG_LINES_MAX) {
    throw invalidField('lines', `an integer from ${LOG_LINES_MIN} to ${LOG_LINES_MAX}`, value);
  }
  return n;
}

function readChoice<T extends string>(value: unknown, field: string, allowed: readonly T[], fallback: T): T {
  if (isAbsent(value)) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) throw invalidField(field, `one of ${allowed.join(', ')}`, value);
  return value as T;
}

function readFlag(value: unknown, field: string): boolean {
  if (isAbsent(value)) return false;
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === 'yes' || value === '1' || value === field) return true;
  if (value === 'false' || value === 'no' || value === '0') return false;
  throw invalidField(field, 'true or false', value);
}

function readForce(value: unknown): boolean {
  return readFlag(value, 'force');
}

function readText(value: unknown, field: string, options: { isRequired: boolean; maxLength: number }): string | undefined {
  if (value === undefined || value === null) {
    if (options.isRequired) throw new AppError('INVALID_INPUT', `${field} is required`);
    return undefined;
  }
  if (typeof value !== 'string') throw invalidField(field, 'text', value);
  if (value.length > options.maxLength) throw new AppError('INVALID_INPUT', `${field} must be at most ${options.maxLength} characters (got ${value.length})`);
  return value;
}

function ownProcess(ctx: ProcessCommandContext, pid: number): ProcessRecord {
  return ctx.manager.resolve({ pid, agentName: ctx.agent.name });
}

/** Keeps the end of a text within `limitBytes`, from a line start. */
export function keepTail(text: string, limitBytes: number): string {
  if (Buffer.byteLength(text) <= limitBytes) return text;
  const buffer = Buffer.from(text);
  let tail = buffer.subarray(buffer.length - limitBytes).toString('utf8');
  const newline = tail.indexOf('\n');
  if (newline >= 0) tail = tail.slice(newline + 1);
  return `[earlier output cut to keep this file under ${formatBytes(limitBytes)}]\n${tail}`;
}

/** A reply within the message limit, or a short text with the whole content attached as a `.log` file. */
function fit(text: string, file: { name: string; content: string; summary: string }): CommandReply {
  if (text.length <= REPLY_LIMIT) return { text };
  return { text: file.summary, attachment: { name: file.name, content: keepTail(file.content, ATTACHMENT_LIMIT_BYTES) } };
}

const fence = (body: string) => `\`\`\`\n${body.replace(/```/g, "'''")}\n\`\`\``;

/**
 * `/process list|kill|logs|status|restart` for one agent, front-end neutral (slash commands and console lines call
 * this). Never throws for bad input or a refused action: those come back as `isError` replies that say what to do.
 */
export async function runProcessCommand(
  ctx: ProcessCommandContext,
  subcommand: ProcessSubcommand | string,
  options: ProcessCommandOptions = {},
): Promise<CommandReply> {
  try {
    switch (subcommand) {
      case 'list':
        return list(ctx, options);
      case 'kill':
        return await kill(ctx, options);
      case 'logs':
        return logs(ctx, options);
      case 'status':
        return status(ctx, options);
      case 'restart':
        return await restart(ctx, options);
      case 'input':
        return await input(ctx, options);
      case 'signal':
        return sendSignal(ctx, options);
      case 'start':
        return await start(ctx, options);
      default:
        return { text: `Unknown /process subcommand ${describeValue(subcommand)}: use one of ${PROCESS_SUBCOMMANDS.join(', ')}.`, isError: true };
    }
  } catch (error) {
    if (isAppError(error) && error.userFacing) return { text: error.message, isError: true };
    ctx.log?.error({ err: error, subcommand, agent: ctx.agent.name, actor: ctx.actorId }, '/process command failed');
    return { text: `Internal error while running /process ${subcommand} (${errorMessage(error)}); the log has the details.`, isError: true };
  }
}

function list(ctx: ProcessCommandContext, options: ProcessCommandOptions): CommandReply {
  const filter = readChoice<StatusFilter>(options.filter, 'filter', LIST_FILTERS, 'all');
  const rows = ctx.manager.list({ agentName: ctx.agent.name, status: filter, limit: LIST_LIMIT + 1 });
  if (!rows.length) {
    return { text: filter === 'all' ? `${ctx.agent.name} has no processes.` : `${ctx.agent.name} has no ${filter} processes.` };
  }
  const shown = rows.slice(0, LIST_LIMIT);
  const table = formatTable(['PID', 'STATUS', 'TIME', 'TYPE', 'COMMAND'], shown.map((r) => [
    String(r.pid ?? '?'), shortOutcome(r), runTime(r), r.processType, r.name ? `${cutLine(r.name, 30)}: ${r.command}` : r.command,
  ]));
  const head = `Processes of ${ctx.agent.name} (${filter}${rows.length > LIST_LIMIT ? `, newest ${LIST_LIMIT}` : `, ${rows.length}`}):`;
  // The whole command when the reply has room; else the widest start…end that fits; else the full table attached.
  let text = '';
  for (const width of COMMAND_WIDTHS) {
    const compact = formatTable(['PID', 'STATUS', 'TIME', 'TYPE', 'COMMAND'], shown.map((r) => [
      String(r.pid ?? '?'), shortOutcome(r), runTime(r), r.processType, elideMiddle(r.name ? `${cutLine(r.name, 30)}: ${r.command}` : r.command, width),
    ]));
    text = `${head}\n${fence(compact)}`;
    if (text.length <= REPLY_LIMIT) break;
  }
  return fit(text, { name: `processes-${ctx.agent.name}.log`, content: `${head}\n${table}\n`, summary: `${head} ${shown.length} rows, attached.` });
}

async function kill(ctx: ProcessCommandContext, options: ProcessCommandOptions): Promise<CommandReply> {
  const record = ownProcess(ctx, readPid(options.pid));
  const force = readForce(options.force);
  if (record.status !== 'running' && record.status !== 'restarting') return { text: `pid ${record.pid} is not running: it ${describeEnd(record)}.`, isError: true };
  const stopped = await ctx.manager.kill({ id: record.id }, { force, by: ctx.actorId });
  if (record.status === 'restarting') return { text: `Cancelled the pending restart of pid ${stopped.pid} (${elideMiddle(stopped.command, 100)}); it stays stopped.` };
  return { text: `Stopped pid ${stopped.pid} (${elideMiddle(stopped.command, 100)}) with ${stopped.signal ?? 'a signal'} after ${runTime(stopped)}.` };
}

function logs(ctx: ProcessCommandContext, options: ProcessCommandOptions): CommandReply {
  const record = ownProcess(ctx, readPid(options.pid));
  const lines = readLines(options.lines);
  const stream = readChoice(options.stream, 'stream', LOG_STREAMS, 'both');
  const streams: LogStream[] = stream === 'both' ? ['stdout', 'stderr'] : [stream];
  const parts: string[] = [];
  for (const s of streams) {
    const text = readLastLines(logPath(record, s), lines, ATTACHMENT_LIMIT_BYTES);
    if (stream === 'both') parts.push(text.length ? `--- ${s} ---\n${text.join('\n')}` : `--- ${s} (empty) ---`);
    else parts.push(text.length ? text.join('\n') : '(no output)');
  }
  const body = parts.join('\n');
  const head = `Last ${lines} lines of ${stream === 'both' ? 'stdout and stderr' : stream} of pid ${record.pid} (${record.status === 'running' ? 'running' : describeEnd(record)}):`;
  return fit(`${head}\n${fence(body)}`, {
    name: `pid-${record.pid}-${stream}.log`, content: `${body}\n`, summary: `${head} attached as pid-${record.pid}-${stream}.log.`,
  });
}

function status(ctx: ProcessCommandContext, options: ProcessCommandOptions): CommandReply {
  const record = ownProcess(ctx, readPid(options.pid));
  const usage = ctx.manager.usage(record.id, { maxAgeMs: ASKED_SAMPLE_MAX_AGE_MS });
  const hooks = ctx.hooks.hooksFor(record.id);
  const lines = [
    `pid ${record.pid} (#${record.id}) of ${record.agentName}, ${record.processType}${record.name ? ` "${record.name}"` : ''}`,
    `command:   ${elideMiddle(record.command, 300)}`,
    `directory: ${record.workingDirectory}`,
    `status:    ${record.status === 'running' ? readinessState(record) ?? 'running' : describeEnd(record)}${record.stoppedBy ? ` (stopped by ${record.stoppedBy})` : ''}`,
    `started:   ${record.startedAt}${record.endedAt ? `, ended ${record.endedAt}` : ''} (${runTime(record)})`,
    `sandbox:   ${describeSandbox(record.sandbox)}`,
    ...supervisionLines(record).map(([label, text]) => `${`${label}:`.padEnd(11)}${cutLine(text, 300)}`),
  ];
  if (usage) lines.push(`resources: CPU ${usage.cpuPercent.toFixed(1)}%, memory ${formatBytes(usage.rssBytes)} in ${usage.processCount} process(es)`);
  if (record.restartedFrom) lines.push(`restarted from #${record.restartedFrom}`);
  const traits = interactionTraits(record);
  if (traits) lines.push(`io:        ${traits}`);
  if (record.lastSignal) lines.push(`signal:    ${record.lastSignal} by ${record.lastSignalBy} at ${record.lastSignalAt}`);
  const problem = ctx.statusMessageProblem?.(record.id);
  if (problem) lines.push(`status message: ${problem}`);
  for (const hook of hooks) lines.push(`hook:      ${hook.description} (fired ${hook.row.fireCount})`);
  const tail = ctx.manager.tail(record.id, 5)?.map((l) => (l.stream === 'stderr' ? `[stderr] ${l.text}` : l.text))
    ?? readLastLines(logPath(record, 'stdout'), 5);
  const body = `${lines.join('\n')}${tail.length ? `\nlast lines:\n${tail.map((l) => cutLine(l, 200)).join('\n')}` : ''}`;
  return fit(fence(body), { name: `pid-${record.pid}-status.log`, content: `${body}\n`, summary: `Status of pid ${record.pid} attached.` });
}

async function restart(ctx: ProcessCommandContext, options: ProcessCommandOptions): Promise<CommandReply> {
  const record = ownProcess(ctx, readPid(options.pid));
  const started = await ctx.hooks.restartProcess({ id: record.id }, { by: ctx.actorId });
  return { text: `Restarted pid ${record.pid} as pid ${started.pid} (${elideMiddle(started.command, 100)}).` };
}

async function input(ctx: ProcessCommandContext, options: ProcessCommandOptions): Promise<CommandReply> {
  const record = ownProcess(ctx, readPid(options.pid));
  const text = readText(options.text, 'text', { isRequired: false, maxLength: INPUT_MAX_BYTES - 1 }) ?? '';
  const isEof = readFlag(options.eof, 'eof');
  if (!text && !isEof) throw new AppError('INVALID_INPUT', 'text is required: the line to type (or eof to close its input)');
  // A person types a line: Enter is part of it.
  const { bytes } = await ctx.manager.input({ id: record.id }, text ? `${text}\n` : '', { isEof });
  return { text: `Sent ${bytes} bytes to pid ${record.pid}${isEof ? ' and closed its input' : ''}.` };
}

function sendSignal(ctx: ProcessCommandContext, options: ProcessCommandOptions): CommandReply {
  const record = ownProcess(ctx, readPid(options.pid));
  if (isAbsent(options.signal)) throw new AppError('INVALID_INPUT', `signal is required: one of ${SENDABLE_SIGNALS.join(', ')}`);
  const signal = parseSignal(options.signal);
  const after = ctx.manager.signal({ id: record.id }, signal, { by: ctx.actorId });
  return { text: `Sent SIG${signal} to pid ${after.pid}${after.pausedAt ? ' (paused; send CONT to resume)' : signal === 'CONT' ? ' (resumed)' : ''}.` };
}

async function start(ctx: ProcessCommandContext, options: ProcessCommandOptions): Promise<CommandReply> {
  const command = readText(options.command, 'command', { isRequired: true, maxLength: 16_384 })!;
  const cwd = readText(options.cwd, 'cwd', { isRequired: false, maxLength: 4096 });
  const name = readText(options.name, 'name', { isRequired: false, maxLength: 100 });
  const interactive = readFlag(options.interactive, 'interactive');
  const record = await ctx.manager.spawn({
    agent: agentOwner(ctx.manager.home, ctx.agent), command, workingDirectory: cwd || undefined, name: name?.trim() || undefined, processType: 'background', interactive,
    contextJson: JSON.stringify({ startedBy: ctx.actorId }),
  });
  return { text: `Started pid ${record.pid} (${cutLine(record.command, 100)})${interactive ? ', interactive: /process input sends it lines' : ''}.` };
}

function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}

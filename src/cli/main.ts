import { createReadStream, existsSync, mkdirSync, watch } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { config as loadDotenv } from 'dotenv';
import { loadConfig, protectedPaths, type Config } from '../config.js';
import { AppError, errorMessage, isAppError } from '../errors.js';
import { createLogger, silentLogger } from '../logger.js';
import { agentOwnerLoader, checkAgentName } from '../agents/agent-config.js';
import { openDatabase } from '../store/database.js';
import { processToJson, type LogStream, type ProcessCategory, type ProcessRecord, type ProcessType } from '../store/process-repo.js';
import { ProcessManager, describeEnd } from '../process/process-manager.js';
import { fileSize, logPath, readLastLines } from '../process/log-reader.js';
import { usageByGroup } from '../process/resources.js';
import { HookEngine } from '../hooks/hook-engine.js';
import { JournalPort } from '../hooks/journal-port.js';
import { parseChoice, parseIntegerOption, parsePid, parseVerbArgs } from './args.js';
import { compileSafePattern } from '../safe-pattern.js';
import { MAX_RESTARTS_LIMIT, READY_TIMEOUT_MAX_SECONDS, RESTART_ON, parseReadySpec, parseRestartPolicy } from '../process/supervision-spec.js';
import { table } from './format.js';
import { doctor } from './doctor.js';
import { service } from './service.js';
import { describeSandbox, elideMiddle, formatBytes, interactionTraits, readinessState, runTime, shortOutcome, supervisionLines } from '../agents/describe.js';
import { INPUT_MAX_BYTES } from '../process/input.js';
import { parseSignal, SENDABLE_SIGNALS } from '../process/signals.js';
import {
  formatCursor, parseCursor, WAIT_CONDITIONS, WAIT_TIMEOUT_DEFAULT_SECONDS, WAIT_TIMEOUT_MAX_SECONDS, WAIT_TIMEOUT_MIN_SECONDS, waitForProcess, waitResultJson, type WaitCondition,
} from '../agents/wait-process.js';

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /** All of stdin, for `input` without text arguments. */
  readStdin?: () => Promise<string>;
  /** The terminal's width when stdout is one; undefined when piped (then nothing is cut). */
  columns?: number | undefined;
}

const USAGE = `usage: chorus <verb> [options]

  ps [--agent A] [--all] [--json]            list processes (running ones unless --all)
  status <pid> [--agent A] [--json]          one process, its hooks and resources
  logs <pid> [--agent A] [--lines N] [--stream stdout|stderr|both] [--follow]
  kill <pid> [--agent A] [--force]           stop a process and its whole tree
  restart <pid> [--agent A]                  stop it if running, start the same command again
  spawn --agent A [--cwd D] [--type background|concurrent] [--name N] [--interactive] [--tty] [--json]
        [--restart failure|always|never] [--max-restarts N]
        [--ready-port N] [--ready-http PATH] [--ready-pattern RE] [--ready-timeout S] -- <command>
  input <pid> [--agent A] [--eof] [-- text]  type into an interactive process (text, else stdin as is)
  signal <pid> <SIGNAL> [--agent A]          INT HUP QUIT TERM KILL USR1 USR2 STOP CONT WINCH
  wait <pid> --until exit|output|match|ready [--pattern RE] [--timeout S] [--cursor C] [--agent A] [--json]
  supervise                                  watch processes and run hooks, without a chat front end
  bot                                        run the bot (what npm start runs)
  doctor [--json]                            check the setup; each failing check says how to fix it
  service install [--system] [--print]       write a systemd unit that runs the bot (--print: only print it)
  service uninstall [--system]               remove that unit

CHORUS_HOME (default ~/.chorus-agents) selects the home; .env in the current directory is read.`;

const PROCESS_TYPES = ['background', 'concurrent'] as const;
const STREAMS = ['stdout', 'stderr', 'both'] as const;

interface Context {
  config: Config;
  manager: ProcessManager;
  hooks: HookEngine;
  io: CliIo;
}

function openManager(config: Config): ProcessManager {
  mkdirSync(config.chorusHome, { recursive: true, mode: 0o700 });
  const db = openDatabase(join(config.chorusHome, 'chorus.db'));
  return new ProcessManager({
    home: config.chorusHome, db, log: createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel }),
    graceMs: config.killGraceMs, logCapBytes: config.logCapBytes, loadOwner: agentOwnerLoader(config.chorusHome),
    sandbox: { mode: config.sandboxMode, protectedDirs: protectedPaths(config) },
  });
}

function lookup(ctx: Context, pidText: string | undefined, agent: string | undefined, verb: string): ProcessRecord {
  const pid = parsePid(pidText, verb);
  const agentName = agent === undefined ? undefined : checkAgentName(agent, '--agent');
  return ctx.manager.observe(ctx.manager.resolve(agentName === undefined ? { pid } : { pid, agentName }));
}

function printRow(ctx: Context, record: ProcessRecord, asJson: boolean): void {
  if (asJson) ctx.io.out(JSON.stringify(processToJson(record), null, 2));
  else ctx.io.out(`${record.pid}\t${record.agentName}\t${record.status}\t${record.command}`);
}

async function ps(ctx: Context, args: string[]): Promise<number> {
  const { values } = parseVerbArgs('ps', args, {
    agent: { type: 'string' }, all: { type: 'boolean' }, json: { type: 'boolean' },
  }, false);
  const agentName = values.agent === undefined ? undefined : checkAgentName(values.agent, '--agent');
  const rows = ctx.manager
    .list({ ...(agentName === undefined ? {} : { agentName }), status: values.all ? 'all' : 'running' })
    .map((r) => ctx.manager.observe(r))
    .filter((r) => values.all || r.status === 'running');
  if (values.json) {
    ctx.io.out(JSON.stringify(rows.map(processToJson), null, 2));
    return 0;
  }
  if (!rows.length) {
    ctx.io.out(values.all ? 'no processes' : 'no running processes (--all shows ended ones)');
    return 0;
  }
  const header = ['PID', 'AGENT', 'STATUS', 'TIME', 'TYPE', 'COMMAND'];
  const cells = rows.map((r) => [String(r.pid), r.agentName, shortOutcome(r), runTime(r), r.processType, r.name ? `${r.name}: ${r.command}` : r.command]);
  // On a terminal the command gets what the row leaves of its width (start…end); piped, it is printed whole.
  const columns = ctx.io.columns;
  const before = header.slice(0, -1).reduce((sum, h, i) => sum + Math.max(h.length, ...cells.map((c) => c[i]!.length)) + 2, 0);
  const width = columns === undefined ? Infinity : Math.max(40, columns - before);
  ctx.io.out(table(header, cells.map((c) => [...c.slice(0, -1), elideMiddle(c.at(-1)!, width)])));
  return 0;
}

async function status(ctx: Context, args: string[]): Promise<number> {
  const { values, positionals } = parseVerbArgs('status', args, { agent: { type: 'string' }, json: { type: 'boolean' } });
  const record = lookup(ctx, positionals[0], values.agent, 'status');
  const usage = record.status === 'running' && record.pgid ? usageByGroup(new Set([record.pgid])).get(record.pgid) : undefined;
  const hooks = ctx.hooks.hooksFor(record.id);
  if (values.json) {
    ctx.io.out(JSON.stringify({
      ...processToJson(record), rss_bytes: usage?.rssBytes ?? null, process_count: usage?.processCount ?? null,
      hooks: hooks.map((h) => ({ id: h.row.id, ...JSON.parse(h.row.specJson), fire_count: h.row.fireCount })),
    }, null, 2));
    return 0;
  }
  const lines = [
    `pid ${record.pid} (#${record.id})  ${record.agentName}  ${record.processType}${record.name ? `  "${record.name}"` : ''}`,
    `command   ${record.command}`,
    `directory ${record.workingDirectory}`,
    `status    ${record.status === 'running' ? readinessState(record) ?? 'running' : describeEnd(record)}${record.stoppedBy ? ` (by ${record.stoppedBy})` : ''}`,
    `started   ${record.startedAt}${record.endedAt ? `   ended ${record.endedAt}` : ''}   (${runTime(record)})`,
    `sandbox   ${describeSandbox(record.sandbox)}`,
    ...supervisionLines(record).map(([label, text]) => `${label.padEnd(10)}${text}`),
  ];
  if (usage) lines.push(`memory    ${formatBytes(usage.rssBytes)} in ${usage.processCount} process(es)`);
  if (record.restartedFrom) lines.push(`restarted from #${record.restartedFrom}`);
  const traits = interactionTraits(record);
  if (traits) lines.push(`io        ${traits}`);
  if (record.lastSignal) lines.push(`signal    ${record.lastSignal} by ${record.lastSignalBy} at ${record.lastSignalAt}`);
  for (const [i, hook] of hooks.entries()) {
    lines.push(`${i === 0 ? 'hooks     ' : '          '}${hook.description} (fired ${hook.row.fireCount} of ${hook.row.maxFires})`);
  }
  lines.push(`logs      ${record.stdoutLog}`, `          ${record.stderrLog}`);
  ctx.io.out(lines.join('\n'));
  return 0;
}

async function logs(ctx: Context, args: string[]): Promise<number> {
  const { values, positionals } = parseVerbArgs('logs', args, {
    agent: { type: 'string' }, lines: { type: 'string' }, stream: { type: 'string' }, follow: { type: 'boolean', short: 'f' },
  });
  const record = lookup(ctx, positionals[0], values.agent, 'logs');
  const lines = parseIntegerOption(values.lines, 'lines', 1, 100_000, 50);
  const stream = parseChoice(values.stream, 'stream', STREAMS, 'both');
  const streams: LogStream[] = stream === 'both' ? ['stdout', 'stderr'] : [stream];
  // Sizes first: the tail is printed up to them and --follow continues from them, so no line is lost or doubled.
  const offsets = new Map(streams.map((s) => [s, fileSize(logPath(record, s))]));
  for (const s of streams) {
    const text = readLastLines(logPath(record, s), lines, undefined, offsets.get(s));
    if (stream === 'both' && s === 'stderr' && text.length) ctx.io.out('--- stderr ---');
    if (text.length) ctx.io.out(text.join('\n'));
  }
  if (values.follow) await follow(ctx, record, streams, offsets);
  return 0;
}

/** Prints each line appended to the logs (stderr lines tagged when both are followed) until the process has ended. */
async function follow(ctx: Context, record: ProcessRecord, streams: LogStream[], offsets: Map<LogStream, number>): Promise<void> {
  const carry = new Map<LogStream, string>(streams.map((s) => [s, '']));
  const decoders = new Map(streams.map((s) => [s, new StringDecoder('utf8')]));
  const print = (s: LogStream, line: string) => ctx.io.out(s === 'stderr' && streams.length > 1 ? `[stderr] ${line}` : line);
  let wake: (() => void) | undefined;
  const watcher = watch(record.runDir, { persistent: false }, () => wake?.());
  try {
    for (;;) {
      let isIdle = true;
      for (const s of streams) {
        const path = logPath(record, s);
        let from = offsets.get(s)!;
        const size = fileSize(path);
        if (size < from) from = 0; // rotated
        if (size <= from) continue;
        isIdle = false;
        for await (const chunk of createReadStream(path, { start: from, end: size - 1 })) {
          const parts = (carry.get(s)! + decoders.get(s)!.write(chunk as Buffer)).split('\n');
          carry.set(s, parts.pop()!);
          for (const line of parts) print(s, line.endsWith('\r') ? line.slice(0, -1) : line);
        }
        offsets.set(s, size);
      }
      if (isIdle && ctx.manager.observe(ctx.manager.repo.get(record.id)!).status !== 'running') break;
      if (isIdle) await Promise.race([new Promise<void>((r) => { wake = r; }), sleep(500)]);
    }
  } finally {
    watcher.close();
  }
  for (const s of streams) if (carry.get(s)) print(s, carry.get(s)!);
}


async function kill(ctx: Context, args: string[]): Promise<number> {
  const { values, positionals } = parseVerbArgs('kill', args, { agent: { type: 'string' }, force: { type: 'boolean' } });
  const record = lookup(ctx, positionals[0], values.agent, 'kill');
  const stopped = await ctx.manager.kill({ id: record.id }, { force: values.force ?? false, by: 'cli' });
  ctx.io.out(`stopped pid ${stopped.pid} (${stopped.signal ?? 'its pending restart was cancelled'})`);
  return 0;
}

async function restart(ctx: Context, args: string[]): Promise<number> {
  const { values, positionals } = parseVerbArgs('restart', args, { agent: { type: 'string' }, json: { type: 'boolean' } });
  const record = lookup(ctx, positionals[0], values.agent, 'restart');
  warnIfUnconfined(ctx);
  const started = await ctx.hooks.restartProcess({ id: record.id }, { by: 'cli' });
  if (values.json) printRow(ctx, started, true);
  else ctx.io.out(`restarted pid ${record.pid} as pid ${started.pid}`);
  return 0;
}

async function spawnVerb(ctx: Context, args: string[]): Promise<number> {
  const { values, positionals } = parseVerbArgs('spawn', args, {
    agent: { type: 'string' }, cwd: { type: 'string' }, type: { type: 'string' }, name: { type: 'string' },
    category: { type: 'string' }, json: { type: 'boolean' }, interactive: { type: 'boolean' }, tty: { type: 'boolean' },
    restart: { type: 'string' }, 'max-restarts': { type: 'string' },
    'ready-port': { type: 'string' }, 'ready-http': { type: 'string' }, 'ready-pattern': { type: 'string' }, 'ready-timeout': { type: 'string' },
  });
  if (values.agent === undefined) throw new AppError('INVALID_INPUT', 'spawn: --agent is required');
  const agent = checkAgentName(values.agent, '--agent');
  const processType = parseChoice<ProcessType>(values.type, 'type', PROCESS_TYPES, 'background');
  const category = values.category === undefined ? undefined
    : parseChoice<ProcessCategory>(values.category, 'category', ['test_suite', 'build', 'server', 'analysis', 'custom'], 'custom');
  if (values.name !== undefined && (!values.name.trim() || values.name.length > 100)) {
    throw new AppError('INVALID_INPUT', '--name must be 1-100 characters');
  }
  // One argument is a shell command line; several are argv words, quoted so the shell sees them unchanged.
  const command = positionals.length === 1 ? positionals[0]! : positionals.map(shellQuote).join(' ');
  warnIfUnconfined(ctx);
  const supervision = supervisionOptions(values);
  const record = await ctx.manager.spawn({
    agent, command, workingDirectory: values.cwd, processType, name: values.name, category, interactive: values.interactive, tty: values.tty, ...supervision,
  });
  if (values.json) printRow(ctx, record, true);
  else {
    const supervisor = ctx.manager.runningSupervisor();
    ctx.io.out(`started pid ${record.pid}${supervisor ? '' : ' (no supervisor is running; hooks run once one starts)'}`);
  }
  return 0;
}

async function input(ctx: Context, args: string[]): Promise<number> {
  const dash = args.indexOf('--');
  const { values, positionals } = parseVerbArgs('input', dash < 0 ? args : args.slice(0, dash), { agent: { type: 'string' }, eof: { type: 'boolean' } });
  if (positionals.length > 1) throw new AppError('INVALID_INPUT', `input: the text goes after -- (got ${JSON.stringify(positionals[1])} before it)`);
  const record = lookup(ctx, positionals[0], values.agent, 'input');
  // Words after -- are a line (Enter added); without them, stdin is sent exactly as it comes.
  const text = dash >= 0 ? `${args.slice(dash + 1).join(' ')}\n` : await (ctx.io.readStdin ?? readProcessStdin)();
  if (Buffer.byteLength(text) > INPUT_MAX_BYTES) throw new AppError('INVALID_INPUT', `input: the text must be at most ${INPUT_MAX_BYTES} bytes (got ${Buffer.byteLength(text)})`);
  const { bytes } = await ctx.manager.input({ id: record.id }, text, { isEof: values.eof ?? false });
  ctx.io.out(`sent ${bytes} bytes to pid ${record.pid}${values.eof ? ' and closed its input' : ''}`);
  return 0;
}

async function readProcessStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    chunks.push(chunk as Buffer);
    size += (chunk as Buffer).length;
    if (size > INPUT_MAX_BYTES) break;
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function signalVerb(ctx: Context, args: string[]): Promise<number> {
  const { values, positionals } = parseVerbArgs('signal', args, { agent: { type: 'string' } });
  const record = lookup(ctx, positionals[0], values.agent, 'signal');
  if (positionals[1] === undefined) throw new AppError('INVALID_INPUT', `signal: the signal is required (one of ${SENDABLE_SIGNALS.join(', ')})`);
  const signal = parseSignal(positionals[1], 'signal');
  const after = ctx.manager.signal({ id: record.id }, signal, { by: 'cli' });
  ctx.io.out(`sent SIG${signal} to pid ${after.pid}${after.pausedAt ? ' (paused)' : ''}`);
  return 0;
}

async function waitVerb(ctx: Context, args: string[]): Promise<number> {
  const { values, positionals } = parseVerbArgs('wait', args, {
    agent: { type: 'string' }, until: { type: 'string' }, pattern: { type: 'string' }, timeout: { type: 'string' }, cursor: { type: 'string' }, json: { type: 'boolean' },
  });
  const record = lookup(ctx, positionals[0], values.agent, 'wait');
  if (values.until === undefined) throw new AppError('INVALID_INPUT', `wait: --until is required (one of ${WAIT_CONDITIONS.join(', ')})`);
  const until = parseChoice<WaitCondition>(values.until, 'until', WAIT_CONDITIONS, 'exit');
  if (until === 'match' && values.pattern === undefined) throw new AppError('INVALID_INPUT', 'wait: --until match needs --pattern RE');
  const pattern = values.pattern === undefined ? undefined : compileSafePattern(values.pattern, '--pattern', 'INVALID_INPUT');
  const timeoutSeconds = parseIntegerOption(values.timeout, 'timeout', WAIT_TIMEOUT_MIN_SECONDS, WAIT_TIMEOUT_MAX_SECONDS, WAIT_TIMEOUT_DEFAULT_SECONDS);
  const cursor = parseCursor(values.cursor, '--cursor');
  const result = await waitForProcess(ctx.manager, record, { until, pattern, timeoutSeconds, cursor });
  if (values.json) {
    ctx.io.out(JSON.stringify({ ...processToJson(result.record), ...waitResultJson(result, until) }, null, 2));
  } else {
    for (const line of result.lines) ctx.io.out(line);
    ctx.io.out(`${result.held ? 'held' : 'not held'}: pid ${result.record.pid} ${result.record.status === 'running' ? 'running' : describeEnd(result.record)}; next cursor ${formatCursor(result.nextCursor)}`);
  }
  // Like timeout(1): a wait whose condition did not hold fails.
  return result.held ? 0 : 124;
}

/** CHORUS_SANDBOX=auto without a working bwrap: the one line that says the process runs unconfined, and the fix. */
function warnIfUnconfined(ctx: Context): void {
  const warning = ctx.manager.sandbox.warning();
  if (warning) ctx.io.err(`chorus: warning: ${warning}`);
}

/** --restart, --max-restarts and --ready-*: checked here so the message names the flag, then stored like a tool call's. */
function supervisionOptions(values: Partial<Record<'restart' | 'max-restarts' | 'ready-port' | 'ready-http' | 'ready-pattern' | 'ready-timeout', string>>): { readyJson?: string; restartJson?: string } {
  const result: { readyJson?: string; restartJson?: string } = {};
  const maxRestarts = values['max-restarts'] === undefined ? undefined : parseIntegerOption(values['max-restarts'], 'max-restarts', 1, MAX_RESTARTS_LIMIT, 0);
  if (values.restart !== undefined) {
    const on = parseChoice(values.restart, 'restart', RESTART_ON, 'never');
    result.restartJson = JSON.stringify(parseRestartPolicy({ on, max_restarts: maxRestarts }));
  } else if (maxRestarts !== undefined) {
    throw new AppError('INVALID_INPUT', '--max-restarts needs --restart failure or --restart always');
  }
  const port = values['ready-port'] === undefined ? undefined : parseIntegerOption(values['ready-port'], 'ready-port', 1, 65_535, 0);
  const timeout = values['ready-timeout'] === undefined ? undefined : parseIntegerOption(values['ready-timeout'], 'ready-timeout', 1, READY_TIMEOUT_MAX_SECONDS, 0);
  const httpPath = values['ready-http'];
  if (httpPath !== undefined && port === undefined) throw new AppError('INVALID_INPUT', '--ready-http needs --ready-port: the GET goes to http://127.0.0.1:<port><PATH>');
  if (httpPath !== undefined && !/^\/\S*$/.test(httpPath)) throw new AppError('INVALID_INPUT', `--ready-http must be a URL path starting with / (got ${JSON.stringify(httpPath)})`);
  const pattern = values['ready-pattern'];
  if (pattern !== undefined) compileSafePattern(pattern, '--ready-pattern', 'INVALID_INPUT');
  if (port === undefined && pattern === undefined) {
    if (timeout !== undefined) throw new AppError('INVALID_INPUT', '--ready-timeout needs --ready-port or --ready-pattern');
    return result;
  }
  result.readyJson = JSON.stringify(parseReadySpec({ port, http_path: httpPath, pattern, timeout_seconds: timeout }));
  return result;
}

export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

const VERBS: Record<string, (ctx: Context, args: string[]) => Promise<number>> = {
  ps, status, logs, kill, restart, spawn: spawnVerb, input, signal: signalVerb, wait: waitVerb,
};

/** Runs one CLI verb; returns the exit code. Errors become one line on stderr. */
export async function main(argv: string[], io: CliIo = defaultIo()): Promise<number> {
  const [verb, ...args] = argv;
  if (verb === undefined || verb === '--help' || verb === '-h' || verb === 'help') {
    (verb === undefined ? io.err : io.out)(USAGE);
    return verb === undefined ? 2 : 0;
  }
  try {
    const hasEnvFile = existsSync('.env');
    if (hasEnvFile) loadDotenv({ path: '.env', quiet: true });
    const config = loadConfig(io.env, { envDir: hasEnvFile ? process.cwd() : undefined });
    if (verb === 'bot' || verb === 'supervise') {
      const { runBot } = await import('../main.js');
      return await runBot(config, { headless: verb === 'supervise' });
    }
    // Neither opens (nor creates) the home: doctor inspects it as it is, service only writes a unit file.
    if (verb === 'doctor') return await doctor(config, args, io.out);
    if (verb === 'service') return await service(args, io, { hasDiscordToken: config.discordToken !== undefined });
    const handler = VERBS[verb];
    if (!handler) {
      io.err(`chorus: unknown verb ${JSON.stringify(verb)}; verbs: ${[...Object.keys(VERBS), 'supervise', 'bot', 'doctor', 'service'].join(', ')}`);
      return 2;
    }
    const manager = openManager(config);
    const hooks = new HookEngine({ manager, log: silentLogger(), port: new JournalPort(join(config.chorusHome, 'hook-journal.jsonl')) });
    try {
      return await handler({ config, manager, hooks, io }, args);
    } finally {
      await manager.close();
    }
  } catch (error) {
    io.err(`chorus: ${isAppError(error) ? error.message : errorMessage(error)}`);
    return isAppError(error) && error.code === 'INVALID_INPUT' ? 2 : 1;
  }
}

function defaultIo(): CliIo {
  return {
    out: (text) => process.stdout.write(`${text}\n`),
    err: (text) => process.stderr.write(`${text}\n`),
    env: process.env,
    columns: process.stdout.isTTY ? process.stdout.columns : undefined,
  };
}

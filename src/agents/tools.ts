import { AppError, describeValue, errorMessage, invalidField, isAppError } from '../errors.js';
import type { HookEngine } from '../hooks/hook-engine.js';
import { compileSafePattern } from '../safe-pattern.js';
import type { Logger } from '../logger.js';
import { describeEnd, type ProcessManager } from '../process/process-manager.js';
import type { LogStream, ProcessCategory, ProcessRecord, ProcessType, StatusFilter } from '../store/process-repo.js';
import { agentOwner, type AgentConfig } from './agent-config.js';
import { cutLine, formatBytes, readinessState, runTime, supervisionLines } from './describe.js';
import { HOOK_ACTIONS, HOOK_TRIGGER_TYPES } from '../hooks/hook-spec.js';
import { MAX_RESTARTS_LIMIT, READY_TIMEOUT_MAX_SECONDS, RESTART_ON, describeReady, describeRestartPolicy, parseReadySpec, parseRestartPolicy } from '../process/supervision-spec.js';
import type { ToolCall, ToolDefinition } from './llm-client.js';
import { readLastOf, readSinceCursor, streamCursor } from './process-output.js';
import { RUN_COMMAND_DEFAULT_TIMEOUT_SECONDS, RUN_COMMAND_MAX_TIMEOUT_SECONDS, runForeground } from './run-command.js';
import { ASKED_SAMPLE_MAX_AGE_MS } from '../process/resource-sampler.js';
import { INPUT_MAX_BYTES } from '../process/input.js';
import { parseSignal, SENDABLE_SIGNALS } from '../process/signals.js';
import {
  parseCursor, WAIT_CONDITIONS, WAIT_TIMEOUT_DEFAULT_SECONDS, WAIT_TIMEOUT_MAX_SECONDS, WAIT_TIMEOUT_MIN_SECONDS, waitForProcess, waitResultJson,
} from './wait-process.js';

/** What a tool call runs with: always the calling branch's agent, so pids resolve within it and nowhere else. */
export interface ToolContext {
  agent: AgentConfig;
  branchId: string;
  /** The branch's hook recursion depth; processes it starts record it. */
  depth: number;
  manager: ProcessManager;
  hooks: HookEngine;
  log: Logger;
  signal?: AbortSignal | undefined;
  /** The parent environment children are built from (allow-listed); process.env by default. */
  env?: NodeJS.ProcessEnv | undefined;
}

export interface ToolResult {
  content: string;
  isError: boolean;
}

export const PROCESS_TYPES = ['background', 'concurrent'] as const;
export const CATEGORIES = ['test_suite', 'build', 'server', 'analysis', 'custom'] as const;
export const STATUS_FILTERS = ['all', 'running', 'exited', 'killed', 'lost', 'restarting', 'crash_loop'] as const;
export const OUTPUT_STREAMS = ['stdout', 'stderr', 'both'] as const;
const OUTPUT_LINES_MAX = 500;
const OUTPUT_LINES_DEFAULT = 50;
const LINE_SHOWN_MAX = 1_000;
const LIST_LIMIT = 50;
const TIMEOUT_SECONDS_MAX = 604_800;

const HOOK_SCHEMA = {
  type: 'object',
  properties: {
    trigger: {
      type: 'object',
      description: 'When the hook fires.',
      properties: {
        type: {
          type: 'string',
          enum: [...HOOK_TRIGGER_TYPES],
          description: 'on_ready / on_ready_timeout: the start_process ready probe passed / failed (timed out, or its port is held by another process, named). on_idle: no output on either stream for idle_seconds (fires again only after new output and another silence). on_resource: the whole process tree is over memory_mb, or over cpu_percent for for_seconds.',
        },
        exit_filter: { type: 'string', enum: ['any', 'success', 'failure'], description: 'on_exit only: success is exit code 0; failure is any other code or a lost process. Default any.' },
        pattern: { type: 'string', description: 'on_output_match only: a regex tested on each output line, e.g. "FAIL|Error:" or "(?i)listening on".' },
        stream: { type: 'string', enum: ['stdout', 'stderr', 'both'], description: 'on_output_match only; default both.' },
        timeout_seconds: { type: 'integer', minimum: 1, description: 'on_timeout only: fires once if the process still runs this long after it started.' },
        idle_seconds: { type: 'integer', minimum: 1, description: 'on_idle only: how long without output counts as silence, e.g. 300.' },
        memory_mb: { type: 'number', minimum: 1, description: 'on_resource only: fires when the tree uses more memory (RSS, MiB) at a sample.' },
        cpu_percent: { type: 'number', minimum: 1, description: 'on_resource only: fires when the tree uses more CPU (100 = one core) for for_seconds.' },
        for_seconds: { type: 'number', minimum: 0, description: 'on_resource with cpu_percent only: how long CPU must stay above; default 0.' },
      },
      required: ['type'],
    },
    action: {
      type: 'string',
      enum: [...HOOK_ACTIONS],
      description: 'inject_context: tell the conversation that started the process (it wakes up if idle). spawn_branch: start a new conversation with the trigger, matched lines and last output. notify_channel: post the text to the channel. stop_process: stop this process. stop_branch: stop the conversation that started it and its concurrent processes. restart_process: stop it and start it again through its restart policy (counted, with backoff; e.g. on_resource memory_mb → restart_process).',
    },
    context_message: { type: 'string', description: 'What you want to be told when it fires, e.g. "The tests failed: find the cause and fix it."' },
    output_delay_seconds: { type: 'number', minimum: 0, maximum: 60, description: 'on_output_match only: also gather the lines printed this long after the match (a whole stack trace).' },
    max_fires: { type: 'integer', minimum: 1, maximum: 1000, description: 'How many times it may fire; default 1.' },
  },
  required: ['trigger', 'action'],
};

const PID = { type: 'integer', description: 'The pid of one of your processes (from start_process or list_processes).' };

export const TOOL_DEFINITIONS: ToolDefinition[] = [
  {
    type: 'function',
    function: {
      name: 'start_process',
      description: [
        'Start a long-running shell command (tests, builds, servers, other agents) that keeps running while you continue. Returns its pid at once.',
        'One process per independent command: start two processes rather than joining commands with &.',
        'process_type "background" (default) outlives this conversation and shows a live status in the channel; use it for servers, watchers and long builds. "concurrent" belongs to this conversation and is stopped when it is stopped; use it for work this conversation waits on.',
        'Add hooks instead of polling: e.g. on_exit → inject_context to be told when it finishes, on_output_match "FAIL" → spawn_branch to have a failure looked at. For a quick command whose output you need now, use run_command.',
        'For servers: ready {port, http_path} marks it ready when it listens (on_ready tells you; a port already held by another process fails at once, naming it), and restart {on: "failure"} brings it back when it crashes, with backoff, until it crash-loops (then its on_exit failure hooks fire once).',
      ].join(' '),
      parameters: {
        type: 'object',
        properties: {
          command: { type: 'string', description: 'A shell command line (run with /bin/sh -c).' },
          working_directory: { type: 'string', description: 'Inside your workspace; relative paths start there. Default: the workspace.' },
          process_type: { type: 'string', enum: [...PROCESS_TYPES], description: 'background (default) or concurrent; see above.' },
          name: { type: 'string', description: 'A short label shown in lists, e.g. "unit tests".' },
          category: { type: 'string', enum: [...CATEGORIES] },
          timeout_seconds: { type: 'integer', minimum: 1, description: 'Stop the process if it still runs after this many seconds.' },
          model_for_hooks: { type: 'string', description: 'The model for conversations its hooks start (e.g. a cheaper one); default yours.' },
          hooks: { type: 'array', items: HOOK_SCHEMA, description: 'Reactions to its exit, its output, a timeout, readiness, silence or resource use.' },
          interactive: { type: 'boolean', description: 'Give it a stdin you can write to with send_input (a REPL, a prompt, a program that reads commands). Default false: stdin is empty and a read ends at once.' },
          tty: { type: 'boolean', description: 'Run it under a pseudo-terminal, for programs that behave differently without one (REPLs, progress bars, password-less prompts). Implies interactive.' },
          ready: {
            type: 'object',
            description: 'When it counts as ready (status starting → ready): port (its process tree listens on it), optionally http_path (then GET http://127.0.0.1:<port><http_path> must answer 2xx-3xx), or pattern (a line of output matches). Not ready within timeout_seconds (default 60) fires on_ready_timeout.',
            properties: {
              port: { type: 'integer', minimum: 1, maximum: 65535 },
              http_path: { type: 'string', description: 'e.g. "/health"; needs port.' },
              pattern: { type: 'string', description: 'A regex tested on each output line, e.g. "(?i)listening on".' },
              timeout_seconds: { type: 'integer', minimum: 1, maximum: READY_TIMEOUT_MAX_SECONDS },
            },
          },
          restart: {
            type: 'object',
            description: 'Restart policy. on: failure (non-zero exit or lost), always, never (default). A stop you or a person asked for never restarts. The pid stays your handle for every run.',
            properties: {
              on: { type: 'string', enum: [...RESTART_ON] },
              max_restarts: { type: 'integer', minimum: 1, maximum: MAX_RESTARTS_LIMIT, description: 'Restarts in a row before it is a crash loop; default 5.' },
              backoff_seconds: { type: 'number', minimum: 0.1, description: 'First delay, doubling each restart in a row; default 1.' },
              max_backoff_seconds: { type: 'number', minimum: 0.1, description: 'Cap of the delay; default 60.' },
              min_uptime_seconds: { type: 'number', minimum: 0.1, description: 'A run up this long resets the count in a row; default 30.' },
            },
            required: ['on'],
          },
        },
        required: ['command'],
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'add_process_hooks',
      description: 'Add hooks to one of your running processes (same shape as start_process hooks), e.g. to be told when a server you started earlier prints an error.',
      parameters: { type: 'object', properties: { pid: PID, hooks: { type: 'array', items: HOOK_SCHEMA } }, required: ['pid', 'hooks'] },
    },
  },
  {
    type: 'function',
    function: {
      name: 'get_process_status',
      description: 'The state of one of your processes: running (starting or ready when it has a ready probe), restarting, crash_loop or how it ended (exit code, signal), run time, restarts, memory and CPU, its hooks and its last lines of output.',
      parameters: { type: 'object', properties: { pid: PID }, required: ['pid'] },
    },
  },
  {
    type: 'function',
    function: {
      name: 'get_process_output',
      description: [
        'Read the output of one of your processes. Without cursor: the last `lines` lines. Every read returns next_cursor per stream;',
        'pass it back as cursor (with stream stdout or stderr) to read only what is new since then.',
        'grep filters the lines returned with a regex; the output itself is never changed or consumed.',
      ].join(' '),
      parameters: {
        type: 'object',
        properties: {
          pid: PID,
          stream: { type: 'string', enum: [...OUTPUT_STREAMS], description: 'Default both; stdout when a cursor is given.' },
          lines: { type: 'integer', minimum: 1, maximum: OUTPUT_LINES_MAX, description: `How many lines at most; default ${OUTPUT_LINES_DEFAULT}.` },
          cursor: { type: 'integer', minimum: 0, description: 'The next_cursor of an earlier read of the same stream.' },
          grep: { type: 'string', description: 'A regex: only lines that match are returned, e.g. "error|warn" or "(?i)failed".' },
        },
        required: ['pid'],
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'stop_process',
      description: 'Stop one of your processes and everything it started (SIGTERM, then SIGKILL after a grace period; force: SIGKILL at once).',
      parameters: { type: 'object', properties: { pid: PID, force: { type: 'boolean', description: 'SIGKILL at once; default false.' } }, required: ['pid'] },
    },
  },
  {
    type: 'function',
    function: {
      name: 'list_processes',
      description: 'List your processes, newest first (at most 50).',
      parameters: { type: 'object', properties: { filter: { type: 'string', enum: [...STATUS_FILTERS], description: 'Default all.' } } },
    },
  },
  {
    type: 'function',
    function: {
      name: 'run_command',
      description: `Run a short shell command in the foreground and get its exit code and output (the last 16 KiB of each stream), e.g. ls, git status, cat a file, a quick build. It is stopped after timeout_seconds (default ${RUN_COMMAND_DEFAULT_TIMEOUT_SECONDS}, at most ${RUN_COMMAND_MAX_TIMEOUT_SECONDS}); for anything longer or that keeps running, use start_process.`,
      parameters: {
        type: 'object',
        properties: {
          command: { type: 'string', description: 'A shell command line (run with /bin/sh -c).' },
          working_directory: { type: 'string', description: 'Inside your workspace; relative paths start there.' },
          timeout_seconds: { type: 'integer', minimum: 1, maximum: RUN_COMMAND_MAX_TIMEOUT_SECONDS },
          background_after_seconds: { type: 'integer', minimum: 1, maximum: RUN_COMMAND_MAX_TIMEOUT_SECONDS, description: 'If it still runs after this many seconds, return its pid and output so far and let it go on as a background process (instead of stopping it at the timeout).' },
        },
        required: ['command'],
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'send_input',
      description: `Write text to the stdin of one of your processes started with interactive (or tty). Include the newline a program waits for ("yes\\n"). eof closes its stdin after the text (the program sees end of input). At most ${INPUT_MAX_BYTES} bytes, written whole or refused. Then read what it answered with wait_for_process or get_process_output.`,
      parameters: {
        type: 'object',
        properties: {
          pid: PID,
          text: { type: 'string', description: 'What to type, e.g. "print(1+1)\\n".' },
          eof: { type: 'boolean', description: 'Close its stdin after the text; default false.' },
        },
        required: ['pid', 'text'],
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'send_signal',
      description: 'Send a signal to one of your processes (its process group): INT is Ctrl-C, STOP pauses it and CONT resumes it, HUP often reloads, WINCH tells a terminal program its size changed. To stop a process, use stop_process instead.',
      parameters: {
        type: 'object',
        properties: { pid: PID, signal: { type: 'string', enum: [...SENDABLE_SIGNALS] } },
        required: ['pid', 'signal'],
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'wait_for_process',
      description: [
        'Wait until one of your processes ends (until "exit"), prints a new line ("output"), prints a line matching pattern ("match"), or passes its start_process ready probe ("ready"; a failed probe ends the wait with the reason), at most timeout_seconds.',
        'Returns its status, whether the condition held, the new output since cursor (first and last lines when long) and next_cursor: pass it back to continue where this left off.',
        'Other conversations and hooks can use the same process meanwhile.',
      ].join(' '),
      parameters: {
        type: 'object',
        properties: {
          pid: PID,
          until: { type: 'string', enum: [...WAIT_CONDITIONS] },
          pattern: { type: 'string', description: 'With until "match": a regex tested on each new line, e.g. "listening on|ready".' },
          timeout_seconds: { type: 'integer', minimum: WAIT_TIMEOUT_MIN_SECONDS, maximum: WAIT_TIMEOUT_MAX_SECONDS, description: `Default ${WAIT_TIMEOUT_DEFAULT_SECONDS}.` },
          cursor: { type: 'string', description: 'The next_cursor of an earlier wait; default: from now.' },
        },
        required: ['pid', 'until'],
      },
    },
  },
];

export const TOOL_NAMES = TOOL_DEFINITIONS.map((t) => t.function.name);

type Args = Record<string, unknown>;

/** Parses a call's arguments; the error names the field, what it expects and what it got. */
function parseArguments(tool: string, raw: string, allowed: readonly string[]): Args {
  let parsed: unknown;
  try {
    parsed = raw.trim() === '' ? {} : JSON.parse(raw);
  } catch (error) {
    throw new AppError('INVALID_INPUT', `the arguments of ${tool} are not valid JSON (${errorMessage(error)}); send one JSON object, e.g. ${exampleFor(tool)}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new AppError('INVALID_INPUT', `the arguments of ${tool} must be a JSON object (got ${describeValue(parsed)}), e.g. ${exampleFor(tool)}`);
  }
  for (const key of Object.keys(parsed)) {
    if (!allowed.includes(key)) throw new AppError('INVALID_INPUT', `${key} is not a parameter of ${tool} (parameters: ${allowed.join(', ')})`);
  }
  return parsed as Args;
}

function exampleFor(tool: string): string {
  switch (tool) {
    case 'start_process':
    case 'run_command':
      return '{"command": "npm test"}';
    case 'list_processes':
      return '{"filter": "running"}';
    case 'add_process_hooks':
      return '{"pid": 1234, "hooks": [{"trigger": {"type": "on_exit"}, "action": "inject_context"}]}';
    case 'send_input':
      return '{"pid": 1234, "text": "yes\\n"}';
    case 'send_signal':
      return '{"pid": 1234, "signal": "INT"}';
    case 'wait_for_process':
      return '{"pid": 1234, "until": "match", "pattern": "ready", "timeout_seconds": 60}';
    default:
      return '{"pid": 1234}';
  }
}

const isAbsent = (value: unknown) => value === undefined || value === null;

function readString(args: Args, key: string, options: { isRequired?: boolean; maxLength?: number } = {}): string | undefined {
  const value = args[key];
  if (isAbsent(value)) {
    if (options.isRequired) throw new AppError('INVALID_INPUT', `${key} is missing: it is required`);
    return undefined;
  }
  const max = options.maxLength ?? 16_384;
  if (typeof value !== 'string') throw invalidField(key, 'a string', value);
  if (value.length > max) {
    // The length, not the text: a quoted "16389 characters" would read as the value the model sent.
    throw new AppError('INVALID_INPUT', `${key} must be a string of at most ${max} characters (got ${value.length} characters)`, { details: { field: key } });
  }
  return value;
}

function readInteger(args: Args, key: string, min: number, max: number, isRequired = false): number | undefined {
  const value = args[key];
  if (isAbsent(value)) {
    if (isRequired) throw new AppError('INVALID_INPUT', `${key} is missing: it must be an integer`);
    return undefined;
  }
  // Some models send numbers as strings; a clean integer string is accepted.
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) throw invalidField(key, `an integer from ${min} to ${max}`, value);
  return n;
}

function readBoolean(args: Args, key: string): boolean | undefined {
  const value = args[key];
  if (isAbsent(value)) return undefined;
  if (typeof value !== 'boolean') throw invalidField(key, 'true or false', value);
  return value;
}

function readEnum<T extends string>(args: Args, key: string, allowed: readonly T[]): T | undefined {
  const value = args[key];
  if (isAbsent(value)) return undefined;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) throw invalidField(key, `one of ${allowed.join(', ')}`, value);
  return value as T;
}

function readPid(args: Args): number {
  return readInteger(args, 'pid', 1, 2 ** 31 - 1, true)!;
}

/** A pid of the calling agent; another agent's pid is "not found", exactly like a pid that never existed. */
function ownProcess(ctx: ToolContext, pid: number): ProcessRecord {
  return ctx.manager.resolve({ pid, agentName: ctx.agent.name });
}

function ok(value: Record<string, unknown>): ToolResult {
  return { content: JSON.stringify(value), isError: false };
}

function hintFor(error: AppError, tool: string): string {
  switch (error.code) {
    case 'PROCESS_NOT_FOUND':
      return 'Call list_processes to see the pids of your processes; you can only use pids of processes you started.';
    case 'COMMAND_BLOCKED':
      return 'This command is refused on purpose; do not retry it. Use a narrower command, or ask the user.';
    case 'COMMAND_EMPTY':
    case 'COMMAND_TOO_LONG':
      return `Send a non-empty command under 16 KiB; put long scripts in a file and run the file.`;
    case 'CWD_MISSING':
    case 'CWD_OUTSIDE_WORKSPACE':
      return 'Use a directory inside your workspace (a relative path starts there); create it first with run_command (mkdir -p) if needed.';
    case 'PROCESS_LIMIT':
      return 'Stop a process you no longer need with stop_process, then try again.';
    case 'PROCESS_NOT_RUNNING':
    case 'PROCESS_IDENTITY_MISMATCH':
      return 'It has already ended; get_process_status shows how, get_process_output what it printed.';
    case 'HOOK_INVALID':
    case 'INVALID_INPUT':
      return `Fix the arguments as described and call ${tool} again.`;
    case 'NOT_INTERACTIVE':
      return 'Start the program again with start_process and interactive: true (or tty: true) to send it input.';
    case 'INPUT_CLOSED':
      return 'Its input is closed; start it again if it needs more input.';
    case 'INPUT_FULL':
      return 'It is not reading its input now: wait_for_process until "output", then send the rest.';
    case 'TTY_UNAVAILABLE':
      return 'Start it without tty (interactive: true still gives it a stdin), or ask the operator to install util-linux script.';
    default:
      return 'See the error; change the call or tell the user what went wrong.';
  }
}

function failure(tool: string, error: unknown, log: Logger): ToolResult {
  if (isAppError(error) && error.userFacing) {
    return { content: JSON.stringify({ ok: false, tool, code: error.code, error: error.message, hint: hintFor(error, tool) }), isError: true };
  }
  log.error({ err: error, tool }, 'tool failed');
  return {
    content: JSON.stringify({ ok: false, tool, code: 'INTERNAL', error: `${tool} failed inside Chorus (${errorMessage(error)}); the operator log has the details`, hint: 'Try once more; if it fails again, tell the user.' }),
    isError: true,
  };
}

/** Runs one tool call. Never throws: every problem becomes an error result that tells the model what to fix. */
export async function runToolCall(ctx: ToolContext, call: ToolCall): Promise<ToolResult> {
  const tool = call.function.name;
  try {
    switch (tool) {
      case 'start_process':
        return ok(await startProcess(ctx, call.function.arguments));
      case 'add_process_hooks':
        return ok(addProcessHooks(ctx, call.function.arguments));
      case 'get_process_status':
        return ok(getProcessStatus(ctx, call.function.arguments));
      case 'get_process_output':
        return ok(getProcessOutput(ctx, call.function.arguments));
      case 'stop_process':
        return ok(await stopProcess(ctx, call.function.arguments));
      case 'list_processes':
        return ok(listProcesses(ctx, call.function.arguments));
      case 'run_command':
        return ok(await runCommand(ctx, call.function.arguments));
      case 'send_input':
        return ok(await sendInputTool(ctx, call.function.arguments));
      case 'send_signal':
        return ok(sendSignalTool(ctx, call.function.arguments));
      case 'wait_for_process':
        return ok(await waitForProcessTool(ctx, call.function.arguments));
      default:
        return {
          content: JSON.stringify({ ok: false, tool, code: 'UNKNOWN_TOOL', error: `there is no tool named ${describeValue(tool)}`, hint: `Use one of: ${TOOL_NAMES.join(', ')}.` }),
          isError: true,
        };
    }
  } catch (error) {
    return failure(tool, error, ctx.log);
  }
}

/** Calls that touch the same pid run in order; everything else runs at once. */
export function concurrencyKey(call: ToolCall, index: number): string {
  try {
    const args = JSON.parse(call.function.arguments) as unknown;
    // A wait holds nothing: input or a signal to the same process in the same step must not queue behind it.
    if (call.function.name === 'wait_for_process') return `call:${index}`;
    if (args && typeof args === 'object' && 'pid' in args) return `pid:${String((args as { pid: unknown }).pid)}`;
  } catch {
    // Malformed arguments fail on their own.
  }
  return `call:${index}`;
}

function liveHooks(ctx: ToolContext, processId: number): string[] {
  return ctx.hooks.hooksFor(processId).map((h) => `${h.description} (fired ${h.row.fireCount})`);
}

function processSummary(record: ProcessRecord): Record<string, unknown> {
  return {
    pid: record.pid,
    name: record.name,
    type: record.processType,
    status: record.status,
    command: cutLine(record.command, 200),
    ...(readinessState(record) && { readiness: readinessState(record) }),
    ...(record.restartCount > 0 && { restarts: record.restartCount }),
    ...(record.status === 'running' ? { running_for: runTime(record) } : { ended: describeEnd(record), ran_for: runTime(record) }),
    ...(record.isInteractive && { interactive: true }),
    ...(record.isTty && { tty: true }),
    ...(record.status === 'running' && record.pausedAt && { paused: `since ${record.pausedAt} (send_signal CONT resumes it)` }),
  };
}

async function startProcess(ctx: ToolContext, raw: string): Promise<Record<string, unknown>> {
  const args = parseArguments('start_process', raw, ['command', 'working_directory', 'process_type', 'name', 'category', 'timeout_seconds', 'model_for_hooks', 'hooks', 'interactive', 'tty', 'ready', 'restart']);
  const command = readString(args, 'command', { isRequired: true })!;
  const workingDirectory = readString(args, 'working_directory', { maxLength: 4096 });
  const processType = readEnum<ProcessType>(args, 'process_type', PROCESS_TYPES) ?? 'background';
  const name = readString(args, 'name', { maxLength: 100 });
  const category = readEnum<ProcessCategory>(args, 'category', CATEGORIES);
  const timeoutSeconds = readInteger(args, 'timeout_seconds', 1, TIMEOUT_SECONDS_MAX);
  const modelForHooks = readString(args, 'model_for_hooks', { maxLength: 200 });
  const ready = parseReadySpec(args.ready);
  const restart = parseRestartPolicy(args.restart);
  const tty = readBoolean(args, 'tty') ?? false;
  const interactive = (readBoolean(args, 'interactive') ?? false) || tty;
  const prepared = ctx.hooks.prepare(isAbsent(args.hooks) ? undefined : args.hooks);
  const record = await ctx.manager.spawn({
    agent: agentOwner(ctx.manager.home, ctx.agent),
    command,
    workingDirectory,
    processType,
    name: name?.trim() || undefined,
    category,
    timeoutSeconds,
    modelForHooks: modelForHooks?.trim() || undefined,
    spawnedByBranch: ctx.branchId,
    hookRecursionDepth: ctx.depth,
    readyJson: ready && JSON.stringify(ready),
    restartJson: restart && JSON.stringify(restart),
    interactive,
    tty,
    withRow: prepared.store,
  });
  return {
    ok: true,
    pid: record.pid,
    type: record.processType,
    ...(ready && { readiness: `starting; ready when ${describeReady(ready)}; on_ready / on_ready_timeout hooks tell you` }),
    ...(restart && { restart: describeRestartPolicy(restart) }),
    ...(interactive && { interactive: true, ...(tty && { tty: true }), input: 'send_input writes to its stdin' }),
    working_directory: record.workingDirectory,
    hooks: liveHooks(ctx, record.id),
    note: prepared.specs.length
      ? 'Running. Your hooks will report back; no need to poll.'
      : 'Running. Add hooks (add_process_hooks) to be told when it ends or prints something, rather than polling.',
  };
}

function addProcessHooks(ctx: ToolContext, raw: string): Record<string, unknown> {
  const args = parseArguments('add_process_hooks', raw, ['pid', 'hooks']);
  const record = ownProcess(ctx, readPid(args));
  if (isAbsent(args.hooks)) throw new AppError('INVALID_INPUT', 'hooks is missing: it must be an array of hook objects');
  const rows = ctx.hooks.addHooks(record.id, args.hooks);
  return { ok: true, pid: record.pid, added: rows.length, hooks: liveHooks(ctx, record.id) };
}

function getProcessStatus(ctx: ToolContext, raw: string): Record<string, unknown> {
  const args = parseArguments('get_process_status', raw, ['pid']);
  const record = ownProcess(ctx, readPid(args));
  const usage = ctx.manager.usage(record.id, { maxAgeMs: ASKED_SAMPLE_MAX_AGE_MS });
  const tail = ctx.manager.tail(record.id, 10)?.map((l) => (l.stream === 'stderr' ? `[stderr] ${l.text}` : l.text))
    ?? readLastOf(record, 'stdout', 10);
  return {
    ok: true,
    ...processSummary(record),
    working_directory: record.workingDirectory,
    started_at: record.startedAt,
    ended_at: record.endedAt,
    exit_code: record.exitCode,
    signal: record.signal,
    stopped_by: record.stoppedBy,
    last_output_at: record.lastOutputAt,
    ...(record.lastSignal && { last_signal: `${record.lastSignal} by ${record.lastSignalBy} at ${record.lastSignalAt}` }),
    sandbox: record.sandbox,
    ...Object.fromEntries(supervisionLines(record).map(([label, text]) => [label.replace(/ /g, '_'), text])),
    ...(usage && { cpu_percent: Math.round(usage.cpuPercent * 10) / 10, memory: formatBytes(usage.rssBytes), processes_in_group: usage.processCount }),
    hooks: liveHooks(ctx, record.id),
    last_lines: tail.map((l) => cutLine(l, 300)),
  };
}

function getProcessOutput(ctx: ToolContext, raw: string): Record<string, unknown> {
  const args = parseArguments('get_process_output', raw, ['pid', 'stream', 'lines', 'cursor', 'grep']);
  const record = ownProcess(ctx, readPid(args));
  const cursor = readInteger(args, 'cursor', 0, Number.MAX_SAFE_INTEGER);
  const requested = readEnum(args, 'stream', OUTPUT_STREAMS);
  const maxLines = readInteger(args, 'lines', 1, OUTPUT_LINES_MAX) ?? OUTPUT_LINES_DEFAULT;
  const grepText = readString(args, 'grep', { maxLength: 1000 });
  const grep = grepText === undefined ? undefined : compileSafePattern(grepText, 'grep', 'INVALID_INPUT');
  const show = (lines: string[]) => lines.map((l) => (l.length > LINE_SHOWN_MAX ? `${l.slice(0, LINE_SHOWN_MAX)}… [line cut]` : l));
  const base = { ok: true, pid: record.pid, status: record.status, ...(record.status !== 'running' && { ended: describeEnd(record) }) };

  if (cursor !== undefined) {
    if (requested === 'both') {
      throw new AppError('INVALID_INPUT', 'cursor belongs to one stream: pass stream "stdout" or "stderr" with it (each read returns next_cursor per stream)');
    }
    const stream: LogStream = requested ?? 'stdout';
    const read = readSinceCursor(record, stream, cursor, { maxLines, grep });
    return {
      ...base,
      stream,
      lines: show(read.lines),
      next_cursor: { [stream]: read.nextCursor },
      ...(grep && { lines_scanned: read.scannedLines }),
      ...(read.skippedBytes > 0 && { note_skipped: `${read.skippedBytes} bytes after your cursor were rotated away before you read them` }),
      ...(read.remainingBytes > 0 && { more: `${read.remainingBytes} more bytes after next_cursor (more pages, or a line still being written); read again with it` }),
    };
  }
  const streams: LogStream[] = requested === undefined || requested === 'both' ? ['stdout', 'stderr'] : [requested];
  const output: Record<string, string[]> = {};
  const nextCursor: Record<string, number> = {};
  // Cursors are taken before reading, so nothing written meanwhile is skipped by the next read.
  for (const stream of streams) nextCursor[stream] = streamCursor(record, stream);
  for (const stream of streams) output[stream] = show(readLastOf(record, stream, maxLines, grep));
  return { ...base, output, next_cursor: nextCursor, ...(grep && { grep: grepText }) };
}

async function stopProcess(ctx: ToolContext, raw: string): Promise<Record<string, unknown>> {
  const args = parseArguments('stop_process', raw, ['pid', 'force']);
  const record = ownProcess(ctx, readPid(args));
  const force = readBoolean(args, 'force') ?? false;
  const stopped = await ctx.manager.kill({ id: record.id }, { force, by: `agent:${ctx.agent.name}` });
  return { ok: true, pid: stopped.pid, status: stopped.status, signal: stopped.signal, ran_for: runTime(stopped) };
}

function listProcesses(ctx: ToolContext, raw: string): Record<string, unknown> {
  const args = parseArguments('list_processes', raw, ['filter']);
  const filter = readEnum<StatusFilter>(args, 'filter', STATUS_FILTERS) ?? 'all';
  const rows = ctx.manager.list({ agentName: ctx.agent.name, status: filter, limit: LIST_LIMIT + 1 });
  return {
    ok: true,
    filter,
    processes: rows.slice(0, LIST_LIMIT).map(processSummary),
    ...(rows.length > LIST_LIMIT && { note: `only the newest ${LIST_LIMIT} are shown` }),
  };
}

async function runCommand(ctx: ToolContext, raw: string): Promise<Record<string, unknown>> {
  const args = parseArguments('run_command', raw, ['command', 'working_directory', 'timeout_seconds', 'background_after_seconds']);
  const command = readString(args, 'command', { isRequired: true })!;
  const workingDirectory = readString(args, 'working_directory', { maxLength: 4096 });
  const timeoutSeconds = readInteger(args, 'timeout_seconds', 1, RUN_COMMAND_MAX_TIMEOUT_SECONDS);
  const backgroundAfterSeconds = readInteger(args, 'background_after_seconds', 1, RUN_COMMAND_MAX_TIMEOUT_SECONDS);
  const result = await runForeground(ctx.manager, {
    agent: agentOwner(ctx.manager.home, ctx.agent), command, workingDirectory, timeoutSeconds, backgroundAfterSeconds, spawnedByBranch: ctx.branchId, hookRecursionDepth: ctx.depth, signal: ctx.signal,
  });
  const dropped = (n: number) => (n > 0 ? `[${n} earlier bytes not shown]\n` : '');
  const output = { stdout: dropped(result.droppedBytes.stdout) + result.stdout, stderr: dropped(result.droppedBytes.stderr) + result.stderr };
  if (result.isBackgrounded) {
    return {
      ok: true,
      pid: result.record.pid,
      status: 'running',
      backgrounded: `still running after ${backgroundAfterSeconds}s: it goes on as a background process (with a status message); use wait_for_process, get_process_output or add_process_hooks with its pid`,
      duration_ms: result.durationMs,
      ...output,
    };
  }
  return {
    ok: !result.timedOut && result.exitCode === 0,
    pid: result.record.pid,
    exit_code: result.exitCode,
    signal: result.signal,
    ...(result.timedOut && {
      timed_out: `stopped after ${timeoutSeconds ?? RUN_COMMAND_DEFAULT_TIMEOUT_SECONDS}s (the whole process group); use start_process or background_after_seconds for long-running commands`,
    }),
    ...(result.record.status === 'killed' && !result.timedOut && { stopped_by: result.record.stoppedBy }),
    duration_ms: result.durationMs,
    sandbox: result.record.sandbox,
    ...output,
  };
}

// Talking to running processes.

async function sendInputTool(ctx: ToolContext, raw: string): Promise<Record<string, unknown>> {
  const args = parseArguments('send_input', raw, ['pid', 'text', 'eof']);
  const record = ownProcess(ctx, readPid(args));
  const text = readString(args, 'text', { isRequired: true, maxLength: INPUT_MAX_BYTES })!;
  const isEof = readBoolean(args, 'eof') ?? false;
  const { bytes } = await ctx.manager.input({ id: record.id }, text, { isEof });
  return { ok: true, pid: record.pid, bytes_written: bytes, ...(isEof && { stdin: 'closed' }), note: 'Read its answer with wait_for_process (until "output" or "match").' };
}

function sendSignalTool(ctx: ToolContext, raw: string): Record<string, unknown> {
  const args = parseArguments('send_signal', raw, ['pid', 'signal']);
  const record = ownProcess(ctx, readPid(args));
  const signal = parseSignal(args.signal);
  const after = ctx.manager.signal({ id: record.id }, signal, { by: `agent:${ctx.agent.name}` });
  return { ok: true, pid: after.pid, signal, status: after.status, ...(after.pausedAt && { paused: true }) };
}

async function waitForProcessTool(ctx: ToolContext, raw: string): Promise<Record<string, unknown>> {
  const args = parseArguments('wait_for_process', raw, ['pid', 'until', 'pattern', 'timeout_seconds', 'cursor']);
  const record = ownProcess(ctx, readPid(args));
  const until = readEnum(args, 'until', WAIT_CONDITIONS);
  if (until === undefined) throw new AppError('INVALID_INPUT', `until is missing: it must be one of ${WAIT_CONDITIONS.join(', ')}`);
  const patternText = readString(args, 'pattern', { maxLength: 1000 });
  if (until === 'match' && patternText === undefined) throw new AppError('INVALID_INPUT', 'pattern is missing: until "match" needs a regex, e.g. "ready|listening"');
  const pattern = patternText === undefined ? undefined : compileSafePattern(patternText, 'pattern', 'INVALID_INPUT');
  const timeoutSeconds = readInteger(args, 'timeout_seconds', WAIT_TIMEOUT_MIN_SECONDS, WAIT_TIMEOUT_MAX_SECONDS) ?? WAIT_TIMEOUT_DEFAULT_SECONDS;
  const cursor = parseCursor(args.cursor);
  const result = await waitForProcess(ctx.manager, record, { until, pattern, timeoutSeconds, cursor, signal: ctx.signal });
  return waitResultJson(result, until);
}


import { createInterface } from 'node:readline';
import type { AgentConfig } from '../agents/agent-config.js';
import type { AgentRuntime } from '../agents/agent-runtime.js';
import type { CommandReply } from '../agents/front-end.js';
import { PROCESS_SUBCOMMANDS, type ProcessCommandOptions } from '../agents/process-commands.js';
import { errorMessage, isAppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { stripFences, type ConsoleFrontEnd } from './console-front-end.js';

export const CONSOLE_ACTOR = 'console';

export interface ConsoleOptions {
  agents: AgentRuntime;
  frontEnd: ConsoleFrontEnd;
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  write: (text: string) => void;
  log: Logger;
  /** Aborted on SIGINT/SIGTERM: the console returns at once, without waiting for answers. */
  signal?: AbortSignal;
}

export type ConsoleEnd = 'eof' | 'signal';

const HELP = [
  'Type a message to talk to the agent; the next message continues that conversation.',
  '  @name message          talk to another agent',
  '  /new message           start a new conversation',
  '  /process list [all|running|exited|killed|lost]',
  '  /process status <pid>  /process logs <pid> [lines] [stdout|stderr|both]',
  '  /process kill <pid> [force]   /process restart <pid>',
  '  /process input <pid> <text> [eof]   /process signal <pid> <INT|HUP|QUIT|TERM|KILL|USR1|USR2|STOP|CONT|WINCH>',
  '  /process start [--cwd D] [--name N] [--interactive] <command>',
  '  /agents  /help         (Ctrl-D or Ctrl-C quits; processes keep running)',
].join('\n');

const POSITIONALS: Record<string, Array<keyof ProcessCommandOptions>> = {
  list: ['filter'],
  kill: ['pid', 'force'],
  logs: ['pid', 'lines', 'stream'],
  status: ['pid'],
  restart: ['pid'],
  signal: ['pid', 'signal'],
};
const OPTION_NAMES: ReadonlyArray<keyof ProcessCommandOptions> = ['filter', 'pid', 'force', 'lines', 'stream', 'signal'];

/** `/process input 12 some text eof`: the words after the pid are the text; a last `eof` (or --eof) closes stdin. */
function parseInputLine(rest: string[]): { subcommand: string; options: ProcessCommandOptions } {
  const [pid, ...words] = rest;
  const isEof = words.length > 0 && ['eof', '--eof'].includes(words[words.length - 1]!);
  const text = (isEof ? words.slice(0, -1) : words).join(' ');
  return { subcommand: 'input', options: { pid, text, ...(isEof && { eof: true }) } };
}

/** `/process start --cwd api --name srv --interactive npm run dev`: options first, the rest is the command. */
function parseStartLine(rest: string[]): { subcommand: string; options: ProcessCommandOptions } | { error: string } {
  const options: ProcessCommandOptions = {};
  let i = 0;
  for (; i < rest.length; i++) {
    const word = rest[i]!;
    if (word === '--') { i += 1; break; }
    if (word === '--interactive') options.interactive = true;
    else if (word === '--cwd' || word === '--name') options[word.slice(2) as 'cwd' | 'name'] = rest[++i];
    else if (word.startsWith('--')) return { error: `unknown option ${word} for /process start (--cwd, --name, --interactive)` };
    else break;
  }
  const command = rest.slice(i).join(' ');
  return { subcommand: 'start', options: { ...options, ...(command && { command }) } };
}

/** `/process logs 1234 --lines 20 stderr` → subcommand and raw options; runProcessCommand checks the values. */
export function parseProcessLine(words: string[]): { subcommand: string; options: ProcessCommandOptions } | { error: string } {
  const [subcommand, ...rest] = words;
  if (!subcommand) return { error: `usage: /process ${PROCESS_SUBCOMMANDS.join('|')} ...` };
  if (subcommand === 'input') return parseInputLine(rest);
  if (subcommand === 'start') return parseStartLine(rest);
  const slots = POSITIONALS[subcommand];
  if (!slots) return { error: `unknown /process subcommand "${subcommand}": use one of ${PROCESS_SUBCOMMANDS.join(', ')}` };
  const options: ProcessCommandOptions = {};
  const positionals: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const word = rest[i]!;
    const named = /^(?:--)?([a-z]+)(?:[=:](.*))?$/.exec(word);
    const key = named?.[1] as keyof ProcessCommandOptions | undefined;
    if (named && key && OPTION_NAMES.includes(key) && (word.startsWith('--') || named[2] !== undefined)) {
      if (named[2] !== undefined) options[key] = named[2];
      else if (key === 'force') options.force = true;
      else options[key] = rest[++i];
      continue;
    }
    if (word.startsWith('--')) return { error: `unknown option ${word} for /process ${subcommand}` };
    positionals.push(word);
  }
  for (const word of positionals) {
    // Words that can only mean one thing go there, wherever they are: `logs 12 stderr`, `kill 12 force`.
    if (subcommand === 'kill' && word === 'force') options.force = true;
    else if (subcommand === 'logs' && ['stdout', 'stderr', 'both'].includes(word)) options.stream = word;
    else {
      const slot = slots.find((s) => options[s] === undefined && !(s === 'force' || (subcommand === 'logs' && s === 'stream')));
      if (!slot) return { error: `too many arguments for /process ${subcommand}: ${JSON.stringify(word)}` };
      options[slot] = word;
    }
  }
  return { subcommand, options };
}

export function renderReply(reply: CommandReply): string {
  const text = stripFences(reply.text);
  if (!reply.attachment) return text;
  return `${text}\n--- ${reply.attachment.name} ---\n${reply.attachment.content.replace(/\n$/, '')}\n--- end of ${reply.attachment.name} ---`;
}

/**
 * The terminal front end: typed lines are messages, `/process ...` lines run the shared command handlers. Returns at
 * end of input (after the answers under way) or when `signal` aborts.
 */
export async function runConsole(options: ConsoleOptions): Promise<ConsoleEnd> {
  const { agents, frontEnd, write, log } = options;
  const isTty = Boolean(options.input.isTTY);
  const rl = createInterface({ input: options.input, ...(isTty && { output: process.stdout, terminal: true }) });
  let queue = Promise.resolve();

  const defaultAgent = (): AgentConfig => {
    const all = agents.agents();
    if (!all.length) throw new Error('no agents: add $CHORUS_HOME/agents/<name>/agent.json');
    return all[0]!;
  };

  const handle = async (line: string): Promise<void> => {
    let text = line.trim();
    if (!text) return;
    let agent = defaultAgent();
    const addressed = /^@([a-z0-9][a-z0-9_-]{0,31})(?:\s+([\s\S]*))?$/.exec(text);
    if (addressed) {
      agent = agents.agent(addressed[1]!);
      text = (addressed[2] ?? '').trim();
      if (!text) {
        write(`(say something to ${agent.name}: @${agent.name} your message)`);
        return;
      }
    }
    const [command, ...words] = text.split(/\s+/);
    switch (command) {
      case '/help':
        write(HELP);
        return;
      case '/agents':
        write(agents.agents().map((a) => `${a.name}${a.model ? ` (model ${a.model})` : ''}: workspace ${a.workspace}`).join('\n'));
        return;
      case '/process': {
        const parsed = parseProcessLine(words);
        if ('error' in parsed) {
          write(parsed.error);
          return;
        }
        write(renderReply(await agents.runProcessCommand(agent, CONSOLE_ACTOR, parsed.subcommand, parsed.options)));
        return;
      }
      case '/new':
        frontEnd.forget(agent.name);
        text = words.join(' ');
        if (!text) {
          write(`(the next message to ${agent.name} starts a new conversation)`);
          return;
        }
        break;
      default:
        if (command?.startsWith('/')) {
          write(`unknown command ${command}; /help lists them`);
          return;
        }
    }
    await agents.handleMessage({
      agentName: agent.name, authorId: CONSOLE_ACTOR, content: text, replyToMessageId: frontEnd.lastMessageId(agent.name),
    });
  };

  return new Promise<ConsoleEnd>((resolve) => {
    let isDone = false;
    const finish = (end: ConsoleEnd) => {
      if (isDone) return;
      isDone = true;
      options.signal?.removeEventListener('abort', onAbort);
      rl.close();
      resolve(end);
    };
    const onAbort = () => finish('signal');
    if (options.signal?.aborted) return finish('signal');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    rl.on('SIGINT', () => finish('signal'));
    rl.on('line', (line) => {
      // One line at a time, in order: a /process line typed after a message sees what that message stored.
      queue = queue.then(() => handle(line)).catch((error: unknown) => {
        if (isAppError(error) && error.userFacing) write(error.message);
        else {
          log.error({ err: error }, 'console line failed');
          write(`internal error: ${errorMessage(error)}`);
        }
      });
    });
    rl.on('close', () => {
      if (isDone) return;
      // End of input (a pipe, Ctrl-D): finish the lines and the answers under way, then return.
      void queue.then(() => agents.idle()).then(() => finish('eof'));
    });
  });
}

export { HELP as CONSOLE_HELP };

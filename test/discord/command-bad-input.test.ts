// Bad slash commands and forged buttons through the real discord.js client: each gets its ephemeral error, and nothing is spawned, stopped or written.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ProcessRecord } from '../../src/store/process-repo.js';
import type { CommandInput, StoredMessage } from '../support/fake-discord.js';
import { isAlive } from '../support/child-cleanup.js';
import { listRunDirs } from '../support/cli.js';
import { waitFor } from '../support/wait-for.js';
import { ALPHA_CHANNEL, BETA_CHANNEL, GENERAL, OUTSIDER, TIMEOUT_MS, spawnBackground, startHarness, type Harness } from './harness.js';
import { fixture } from '../support/fixtures.js';

interface BadInteraction {
  name: string;
  /** A slash command, or a button pressed on alpha's status message. */
  command?: () => CommandInput;
  button?: () => { customId: string; userId?: string };
  /** An Input form submitted in alpha's channel. */
  modal?: () => { customId: string; fields: Record<string, string>; userId?: string };
  /** What the ephemeral reply must say (a function when it names a pid known only once the processes run). */
  says: RegExp | (() => RegExp);
}

const forever = `${JSON.stringify(process.execPath)} ${JSON.stringify(fixture('forever.mjs'))}`;
const UNKNOWN_PID = 999_999;
const NOT_BOUND = /^No agent is bound to this channel: use \/agent bind <name> to bind one$/;
const DM_REFUSED = /^This works only in a server channel: Chorus commands work in a channel bound to an agent, not in direct messages$/;
const BAD_NAME = /^Invalid input: name must be 1-32 lowercase letters, digits, - or _, starting with a letter or digit \(got /;

let h: Harness;
let alphaRow: ProcessRecord;
let betaRow: ProcessRecord;
let statusMessage: StoredMessage;
let baseline: { processes: number; hooks: number; runDirs: string[]; agentFiles: Record<string, string>; publicMessages: number[] };

const count = (table: 'processes' | 'hooks') => (h.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
const CHANNELS = [GENERAL, ALPHA_CHANNEL, BETA_CHANNEL];
const publicMessages = () => CHANNELS.map((channel) => h.server.messages(channel).filter((message) => !message.isEphemeral).length);

/** Every agent directory and its agent.json text (or null). */
function agentFiles(): Record<string, string> {
  const dir = join(h.home, 'agents');
  return Object.fromEntries(readdirSync(dir).sort().map((name) => {
    const path = join(dir, name, 'agent.json');
    return [name, existsSync(path) ? readFileSync(path, 'utf8') : '(none)'];
  }));
}

function statusOf(record: ProcessRecord) {
  return (message: StoredMessage) => message.source === 'bot' && message.embeds.length > 0
    && String((message.embeds[0]?.footer as { text?: string } | undefined)?.text).endsWith(`row #${record.id}`);
}

beforeAll(async () => {
  h = await startHarness({ lifetime: 'file' });
  alphaRow = await spawnBackground(h, h.alpha, forever);
  betaRow = await spawnBackground(h, h.beta, forever);
  statusMessage = await h.server.waitForMessage(statusOf(alphaRow), { timeoutMs: TIMEOUT_MS });
  await h.server.waitForMessage(statusOf(betaRow), { timeoutMs: TIMEOUT_MS });
  await waitFor(() => h.manager.find({ id: alphaRow.id })?.discordMessageId === statusMessage.id, { timeoutMs: TIMEOUT_MS, what: 'the stored message id' });
  baseline = { processes: count('processes'), hooks: count('hooks'), runDirs: listRunDirs(h.home).sort(), agentFiles: agentFiles(), publicMessages: publicMessages() };
  expect(baseline.processes).toBe(2);
});

const processIn = (channelId: string, subcommand: string, options: CommandInput['options'] = {}, extra: Partial<CommandInput> = {}) =>
  (): CommandInput => ({ name: 'process', subcommand, options, channelId, ...extra });
const inAlpha = (subcommand: string, options: () => CommandInput['options'], extra: Partial<CommandInput> = {}) =>
  (): CommandInput => processIn(ALPHA_CHANNEL, subcommand, options(), extra)();
const notFound = (pid: () => number) => () => new RegExp(`^No such process: pid ${pid()} for agent alpha; list processes to see valid pids$`);
const bind = (name: string | number, channelId = GENERAL) => (): CommandInput => ({
  name: 'agent', subcommand: 'bind', channelId, options: [{ name: 'name', type: typeof name === 'number' ? 4 : 3, value: name }],
});

const PID_SUBCOMMANDS = ['kill', 'logs', 'status', 'restart'] as const;

const CASES: BadInteraction[] = [
  // pids that are not this agent's
  ...PID_SUBCOMMANDS.map((sub): BadInteraction => ({ name: `${sub}: unknown pid`, command: inAlpha(sub, () => ({ pid: UNKNOWN_PID })), says: notFound(() => UNKNOWN_PID) })),
  ...PID_SUBCOMMANDS.map((sub): BadInteraction => ({ name: `${sub}: another agent's pid`, command: inAlpha(sub, () => ({ pid: betaRow.pid! })), says: notFound(() => betaRow.pid!) })),
  { name: 'kill: another agent\'s pid, forced', command: inAlpha('kill', () => ({ pid: betaRow.pid!, force: true })), says: notFound(() => betaRow.pid!) },
  // option values Discord's own client would refuse, sent anyway
  { name: 'logs: lines 0', command: inAlpha('logs', () => ({ pid: alphaRow.pid!, lines: 0 })), says: /^Invalid input: lines must be an integer from 1 to 1000 \(got 0\)$/ },
  { name: 'logs: lines 100000', command: inAlpha('logs', () => ({ pid: alphaRow.pid!, lines: 100_000 })), says: /^Invalid input: lines must be an integer from 1 to 1000 \(got 100000\)$/ },
  { name: 'logs: lines -1', command: inAlpha('logs', () => ({ pid: alphaRow.pid!, lines: -1 })), says: /^Invalid input: lines must be an integer from 1 to 1000 \(got -1\)$/ },
  { name: 'logs: lines as a string option', command: inAlpha('logs', () => [{ name: 'pid', type: 4, value: alphaRow.pid! }, { name: 'lines', type: 3, value: 'ten' }]), says: /^Invalid input: lines must be an integer from 1 to 1000 \(got "ten"\)$/ },
  { name: 'logs: lines as a fraction', command: inAlpha('logs', () => [{ name: 'pid', type: 4, value: alphaRow.pid! }, { name: 'lines', type: 10, value: 2.5 }]), says: /^Invalid input: lines must be an integer from 1 to 1000 \(got 2\.5\)$/ },
  { name: 'logs: unknown stream', command: inAlpha('logs', () => ({ pid: alphaRow.pid!, stream: 'stdin' })), says: /^Invalid input: stream must be one of stdout, stderr, both \(got "stdin"\)$/ },
  { name: 'list: unknown filter', command: inAlpha('list', () => ({ filter: 'zombie' })), says: /^Invalid input: filter must be one of all, running, exited, killed, lost, restarting, crash_loop \(got "zombie"\)$/ },
  { name: 'list: filter as a number', command: inAlpha('list', () => [{ name: 'filter', type: 4, value: 3 }]), says: /^Invalid input: filter must be one of all, running, exited, killed, lost, restarting, crash_loop \(got 3\)$/ },
  { name: 'status: pid 0', command: inAlpha('status', () => ({ pid: 0 })), says: /^Invalid input: pid must be a positive process id \(got 0\)$/ },
  { name: 'status: pid -4', command: inAlpha('status', () => ({ pid: -4 })), says: /^Invalid input: pid must be a positive process id \(got -4\)$/ },
  { name: 'kill: pid as a string option', command: inAlpha('kill', () => [{ name: 'pid', type: 3, value: 'abc' }]), says: /^Invalid input: pid must be a positive process id \(got "abc"\)$/ },
  { name: 'restart: pid as a fraction', command: inAlpha('restart', () => [{ name: 'pid', type: 10, value: 1.5 }]), says: /^Invalid input: pid must be a positive process id \(got 1\.5\)$/ },
  { name: 'kill: no pid at all', command: inAlpha('kill', () => ({})), says: /^Invalid input: pid is required: the pid of one of this agent's processes \(see \/process list\)$/ },
  { name: 'kill: force as a string', command: inAlpha('kill', () => [{ name: 'pid', type: 4, value: alphaRow.pid! }, { name: 'force', type: 3, value: 'yes' }]), says: /^Invalid input: force must be true or false \(got "yes"\)$/ },
  { name: 'unknown /process subcommand', command: inAlpha('nuke', () => ({})), says: /^Invalid input: subcommand must be one of list, kill, logs, status, restart, input, signal, start \(got "nuke"\)$/ },
  // input, signal, start
  { name: 'input: another agent\'s pid', command: inAlpha('input', () => ({ pid: betaRow.pid!, text: 'x' })), says: notFound(() => betaRow.pid!) },
  { name: 'input: a process that is not interactive', command: inAlpha('input', () => ({ pid: alphaRow.pid!, text: 'x' })), says: /^The process was not started interactive: pid \d+ reads no input/ },
  { name: 'input: text as a number option', command: inAlpha('input', () => [{ name: 'pid', type: 4, value: alphaRow.pid! }, { name: 'text', type: 4, value: 7 }]), says: /^Invalid input: text must be text \(got 7\)$/ },
  { name: 'input: eof as a string', command: inAlpha('input', () => [{ name: 'pid', type: 4, value: alphaRow.pid! }, { name: 'text', type: 3, value: 'x' }, { name: 'eof', type: 3, value: 'yes' }]), says: /^Invalid input: eof must be true or false \(got "yes"\)$/ },
  { name: 'signal: unknown signal', command: inAlpha('signal', () => ({ pid: alphaRow.pid!, signal: 'SEGV' })), says: /^Invalid input: signal must be one of INT, HUP, QUIT, TERM, KILL, USR1, USR2, STOP, CONT, WINCH \(got "SEGV"\)$/ },
  { name: 'signal: another agent\'s pid', command: inAlpha('signal', () => ({ pid: betaRow.pid!, signal: 'KILL' })), says: notFound(() => betaRow.pid!) },
  { name: 'signal: no signal', command: inAlpha('signal', () => ({ pid: alphaRow.pid! })), says: /^Invalid input: signal is required: one of INT, HUP/ },
  { name: 'signal by someone not allowed', command: inAlpha('signal', () => ({ pid: alphaRow.pid!, signal: 'STOP' }), { userId: OUTSIDER }), says: /not allowed/i },
  { name: 'start by someone not allowed', command: inAlpha('start', () => ({ command: 'touch ran-anyway' }), { userId: OUTSIDER }), says: /not allowed/i },
  { name: 'start: blocked command', command: inAlpha('start', () => ({ command: 'rm -rf /' })), says: /^The command is blocked: command looks like recursive delete/ },
  { name: 'start: cwd outside the workspace', command: inAlpha('start', () => ({ command: 'true', cwd: '/etc' })), says: /^The working directory is outside the agent's workspace/ },
  { name: 'start: no command', command: inAlpha('start', () => ({})), says: /^Invalid input: command is required$/ },
  { name: 'start: interactive as a string', command: inAlpha('start', () => [{ name: 'command', type: 3, value: 'true' }, { name: 'interactive', type: 3, value: 'yes' }]), says: /^Invalid input: interactive must be true or false \(got "yes"\)$/ },
  { name: 'Input form of another agent\'s process', modal: () => ({ customId: `proc:input-modal:${betaRow.id}`, fields: { text: 'x' } }), says: () => new RegExp(`^No such process: process #${betaRow.id} is not one of agent alpha's$`) },
  { name: 'Input button on a process that is not interactive', button: () => ({ customId: `proc:input:${alphaRow.id}` }), says: /^The process was not started interactive: pid \d+ reads no input$/ },
  // wrong places
  ...(['list', 'kill', 'logs', 'status', 'restart'] as const).map((sub): BadInteraction => ({
    name: `${sub} in a channel with no agent`, command: () => processIn(GENERAL, sub, sub === 'list' ? {} : { pid: alphaRow.pid! })(), says: NOT_BOUND,
  })),
  { name: '/process list in a DM', command: () => ({ name: 'process', subcommand: 'list', isDm: true }), says: DM_REFUSED },
  { name: '/process kill in a DM', command: () => ({ name: 'process', subcommand: 'kill', options: { pid: alphaRow.pid! }, isDm: true }), says: DM_REFUSED },
  { name: '/agent bind in a DM', command: () => ({ name: 'agent', subcommand: 'bind', options: { name: 'gamma' }, isDm: true }), says: DM_REFUSED },
  { name: 'unknown command', command: () => ({ name: 'frobnicate', channelId: ALPHA_CHANNEL }), says: /^Invalid input: \/frobnicate is not a Chorus command any more; ask an operator to run npm run deploy-commands$/ },
  { name: 'unknown command with a subcommand', command: () => ({ name: 'processes', subcommand: 'list', channelId: ALPHA_CHANNEL }), says: /^Invalid input: \/processes list is not a Chorus command any more/ },
  // /agent
  { name: 'bind: name with spaces and capitals', command: bind('Bad Name!'), says: BAD_NAME },
  { name: 'bind: name with a path', command: bind('../etc'), says: BAD_NAME },
  { name: 'bind: empty name', command: bind('   '), says: BAD_NAME },
  { name: 'bind: name over 32 characters', command: bind('a'.repeat(40)), says: BAD_NAME },
  { name: 'bind: name starting with a dash', command: bind('-x'), says: BAD_NAME },
  { name: 'bind: name as a number option', command: bind(42), says: /^Invalid input: name must be 1-32 lowercase letters.*\(got 42\)$/ },
  { name: 'bind: no name at all', command: () => ({ name: 'agent', subcommand: 'bind', channelId: GENERAL }), says: /^Invalid input: name is required: the agent's name, e\.g\. \/agent bind name:builder$/ },
  { name: 'bind: another agent in a bound channel', command: bind('beta', ALPHA_CHANNEL), says: /^Invalid input: this channel is bound to agent alpha; run \/agent unbind first$/ },
  { name: 'unbind in a channel with no agent', command: () => ({ name: 'agent', subcommand: 'unbind', channelId: GENERAL }), says: NOT_BOUND },
  { name: 'unknown /agent subcommand', command: () => ({ name: 'agent', subcommand: 'delete', channelId: ALPHA_CHANNEL }), says: /^Invalid input: subcommand must be bind, unbind or list \(got "delete"\)$/ },
  // not allowed
  { name: 'kill by a user outside the allow-list', command: inAlpha('kill', () => ({ pid: alphaRow.pid! }), { userId: OUTSIDER }), says: /^You are not allowed to do that here: / },
  // buttons with forged or malformed custom ids, on alpha's status message
  { name: 'button proc:kill:abc', button: () => ({ customId: 'proc:kill:abc' }), says: /^This button is not one Chorus knows \("proc:kill:abc"\); use \/process in the channel instead\.$/ },
  { name: 'button proc:nope:1', button: () => ({ customId: 'proc:nope:1' }), says: /^This button is not one Chorus knows \("proc:nope:1"\)/ },
  { name: 'button with an empty custom id', button: () => ({ customId: 'x' }), says: /^This button is not one Chorus knows \("x"\)/ },
  { name: 'button proc:kill:999999', button: () => ({ customId: 'proc:kill:999999' }), says: /^No such process: process #999999 is not one of agent alpha's$/ },
  { name: 'button proc:kill of another agent\'s row', button: () => ({ customId: `proc:kill:${betaRow.id}` }), says: () => new RegExp(`^No such process: process #${betaRow.id} is not one of agent alpha's$`) },
  { name: 'button proc:logs of another agent\'s row', button: () => ({ customId: `proc:logs:${betaRow.id}` }), says: () => new RegExp(`^No such process: process #${betaRow.id} is not one of agent alpha's$`) },
  { name: 'button proc:kill by a user outside the allow-list', button: () => ({ customId: `proc:kill:${alphaRow.id}`, userId: OUTSIDER }), says: /^You are not allowed to do that here: / },
  { name: 'button proc:restart by a user outside the allow-list', button: () => ({ customId: `proc:restart:${alphaRow.id}`, userId: OUTSIDER }), says: /^You are not allowed to do that here: .*the Restart button/ },
  { name: 'button proc:restart of another agent\'s row', button: () => ({ customId: `proc:restart:${betaRow.id}` }), says: () => new RegExp(`^No such process: process #${betaRow.id} is not one of agent alpha's$`) },
  { name: 'button proc:restart:abc', button: () => ({ customId: 'proc:restart:abc' }), says: /^This button is not one Chorus knows \("proc:restart:abc"\)/ },
];

describe('bad slash commands and buttons get an ephemeral answer that says what to do, and change nothing', () => {
  it.for(CASES)('$name', async (c) => {
    const sent = c.command ? h.server.sendCommand(c.command())
      : c.modal ? h.server.sendModalSubmit({ channelId: ALPHA_CHANNEL, ...c.modal() })
        : h.server.sendButton({ messageId: statusMessage.id, ...c.button!() });
    const reply = await sent.waitForReply({ timeoutMs: TIMEOUT_MS });

    expect(reply.isEphemeral, `ephemeral: ${reply.content}`).toBe(true);
    expect(reply.content).toMatch(typeof c.says === 'function' ? c.says() : c.says);
    expect(reply.content).not.toMatch(/Something went wrong/);

    expect(count('processes'), 'process rows').toBe(baseline.processes);
    expect(count('hooks'), 'hook rows').toBe(baseline.hooks);
    expect(listRunDirs(h.home).sort(), 'run directories').toEqual(baseline.runDirs);
    expect(agentFiles(), 'agent.json files').toEqual(baseline.agentFiles);
    expect(publicMessages(), 'public messages per channel').toEqual(baseline.publicMessages);
    for (const record of [alphaRow, betaRow]) {
      const now = h.manager.find({ id: record.id })!;
      expect(isAlive(record.pid!), `${record.agentName}'s live process`).toBe(true);
      expect({ status: now.status, stoppedBy: now.stoppedBy }).toEqual({ status: 'running', stoppedBy: null });
    }
  });
});

describe('after every bad interaction', () => {
  it('the processes run on and Discord saw no request it had to refuse', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(15);
    expect(h.manager.list({ status: 'all' }).map((r) => [r.id, r.status]).sort()).toEqual([[alphaRow.id, 'running'], [betaRow.id, 'running']].sort());
    expect(h.server.rejected).toEqual([]);
    expect(h.server.unhandled).toEqual([]);
  });
});

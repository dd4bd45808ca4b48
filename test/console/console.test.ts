import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readAllStats } from '../../src/process/proc-fs.js';
import { runCli } from '../support/cli.js';
import { isAlive, trackPid } from '../support/child-cleanup.js';
import { FakeLlmServer, type FakeLlmRequest, type FakeLlmResponse } from '../support/fake-llm-server.js';
import { deepseek } from '../support/llm-endpoints/deepseek.js';
import { gemini3 } from '../support/llm-endpoints/gemini.js';
import { mistral } from '../support/llm-endpoints/mistral.js';
import type { LlmEndpoint } from '../support/llm-endpoints/index.js';
import { openrouter } from '../support/llm-endpoints/openrouter.js';
import { makeTempHome } from '../support/temp-home.js';
import { waitFor } from '../support/wait-for.js';

const node = JSON.stringify(process.execPath);
const REPOSITORY = join(import.meta.dirname, '..', '..');
const bots: ChildProcessWithoutNullStreams[] = [];
const servers: FakeLlmServer[] = [];

afterEach(async () => {
  for (const bot of bots.splice(0)) {
    try { process.kill(-bot.pid!, 'SIGKILL'); } catch { /* the group is gone */ }
  }
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

interface Bot {
  child: ChildProcessWithoutNullStreams;
  output: () => string;
  type: (line: string) => void;
  /** Waits for stdout to match, and returns the match. */
  expectOutput: (pattern: RegExp) => Promise<RegExpMatchArray>;
  /** The bot's own pid, from its ready line (npm and sh stand between it and the test). */
  botPid: () => Promise<number>;
  /** Resolves when npm has exited and every holder of its stdout and stderr (the bot) has closed them. */
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Every live process left in a process group. */
const groupMembers = (pgid: number) => readAllStats().filter((stat) => stat.pgrp === pgid && stat.state !== 'Z').map((stat) => stat.pid);

/**
 * `npm start` in the repository, as a new user runs it: no DISCORD_TOKEN, a fresh CHORUS_HOME, typing on stdin. Every
 * key of .env.example is set (most empty), so a .env in the repository cannot change what is tested. npm runs in a
 * process group of its own, so the test can signal it as a terminal or a service manager would, and clean it up.
 */
function startBot(home: string, env: NodeJS.ProcessEnv): Bot {
  const child = spawn('npm', ['start'], {
    cwd: REPOSITORY,
    detached: true,
    env: {
      PATH: process.env.PATH, HOME: process.env.HOME, CHORUS_HOME: home, CHORUS_KILL_GRACE_MS: '2000',
      DISCORD_TOKEN: '', DISCORD_GUILD_ID: '', DISCORD_API_URL: '', CHORUS_OWNER_IDS: '', CHORUS_REGISTER_COMMANDS: '',
      LLM_BASE_URL: '', LLM_API_KEY: '', LLM_MODEL: '', LLM_TIMEOUT_MS: '', LOG_LEVEL: '', CHORUS_LOG_CAP: '',
      ...env,
    },
  });
  bots.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    // Whatever the agent starts is cleaned up after the test, whatever happens.
    for (const match of stdout.matchAll(/^\[main\] pid (\d+)/gm)) trackPid(Number(match[1]), { group: true });
  });
  // npm may add its own warnings (about its config) here; they are tolerated, and shown when a wait fails.
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  const expectOutput = (pattern: RegExp) => waitFor(() => stdout.match(pattern), { what: `${pattern} on stdout:\n${stdout}\nstderr:\n${stderr}` });
  return {
    child,
    output: () => stdout,
    type: (line) => child.stdin.write(`${line}\n`),
    expectOutput,
    botPid: async () => Number((await expectOutput(/^chorus: supervising .* \(pid (\d+)\)$/m))[1]),
    closed,
  };
}

const lastRole = (request: FakeLlmRequest) => (request.body.messages as Array<{ role: string }>).at(-1)!.role;

describe('console mode through npm start', () => {
  it('talks to the agent on the terminal, runs /process lines, shows status changes, and ends cleanly at end of input', async () => {
    const home = makeTempHome();
    const llm = await FakeLlmServer.start();
    servers.push(llm);
    llm.setDefault((request) => lastRole(request) === 'tool'
      ? { content: 'Started the web server.' }
      : { toolCalls: [{ name: 'start_process', arguments: { command: `${node} -e "setInterval(() => {}, 1000)"`, name: 'web', category: 'server' } }] });
    const bot = startBot(home, { LLM_BASE_URL: llm.baseUrl, LLM_MODEL: 'console-model' });
    await bot.expectOutput(/console mode \(no DISCORD_TOKEN\); agents: main\. Type a message, or \/help\./);
    expect(bot.output()).toMatch(/^> chorus@\S+ start\n> exec node bin\/chorus\.js bot$/m);

    bot.type('please start a web server');
    await bot.expectOutput(/^main> Started the web server\.$/m);
    const [, pidText] = await bot.expectOutput(/^\[main\] pid (\d+) \(web\) running in the background: /m);
    const pid = Number(pidText);
    expect(isAlive(pid)).toBe(true);
    const [first] = llm.requests;
    expect(first!.body.model).toBe('console-model');
    expect(first!.body.messages[1]).toEqual({ role: 'user', content: 'please start a web server' });

    bot.type('/process list');
    await bot.expectOutput(new RegExp(`^Processes of main \\(all, 1\\):\\nPID +STATUS +TIME +TYPE +COMMAND\\n${pid} +running +\\S+ +background +web: `, 'm'));
    bot.type('/process logs 99999999');
    await bot.expectOutput(/pid must be a positive integer|No such process: pid 99999999 for agent main/);
    bot.type(`/process kill ${pid}`);
    await bot.expectOutput(new RegExp(`^Stopped pid ${pid} .* with SIGTERM`, 'm'));
    await bot.expectOutput(new RegExp(`^\\[main\\] pid ${pid} \\(web\\) stopped with SIGTERM after \\S+: `, 'm'));
    // One line per state change, never one per output line or resource sample.
    expect(bot.output().match(new RegExp(`^\\[main\\] pid ${pid} `, 'gm'))).toHaveLength(2);

    const botPid = await bot.botPid();
    bot.child.stdin.end();
    expect(await bot.closed).toEqual({ code: 0, signal: null });
    expect(bot.output()).toMatch(/chorus: stopped \(processes keep running\)\n$/);
    expect(isAlive(botPid)).toBe(false);
    expect(groupMembers(bot.child.pid!), 'npm, sh or the bot left behind').toEqual([]);
  });

  it('without LLM_BASE_URL says how to configure an LLM, /process still works, and SIGTERM leaves processes running', async () => {
    const home = makeTempHome();
    const bot = startBot(home, {});
    await bot.expectOutput(/no LLM is configured \(LLM_BASE_URL\)/);
    bot.type('hello?');
    await bot.expectOutput(/^main> No LLM is configured: set LLM_BASE_URL .*\/process commands work without it\.$/m);
    bot.type('/process list');
    await bot.expectOutput(/^main has no processes\.$/m);

    // A process started from the operator CLI is picked up and shown.
    const spawned = await runCli(home, ['spawn', '--agent', 'main', '--name', 'sleeper', '--json', '--', 'sleep', '30']);
    expect(spawned.code).toBe(0);
    const { pid } = JSON.parse(spawned.stdout) as { pid: number };
    trackPid(pid, { group: true });
    await bot.expectOutput(new RegExp(`^\\[main\\] pid ${pid} \\(sleeper\\) running in the background: sleep 30$`, 'm'));
    bot.type('/process status');
    await bot.expectOutput(/pid is required/);
    bot.type(`/process logs ${pid} --lines 5 stderr`);
    await bot.expectOutput(new RegExp(`^Last 5 lines of stderr of pid ${pid} \\(running\\):\\n\\(no output\\)$`, 'm'));

    // SIGTERM to npm's pid alone, as `docker stop` or a service manager that knows only npm would send: npm passes it
    // to its script, which `exec`s the bot, so the bot itself gets it and stops cleanly.
    const botPid = await bot.botPid();
    process.kill(bot.child.pid!, 'SIGTERM');
    const closed = await bot.closed;
    // npm itself ends by the same signal (or, in some versions, with 143): its business, not the bot's.
    expect(closed.signal === 'SIGTERM' || closed.code === 0 || closed.code === 143, JSON.stringify(closed)).toBe(true);
    expect(bot.output()).toMatch(/chorus: stopped \(processes keep running\)\n$/);
    expect(isAlive(botPid)).toBe(false);
    expect(groupMembers(bot.child.pid!), 'npm, sh or the bot left behind').toEqual([]);
    expect(isAlive(pid)).toBe(true);
  });

  it('starts an interactive process, types into it, pauses and resumes it with /process lines', async () => {
    const home = makeTempHome();
    const bot = startBot(home, {});
    await bot.expectOutput(/no LLM is configured \(LLM_BASE_URL\)/);
    bot.type(`/process start --name echoer --interactive while IFS= read -r l; do echo "got: $l"; done; exit 4`);
    const [, pidText] = await bot.expectOutput(/^Started pid (\d+) \(.*\), interactive: /m);
    const pid = Number(pidText);
    trackPid(pid, { group: true });
    bot.type(`/process input ${pid} hello   there`);
    await bot.expectOutput(new RegExp(`^Sent 12 bytes to pid ${pid}\\.$`, 'm'));
    bot.type(`/process signal ${pid} STOP`);
    await bot.expectOutput(new RegExp(`^Sent SIGSTOP to pid ${pid} \\(paused; send CONT to resume\\)\\.$`, 'm'));
    bot.type(`/process status ${pid}`);
    await bot.expectOutput(/^io: +interactive, paused \d+s \(CONT resumes\)/m);
    bot.type(`/process signal ${pid} CONT`);
    await bot.expectOutput(/\(resumed\)\.$/m);
    bot.type(`/process signal ${pid} SEGV`);
    await bot.expectOutput(/signal must be one of INT, HUP, QUIT, TERM, KILL, USR1, USR2, STOP, CONT, WINCH \(got "SEGV"\)/);
    bot.type(`/process input ${pid} bye eof`);
    await bot.expectOutput(new RegExp(`^\\[main\\] pid ${pid} \\(echoer\\) exited with code 4`, 'm'));
    bot.type(`/process logs ${pid}`);
    await bot.expectOutput(/^got: hello there\ngot: bye$/m);
    bot.child.stdin.end();
    expect(await bot.closed).toEqual({ code: 0, signal: null });
  });
});

/** Two turns on the terminal: parallel calls, their results, a second call, the answer; then a follow-up with a call. */
function consoleConversation(request: FakeLlmRequest): FakeLlmResponse {
  const messages = request.body.messages as Array<{ role: string; content: string | null; tool_calls?: unknown[] }>;
  const lastUser = messages.map((m) => m.role).lastIndexOf('user');
  const rounds = messages.slice(lastUser).filter((m) => m.role === 'assistant' && m.tool_calls?.length).length;
  const list = (filter: string) => ({ name: 'list_processes', arguments: { filter } });
  if (messages[lastUser]!.content === 'what runs here?') {
    if (rounds === 0) return { toolCalls: [list('running'), list('exited')] };
    if (rounds === 1) return { toolCalls: [list('all')] };
    return { content: 'Nothing runs here.' };
  }
  return rounds === 0 ? { toolCalls: [list('lost')] } : { content: 'No lost processes either.' };
}

/** The endpoints whose second request failed before assistant messages kept their fields, plus OpenRouter's. */
const CONSOLE_ENDPOINTS: LlmEndpoint[] = [gemini3, deepseek, mistral, openrouter];

describe('console mode through npm start reaches the final answer on each endpoint', () => {
  it.for(CONSOLE_ENDPOINTS.map((endpoint) => ({ endpoint, label: endpoint.name })))('$label', async ({ endpoint }) => {
    const home = makeTempHome();
    const llm = await endpoint.start();
    servers.push(llm);
    llm.setDefault(consoleConversation);
    const bot = startBot(home, { LLM_BASE_URL: llm.baseUrl, LLM_MODEL: endpoint.model, LLM_API_KEY: 'sk-console' });
    await bot.expectOutput(/console mode \(no DISCORD_TOKEN\); agents: main\./);

    bot.type('what runs here?');
    await bot.expectOutput(/^main> Nothing runs here\.$/m);
    bot.type('and lost ones?');
    await bot.expectOutput(/^main> No lost processes either\.$/m);
    expect(bot.output()).not.toContain('could not finish');
    expect(llm.requests.every((r) => r.body.model === endpoint.model)).toBe(true);

    bot.child.stdin.end();
    expect(await bot.closed).toEqual({ code: 0, signal: null });
  });
});

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { CHORUS_BIN, runCli } from '../support/cli.js';
import { isAlive, trackPid } from '../support/child-cleanup.js';
import { FakeLlmServer, type FakeLlmRequest } from '../support/fake-llm-server.js';
import { makeTempHome } from '../support/temp-home.js';
import { waitFor } from '../support/wait-for.js';

const node = JSON.stringify(process.execPath);
const bots: ChildProcessWithoutNullStreams[] = [];
const servers: FakeLlmServer[] = [];

afterEach(async () => {
  for (const bot of bots.splice(0)) if (bot.exitCode === null) bot.kill('SIGKILL');
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

interface Bot {
  child: ChildProcessWithoutNullStreams;
  output: () => string;
  type: (line: string) => void;
  /** Waits for stdout to match, and returns the match. */
  expectOutput: (pattern: RegExp) => Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
}

/** `node bin/chorus.js bot` as a new user runs it: no DISCORD_TOKEN, a fresh CHORUS_HOME, typing on stdin. */
function startBot(home: string, env: NodeJS.ProcessEnv): Bot {
  const child = spawn(process.execPath, [CHORUS_BIN, 'bot'], {
    cwd: home,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, CHORUS_HOME: home, CHORUS_KILL_GRACE_MS: '2000', ...env },
  });
  bots.push(child);
  trackPid(child.pid!);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    // Whatever the agent starts is cleaned up after the test, whatever happens.
    for (const match of stdout.matchAll(/pid (\d+)/g)) trackPid(Number(match[1]), { group: true });
  });
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => stdout,
    type: (line) => child.stdin.write(`${line}\n`),
    expectOutput: (pattern) => waitFor(() => stdout.match(pattern), { what: `${pattern} on stdout:\n${stdout}\nstderr:\n${stderr}` }),
    exited,
  };
}

const lastRole = (request: FakeLlmRequest) => (request.body.messages as Array<{ role: string }>).at(-1)!.role;

describe('console mode', () => {
  it('talks to the agent on the terminal, runs /process lines, shows status changes, and ends cleanly at end of input', async () => {
    const home = makeTempHome();
    const llm = await FakeLlmServer.start();
    servers.push(llm);
    llm.setDefault((request) => lastRole(request) === 'tool'
      ? { content: 'Started the web server.' }
      : { toolCalls: [{ name: 'start_process', arguments: { command: `${node} -e "setInterval(() => {}, 1000)"`, name: 'web', category: 'server' } }] });
    const bot = startBot(home, { LLM_BASE_URL: llm.baseUrl, LLM_MODEL: 'console-model' });
    await bot.expectOutput(/console mode \(no DISCORD_TOKEN\); agents: main\. Type a message, or \/help\./);

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

    bot.child.stdin.end();
    expect(await bot.exited).toBe(0);
    expect(bot.output()).toMatch(/chorus: stopped \(processes keep running\)\n$/);
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

    bot.child.kill('SIGTERM');
    expect(await bot.exited).toBe(0);
    expect(isAlive(pid)).toBe(true);
  });
});

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { commandArgv, libstdbuf, plainArgv } from '../../src/process/shim.js';
import { probeSandbox, findBwrap } from '../../src/process/sandbox.js';
import type { ProcessOwner } from '../../src/process/owner.js';
import type { ProcessRecord } from '../../src/store/process-repo.js';
import { startManager } from '../support/manager.js';
import { nextEvent, waitFor } from '../support/wait-for.js';

describe('plain commands (run without bash)', () => {
  it.each([
    ['sleep 60', ['sleep', '60']],
    ['  npm   test  ', ['npm', 'test']],
    ['python3 -m http.server --bind=127.0.0.1 8000', ['python3', '-m', 'http.server', '--bind=127.0.0.1', '8000']],
    ['./build.sh a,b @x 50% +1', ['./build.sh', 'a,b', '@x', '50%', '+1']],
  ])('%j runs as its words', (command, words) => {
    expect(plainArgv(command)).toEqual(words);
  });

  it.each([
    'echo -e x', 'time make', 'cd /tmp', 'kill 1', 'test -f x', 'true', '[ -f x ]', 'exec sleep 1', 'source x', '. x',
    'FOO=1 make', 'ls *.js', 'ls ~', 'make && make install', 'a | b', 'a; b', 'a > f', 'echo $HOME', 'echo "x"', "echo 'x'",
    'make # comment', 'a\nb', 'echo `id`', 'echo {a,b}', 'echo \\x', '-rf', 'if true', 'for x', '',
  ])('%j keeps bash', (command) => {
    expect(plainArgv(command)).toBeNull();
  });

  it('keeps bash when the environment asks bash to read something first (BASH_ENV)', () => {
    expect(commandArgv('sleep 60', { env: { BASH_ENV: '/x' } }).argv.slice(-3)).toEqual(['/bin/bash', '-c', 'sleep 60']);
    expect(commandArgv('sleep 60').argv).toEqual(['sleep', '60']);
  });

  it('sets up line buffering through stdbuf\'s library, not its exec, where the library is', () => {
    const launch = commandArgv('sleep 60', { env: { LD_PRELOAD: '/opt/mine.so' } });
    if (!libstdbuf()) {
      expect(launch.argv[0]).toMatch(/stdbuf$/);
      return;
    }
    expect(launch.env).toEqual({ LD_PRELOAD: `/opt/mine.so:${libstdbuf()}`, _STDBUF_O: 'L', _STDBUF_E: 'L' });
    expect(commandArgv('sleep 60', { isLineBuffered: false }).env).toEqual({});
  });
});

const sandboxModes: Array<'off' | 'auto'> = ['off', ...(probeSandbox(findBwrap()).isAvailable ? ['auto' as const] : [])];

describe.each(sandboxModes)('commands as they run (sandbox %s)', (mode) => {
  const start = () => startManager({ sandbox: { mode } });

  it('a C program writing to its log file flushes each line at once (line buffering), while it still runs', async () => {
    const { manager } = await start();
    // tr buffers a whole block when its output is a file, unless told to buffer by lines.
    const record = await manager.spawn({ agent: 'demo', command: '(echo hello; sleep 30) | tr a-z A-Z' });
    await waitFor(() => readFileSync(record.stdoutLog, 'utf8') === 'HELLO\n', { what: 'the line in the log', timeoutMs: 15_000 });
    expect(manager.find({ id: record.id })!.status).toBe('running');
  });

  it('runs a builtin with bash\'s meaning, a plain command directly, and reports a missing one with 127', async () => {
    const { manager } = await start();
    const run = async (command: string) => {
      const exited = nextEvent<[ProcessRecord]>(manager, 'exited', (r) => r.command === command);
      await manager.spawn({ agent: 'demo', command });
      const [ended] = await exited;
      return { code: ended.exitCode, out: readFileSync(ended.stdoutLog, 'utf8'), err: readFileSync(ended.stderrLog, 'utf8') };
    };
    expect(await run('echo -e x')).toMatchObject({ code: 0, out: 'x\n' });
    expect(await run('printenv CHORUS_AGENT')).toMatchObject({ code: 0, out: 'demo\n' });
    const missing = await run('chorus-no-such-program --flag');
    expect(missing.code).toBe(127);
    expect(missing.err).toMatch(/chorus-no-such-program.*(not found|No such file)/);
  });

  it('keeps bash for an agent whose environment names a BASH_ENV', async () => {
    const { home, manager } = await start();
    const workspace = join(home, 'agents', 'envy', 'workspace');
    const owner: ProcessOwner = { name: 'envy', workspace, env: { BASH_ENV: join(workspace, 'startup.sh') }, maxProcesses: 5 };
    const exited = nextEvent<[ProcessRecord]>(manager, 'exited');
    mkdirSync(workspace, { recursive: true });
    writeFileSync(owner.env.BASH_ENV!, 'echo from-bash-env\n');
    await manager.spawn({ agent: owner, command: 'printenv CHORUS_AGENT' });
    const [ended] = await exited;
    expect(readFileSync(ended.stdoutLog, 'utf8')).toBe('from-bash-env\nenvy\n');
  });
});

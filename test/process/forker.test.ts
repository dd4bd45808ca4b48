import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Forker, LaunchUncertainError, NATIVE_READY, nativeForkerPath, NodeLauncher, ShimLaunchers, type LaunchRequest, type ShimLauncher } from '../../src/process/forker.js';
import { descriptorTarget, environHas, readAllStats, readStat } from '../../src/process/proc-fs.js';
import { trackPid } from '../support/child-cleanup.js';
import { startManager } from '../support/manager.js';
import { makeTempHome } from '../support/temp-home.js';
import { nextEvent, waitFor } from '../support/wait-for.js';
import type { ProcessRecord } from '../../src/store/process-repo.js';

const launchers: ShimLauncher[] = [];
afterEach(() => {
  for (const launcher of launchers.splice(0)) launcher.close();
});

function forker(idleMs = 30_000): Forker {
  const found = Forker.find({ idleMs });
  if (!found) throw new Error('perl is missing: the forker tests need it (perl-base is Essential on Debian)');
  launchers.push(found);
  return found;
}

/** The native forker, built by npm run build where a C compiler is; CI builds it (.ci/run), so there it must be. */
const isNativeBuilt = Forker.findNative() !== undefined;
const nativeKinds = isNativeBuilt || process.env.CI ? ['native' as const] : [];

function nativeForker(idleMs = 30_000): Forker {
  const found = Forker.findNative({ idleMs });
  if (!found) throw new Error(`the native forker was not built at ${nativeForkerPath()} (npm run build needs a C compiler): CI must test it`);
  launchers.push(found);
  return found;
}

const forkers = { perl: forker, native: nativeForker };

/** A request running `script` in /bin/sh with only `env`, its logs and exit file in a fresh directory. */
function request(script: string, env: Record<string, string> = { PATH: '/usr/bin:/bin' }, cwd?: string): LaunchRequest {
  const dir = join(makeTempHome(), 'run');
  mkdirSync(dir);
  return { argv: ['/bin/sh', '-c', script], cwd: cwd ?? dir, env, stdoutLog: join(dir, 'stdout.log'), stderrLog: join(dir, 'stderr.log'), exitFile: join(dir, 'exit') };
}

async function launched(launcher: ShimLauncher, req: LaunchRequest): Promise<number> {
  const pid = await launcher.launch(req);
  trackPid(pid, { group: true });
  return pid;
}

const stdoutOf = (req: LaunchRequest) => (existsSync(req.stdoutLog) ? readFileSync(req.stdoutLog, 'utf8') : '');

describe.each([
  ['perl', () => forker(), true],
  ...nativeKinds.map((kind) => [kind, () => nativeForker(), true] as const),
  // Node's spawn passes on a descriptor the supervisor itself inherited without close-on-exec (a test runner's).
  ['node', () => new NodeLauncher(), false],
] as const)('programs started by the %s launcher', (_kind, make, closesStrays) => {
  it('lead their own session at once, with exactly the environment sent, no inherited descriptor or ignored signal', async () => {
    process.env.CHORUS_TEST_FORKER_LEAK = 'must-not-reach-the-child';
    try {
      const req = request(
        'echo "env:$(env | sort | tr "\\n" " ")"; echo; grep -E "^Sig(Ign|Blk)" /proc/self/status; echo "cwd:$(pwd)"; read x; echo "stdin:[$x]"; exec sleep 60',
        { PATH: '/usr/bin:/bin', ONLY: 'this' },
      );
      const pid = await launched(make(), req);
      // Identity is read right after the answer: the group must already be the process's own.
      const stat = readStat(pid)!;
      expect(stat.pgrp).toBe(pid);
      expect(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[3]).toBe(String(pid)); // session id
      const out = await waitFor(() => { const text = stdoutOf(req); return text.includes('stdin:') && text; }, { what: 'the child to report' });
      expect(out).toContain('env:ONLY=this PATH=/usr/bin:/bin PWD=');
      expect(out).not.toContain('CHORUS_TEST_FORKER_LEAK');
      // The program's own descriptors, once it runs: nothing of the launcher's.
      await waitFor(() => readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep'), { what: 'the exec of sleep' });
      if (closesStrays) expect(readdirSync(`/proc/${pid}/fd`).sort()).toEqual(['0', '1', '2']);
      expect(out).toContain('SigIgn:\t0000000000000000');
      expect(out).toContain('SigBlk:\t0000000000000000');
      expect(out).toContain(`cwd:${req.cwd}`);
      expect(out).toContain('stdin:[]');
      expect(statSync(req.stdoutLog).mode & 0o777).toBe(0o600);
      expect(statSync(req.stderrLog).mode & 0o777).toBe(0o600);
    } finally {
      delete process.env.CHORUS_TEST_FORKER_LEAK;
    }
  });
});

const forkerCommand = { perl: /^\/(usr\/)?bin\/perl\0-e\0/, native: /\/dist\/native\/chorus-forker\0$/ };

describe.each(['perl' as const, ...nativeKinds])('the %s forker', (kind) => {
  const make = forkers[kind];
  it('ends a child that cannot enter its directory with 127 in the exit file and the reason in its stderr log', async () => {
    const req = request('echo never', undefined, '/nonexistent-chorus-dir');
    await launched(make(), req);
    await waitFor(() => existsSync(req.exitFile), { what: 'the exit file' });
    expect(readFileSync(req.exitFile, 'utf8')).toBe('127\n');
    expect(readFileSync(req.stderrLog, 'utf8')).toMatch(/chorus: cannot enter \/nonexistent-chorus-dir/);
    expect(stdoutOf(req)).toBe('');
  });

  it('comes back after it was killed while idle, and after its idle time ran out', async () => {
    const launcher = make(300);
    const parentOf = async () => {
      const req = request('echo $PPID; exec sleep 60');
      await launched(launcher, req);
      return Number(await waitFor(() => stdoutOf(req).trim(), { what: 'the parent pid' }));
    };
    const first = await parentOf();
    expect(readFileSync(`/proc/${first}/cmdline`, 'utf8')).toMatch(forkerCommand[kind]);
    process.kill(first, 'SIGKILL');
    await waitFor(() => !existsSync(`/proc/${first}/stat`) || readStat(first)?.state === 'Z', { what: 'the forker to die' });
    const second = await parentOf();
    expect(second).not.toBe(first);
    // Idle for longer than its idle time, it exits; the next launch starts another.
    await waitFor(() => !existsSync(`/proc/${second}`) || readStat(second)?.state === 'Z', { what: 'the idle forker to exit', timeoutMs: 5_000 });
    const third = await parentOf();
    expect(third).not.toBe(second);
  });

  it('fails the launches it had not answered when it dies, as uncertain (the child may run)', async () => {
    const launcher = make();
    const req = request('echo $PPID; exec sleep 60');
    await launched(launcher, req);
    const parent = Number(await waitFor(() => stdoutOf(req).trim(), { what: 'the parent pid' }));
    process.kill(parent, 'SIGSTOP');
    const pending = launcher.launch(request('exec sleep 60'));
    await new Promise((resolve) => setImmediate(resolve));
    process.kill(parent, 'SIGKILL');
    await expect(pending).rejects.toBeInstanceOf(LaunchUncertainError);
  });
});

describe('falling back', () => {
  it('is replaced by Node\'s spawn, with one warning, where perl cannot run it', async () => {
    const warnings: string[] = [];
    const launchers_ = new ShimLaunchers({ useForker: true, native: false, perl: '/nonexistent/perl', onFallback: (why) => warnings.push(why) });
    launchers.push(launchers_);
    expect(launchers_.kind).toBe('perl');
    for (const _ of [1, 2]) {
      const req = request('echo ran');
      await launched(launchers_, req);
      await waitFor(() => stdoutOf(req) === 'ran\n', { what: 'the child to run' });
    }
    expect(launchers_.kind).toBe('node');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/the perl forker could not start/);
  });

  it('is replaced by the perl forker, with one warning saying how to build it, where the native forker was not built', async () => {
    const warnings: Array<[string, string]> = [];
    const launchers_ = new ShimLaunchers({ useForker: true, native: '/nonexistent/chorus-forker', onFallback: (why, next) => warnings.push([why, next]) });
    launchers.push(launchers_);
    expect(launchers_.kind).toBe('perl');
    for (const _ of [1, 2]) {
      const req = request('echo ran');
      await launched(launchers_, { ...req, argv: ['echo', 'ran'], shim: {} });
      await waitFor(() => existsSync(req.exitFile) && stdoutOf(req) === 'ran\n', { what: 'the child to run' });
      expect(readFileSync(req.exitFile, 'utf8')).toBe('0\n');
    }
    expect(warnings).toEqual([[expect.stringMatching(/the native forker was not built \(\/nonexistent\/chorus-forker: install a C compiler, apt-get install gcc, then npm run build\)/), 'perl']]);
  });

  it('drops a native forker built from another version of native/forker.c (its ready line differs) for the perl forker', async () => {
    const stale = join(makeTempHome(), 'chorus-forker');
    writeFileSync(stale, '#!/bin/sh\necho "ready native 1"\nexec cat >/dev/null\n');
    chmodSync(stale, 0o755);
    const warnings: Array<[string, string]> = [];
    const launchers_ = new ShimLaunchers({ useForker: true, native: stale, onFallback: (why, next) => warnings.push([why, next]) });
    launchers.push(launchers_);
    expect(launchers_.kind).toBe('native');
    const req = request('echo ran');
    await launched(launchers_, req);
    await waitFor(() => stdoutOf(req) === 'ran\n', { what: 'the child to run' });
    expect(launchers_.kind).toBe('perl');
    expect(warnings).toEqual([[expect.stringContaining(`the native forker said "ready native 1" instead of "${NATIVE_READY}"`), 'perl']]);
  });
});

/** A request that runs `argv` under the native forker's own shim. */
function shimmed(argv: string[], env: Record<string, string> = { PATH: '/usr/bin:/bin' }): LaunchRequest {
  return { ...request('', env), argv, shim: {} };
}

const exitOf = async (req: LaunchRequest) => waitFor(() => existsSync(req.exitFile) && readFileSync(req.exitFile, 'utf8'), { what: 'the exit file' });

/** The flags lsattr shows for a directory (e2fsprogs). */
const attributes = (dir: string) => spawnSync('lsattr', ['-d', dir], { encoding: 'utf8' }).stdout.split(/\s/)[0]!;
/** Whether `dir` is on ext2/3/4, the file systems with the top-directory flag (stat says `ext2/ext3` for all three). */
const isExt = (dir: string) => spawnSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' }).stdout.startsWith('ext');

describe.each(nativeKinds)('the %s forker\'s allocator hint', () => {
  it('marks the directory run directories are made in as a top directory (chattr +T) where the file system has the flag', async () => {
    const dir = join(makeTempHome(), 'processes');
    mkdirSync(dir);
    const isMarked = await nativeForker().markTopDirectory(dir);
    // ext2/3/4 have the flag (CI's disk is ext4); elsewhere the forker answers that it could not.
    expect(isMarked).toBe(isExt(dir));
    if (isExt(dir)) expect(attributes(dir)).toMatch(/^-*T/);
  });

  it('answers false for a file system without the flag and for a directory that does not exist, and goes on serving', async () => {
    const launcher = nativeForker();
    if (existsSync('/dev/shm')) expect(await launcher.markTopDirectory('/dev/shm')).toBe(false);
    expect(await launcher.markTopDirectory('/nonexistent-chorus-dir')).toBe(false);
    const req = request('echo ran');
    await launched(launcher, req);
    await waitFor(() => stdoutOf(req) === 'ran\n', { what: 'the child to run' });
  });

  it('is asked once per directory by the launchers, and never by the perl forker', async () => {
    const dir = join(makeTempHome(), 'processes');
    mkdirSync(dir);
    const launchers_ = new ShimLaunchers({ useForker: true });
    launchers.push(launchers_);
    expect(await launchers_.markTopDirectory(dir)).toBe(isExt(dir));
    expect(await launchers_.markTopDirectory(dir)).toBe(false);
    expect(await forker().markTopDirectory(dir)).toBe(false);
  });
});

describe.each(['perl' as const, ...nativeKinds])('the shim of the %s forker', (kind) => {
  it('writes the exit file through neither a link left as its temporary file nor one left as the exit file', async () => {
    const req = shimmed(['sh', '-c', 'ln -s "$0/target" exit.tmp; ln -s "$0/other" exit; exit 3']);
    const outside = makeTempHome();
    writeFileSync(join(outside, 'target'), 'keep\n');
    writeFileSync(join(outside, 'other'), 'keep\n');
    req.argv.push(outside);
    await launched(forkers[kind](), req);
    await waitFor(() => existsSync(req.exitFile) && !statSync(req.exitFile, { throwIfNoEntry: false })?.isSymbolicLink() && readFileSync(req.exitFile, 'utf8') === '3\n', { what: 'the exit file' });
    expect(readFileSync(join(outside, 'target'), 'utf8')).toBe('keep\n');
    expect(readFileSync(join(outside, 'other'), 'utf8')).toBe('keep\n');
    expect(lstatSync(req.exitFile).isFile()).toBe(true);
  });
});

describe.each(nativeKinds)('the %s shim (the forker\'s child, without an exec of /bin/sh)', () => {
  it('stays the parent of its command, alone in its session with the command, holding only the logs and /dev/null', async () => {
    const req = shimmed(['sleep', '60']);
    const shim = await launched(nativeForker(), req);
    const command = await waitFor(() => readAllStats().find((s) => s.ppid === shim && readFileSync(`/proc/${s.pid}/cmdline`, 'utf8').startsWith('sleep')), { what: 'the command' });
    expect(command.pgrp).toBe(shim);
    expect(readStat(shim)).toMatchObject({ pgrp: shim, session: shim });
    expect(readdirSync(`/proc/${shim}/fd`).sort()).toEqual(['0', '1', '2']);
    expect(readdirSync(`/proc/${command.pid}/fd`).sort()).toEqual(['0', '1', '2']);
    expect(readFileSync(`/proc/${shim}/environ`, 'utf8')).toBe('');
  });

  it('gives the command exactly the environment sent, found on its PATH, with no ignored or blocked signal', async () => {
    const dir = makeTempHome();
    writeFileSync(join(dir, 'chorus-probe'), '#!/bin/sh\nenv | sort | tr "\\n" " "; echo; grep -E "^Sig(Ign|Blk)" /proc/self/status; echo "args:$*"\n');
    chmodSync(join(dir, 'chorus-probe'), 0o755);
    process.env.CHORUS_TEST_FORKER_LEAK = 'must-not-reach-the-child';
    try {
      const req = shimmed(['chorus-probe', 'a b', ''], { PATH: `${dir}:/usr/bin:/bin`, ONLY: 'this' });
      await launched(nativeForker(), req);
      expect(await exitOf(req)).toBe('0\n');
      const out = stdoutOf(req);
      expect(out).toMatch(new RegExp(`^ONLY=this PATH=${dir}:/usr/bin:/bin PWD=${req.cwd} `));
      expect(out).not.toContain('CHORUS_TEST_FORKER_LEAK');
      expect(out).toContain('SigIgn:\t0000000000000000');
      expect(out).toContain('SigBlk:\t0000000000000000');
      expect(out).toContain('args:a b ');
    } finally {
      delete process.env.CHORUS_TEST_FORKER_LEAK;
    }
  });

  it('finds the program as execvp does: past a directory and a file that cannot run, in the current directory for an empty entry', async () => {
    const [early, late] = [makeTempHome(), makeTempHome()];
    mkdirSync(join(early, 'chorus-probe'));
    writeFileSync(join(late, 'chorus-probe'), '#!/bin/sh\necho not this one\n', { mode: 0o644 });
    const req = shimmed(['chorus-probe', 'x'], { PATH: `${early}:${late}::/usr/bin:/bin` });
    writeFileSync(join(req.cwd, 'chorus-probe'), '#!/bin/sh\necho "ran $0 $1"\n', { mode: 0o755 });
    await launched(nativeForker(), req);
    expect(await exitOf(req)).toBe('0\n');
    expect(stdoutOf(req)).toBe('ran chorus-probe x\n');
  });

  it('runs an executable file without a #! line in /bin/sh, as execvp does', async () => {
    const dir = makeTempHome();
    writeFileSync(join(dir, 'chorus-plain'), 'echo "plain $1"; exit 6\n', { mode: 0o755 });
    const req = shimmed(['chorus-plain', 'y'], { PATH: `${dir}:/usr/bin:/bin` });
    await launched(nativeForker(), req);
    expect(await exitOf(req)).toBe('6\n');
    expect(stdoutOf(req)).toBe('plain y\n');
  });

  it.each([
    ['a code', ['sh', '-c', 'exit 3'], '3\n'],
    ['a signal as 128 + its number', ['sh', '-c', 'kill -TERM $$'], '143\n'],
    ['a SIGKILL', ['sh', '-c', 'kill -KILL $$'], '137\n'],
    ['127 for a program not found', ['chorus-no-such-program'], '127\n'],
    ['126 for a file that is not executable', ['./not-executable'], '126\n'],
  ])('writes the status of %s to the exit file, as a shell\'s $? says it', async (_what, argv, status) => {
    const req = shimmed(argv);
    writeFileSync(join(req.cwd, 'not-executable'), 'echo never\n', { mode: 0o644 });
    await launched(nativeForker(), req);
    expect(await exitOf(req)).toBe(status);
    expect(existsSync(`${req.exitFile}.tmp`)).toBe(false);
    if (status === '127\n') expect(readFileSync(req.stderrLog, 'utf8')).toBe('chorus: cannot run chorus-no-such-program: No such file or directory\n');
    if (status === '126\n') expect(readFileSync(req.stderrLog, 'utf8')).toBe('chorus: cannot run ./not-executable: Permission denied\n');
  });

  it('outlives every signal sent to its group that the command survives, and records the code the command ends with', async () => {
    const signals = ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGPIPE', 'SIGALRM', 'SIGTERM', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU', 'SIGWINCH', 'SIGRTMIN'] as const;
    const numbers: number[] = signals.map((name) => (name === 'SIGRTMIN' ? 34 : os.constants.signals[name]));
    const traps = numbers.map((n) => `trap 'echo got ${n}' ${n};`).join(' ');
    const req = shimmed(['bash', '-c', `${traps} echo ready; while [ ! -e stop ]; do sleep 0.02; done; exit 5`]);
    const shim = await launched(nativeForker(), req);
    await waitFor(() => stdoutOf(req).includes('ready'), { what: 'the command to be ready' });
    for (const n of numbers) {
      process.kill(-shim, n);
      await waitFor(() => stdoutOf(req).includes(`got ${n}\n`), { what: `the command to get signal ${n}` });
    }
    writeFileSync(join(req.cwd, 'stop'), '');
    expect(await exitOf(req)).toBe('5\n');
  });
});

/** Whether a process of group `pgid` runs a command line holding `text` (the sh shim execs it; the native shim forks it). */
const groupRuns = (pgid: number, text: string) => readAllStats().some((s) => s.pgrp === pgid && readFileSync(`/proc/${s.pid}/cmdline`, 'utf8').includes(text));

describe('spawns through the manager', () => {
  it.each([
    ['perl', 'perl'],
    ['node', 'node'],
    ...nativeKinds.map(() => ['forker', 'native'] as const),
  ] as const)('run and end through the %s launcher (%s)', async (launcher, kind) => {
    const { manager } = await startManager({ launcher });
    expect(manager.launcher.kind).toBe(kind);
    const exited = nextEvent<[ProcessRecord]>(manager, 'exited');
    const record = await manager.spawn({ agent: 'demo', command: 'echo hello; exit 4' });
    const [ended] = await exited;
    expect(ended.id).toBe(record.id);
    expect(ended.exitCode).toBe(4);
    expect(readFileSync(ended.stdoutLog, 'utf8')).toBe('hello\n');
    // The native forker marked the agent's processes directory for the allocator (where the file system can): its
    // buckets are spread over the disk, and the run directories of a bucket stay beside it.
    const bucket = dirname(ended.runDir);
    const processes = dirname(bucket);
    expect(bucket).toMatch(/\/processes\/\d{8}-\d{4}$/);
    if (kind === 'native' && isExt(processes)) expect(attributes(processes)).toMatch(/^-*T/);
    if (kind !== 'native') expect(attributes(processes)).not.toMatch(/^-*T/);
    expect(attributes(bucket)).not.toMatch(/^-*T/);
  });

  it.each([
    ['perl', 'perl', forkerCommand.perl],
    ...nativeKinds.map(() => ['native', 'forker', forkerCommand.native] as const),
  ] as const)('starts again, through a new %s forker, a spawn its forker died before reading: exactly one process runs', async (_kind, launcher, command) => {
    const { manager } = await startManager({ launcher });
    // A first spawn starts the forker: a child of this process.
    await manager.spawn({ agent: 'demo', command: 'exec sleep 60' });
    const [first] = readAllStats().filter((s) => s.ppid === process.pid && command.test(readFileSync(`/proc/${s.pid}/cmdline`, 'utf8'))).map((s) => s.pid);
    expect(first).toBeGreaterThan(1);
    process.kill(first!, 'SIGSTOP');
    const pending = manager.spawn({ agent: 'demo', command: 'exec sleep 61' });
    // The request is written once the spawn's synchronous part and a microtask have run.
    await new Promise((resolve) => setImmediate(resolve));
    process.kill(first!, 'SIGKILL');
    const record = await pending;
    expect(record.status).toBe('running');
    const marker = `CHORUS_RUN_DIR=${record.runDir}`;
    const shims = readAllStats().filter((s) => s.pid === s.pgrp && (environHas(s.pid, marker) || descriptorTarget(s.pid, 1) === record.stdoutLog));
    expect(shims.map((s) => s.pid)).toEqual([record.pid]);
    await waitFor(() => groupRuns(record.pgid!, 'sleep\0' + '61'), { what: 'the command to run' });
  });
});

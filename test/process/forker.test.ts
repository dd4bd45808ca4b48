import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Forker, LaunchUncertainError, NodeLauncher, ShimLaunchers, type LaunchRequest, type ShimLauncher } from '../../src/process/forker.js';
import { environHas, readAllStats, readStat } from '../../src/process/proc-fs.js';
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
  ['forker', () => forker(), true],
  // Node's spawn passes on a descriptor the supervisor itself inherited without close-on-exec (a test runner's).
  ['node', () => new NodeLauncher(), false],
] as const)('shims started by the %s launcher', (_kind, make, closesStrays) => {
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

describe('the forker', () => {
  it('ends a child that cannot enter its directory with 127 in the exit file and the reason in its stderr log', async () => {
    const req = request('echo never', undefined, '/nonexistent-chorus-dir');
    await launched(forker(), req);
    await waitFor(() => existsSync(req.exitFile), { what: 'the exit file' });
    expect(readFileSync(req.exitFile, 'utf8')).toBe('127\n');
    expect(readFileSync(req.stderrLog, 'utf8')).toMatch(/chorus: cannot enter \/nonexistent-chorus-dir/);
    expect(stdoutOf(req)).toBe('');
  });

  it('comes back after it was killed while idle, and after its idle time ran out', async () => {
    const launcher = forker(300);
    const parentOf = async () => {
      const req = request('echo $PPID; exec sleep 60');
      await launched(launcher, req);
      return Number(await waitFor(() => stdoutOf(req).trim(), { what: 'the parent pid' }));
    };
    const perl = await parentOf();
    expect(readFileSync(`/proc/${perl}/cmdline`, 'utf8')).toMatch(/^\/(usr\/)?bin\/perl\0-e\0/);
    process.kill(perl, 'SIGKILL');
    await waitFor(() => !existsSync(`/proc/${perl}/stat`) || readStat(perl)?.state === 'Z', { what: 'the forker to die' });
    const second = await parentOf();
    expect(second).not.toBe(perl);
    // Idle for longer than its idle time, it exits; the next launch starts another.
    await waitFor(() => !existsSync(`/proc/${second}`) || readStat(second)?.state === 'Z', { what: 'the idle forker to exit', timeoutMs: 5_000 });
    const third = await parentOf();
    expect(third).not.toBe(second);
  });

  it('fails the launches it had not answered when it dies, as uncertain (the child may run)', async () => {
    const launcher = forker();
    const req = request('echo $PPID; exec sleep 60');
    await launched(launcher, req);
    const perl = Number(await waitFor(() => stdoutOf(req).trim(), { what: 'the parent pid' }));
    process.kill(perl, 'SIGSTOP');
    const pending = launcher.launch(request('exec sleep 60'));
    await new Promise((resolve) => setImmediate(resolve));
    process.kill(perl, 'SIGKILL');
    await expect(pending).rejects.toBeInstanceOf(LaunchUncertainError);
  });

  it('is replaced by Node\'s spawn, with one warning, where perl cannot run it', async () => {
    const warnings: string[] = [];
    const launchers_ = new ShimLaunchers({ useForker: true, perl: '/nonexistent/perl', onFallback: (why) => warnings.push(why) });
    launchers.push(launchers_);
    expect(launchers_.kind).toBe('forker');
    for (const _ of [1, 2]) {
      const req = request('echo ran');
      await launched(launchers_, req);
      await waitFor(() => stdoutOf(req) === 'ran\n', { what: 'the child to run' });
    }
    expect(launchers_.kind).toBe('node');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/the forker could not start/);
  });
});

describe('spawns through the manager', () => {
  it.each(['forker', 'node'] as const)('run and end through the %s launcher', async (launcher) => {
    const { manager } = await startManager({ launcher });
    expect(manager.launcher.kind).toBe(launcher);
    const exited = nextEvent<[ProcessRecord]>(manager, 'exited');
    const record = await manager.spawn({ agent: 'demo', command: 'echo hello; exit 4' });
    const [ended] = await exited;
    expect(ended.id).toBe(record.id);
    expect(ended.exitCode).toBe(4);
    expect(readFileSync(ended.stdoutLog, 'utf8')).toBe('hello\n');
  });

  it('starts again, through a new forker, a spawn its forker died before reading: exactly one process runs', async () => {
    const { manager } = await startManager();
    // A first spawn starts the forker: this process's child running perl.
    await manager.spawn({ agent: 'demo', command: 'exec sleep 60' });
    const [perl] = readAllStats().filter((s) => s.ppid === process.pid && /perl\0-e\0/.test(readFileSync(`/proc/${s.pid}/cmdline`, 'utf8'))).map((s) => s.pid);
    expect(perl).toBeGreaterThan(1);
    process.kill(perl!, 'SIGSTOP');
    const pending = manager.spawn({ agent: 'demo', command: 'exec sleep 61' });
    // The request is written once the spawn's synchronous part and a microtask have run.
    await new Promise((resolve) => setImmediate(resolve));
    process.kill(perl!, 'SIGKILL');
    const record = await pending;
    expect(record.status).toBe('running');
    const marker = `CHORUS_RUN_DIR=${record.runDir}`;
    const carriers = readAllStats().filter((s) => s.pid === s.pgrp && environHas(s.pid, marker));
    expect(carriers.map((s) => s.pid)).toEqual([record.pid]);
    await waitFor(() => readFileSync(`/proc/${record.pid}/cmdline`, 'utf8').includes('sleep'), { what: 'the command to run' });
  });
});

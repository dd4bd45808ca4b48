import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { isAlive, trackPid } from '../support/child-cleanup.js';
import { parseJson, runCli } from '../support/cli.js';
import { namespacePids, pidsRunning } from '../support/host-pid.js';
import { startSupervisor } from '../support/supervisor-process.js';
import { waitFor } from '../support/wait-for.js';
import { describeSandbox, makeSandboxWorld } from './sandbox-home.js';

/** Traps TERM, cleans up into the workspace, then exits; prints "ready" once the trap is set. */
const CLEANS_UP = `trap 'echo cleaned > cleaned.txt; exit 0' TERM; echo ready; while :; do sleep 0.1; done`;

describeSandbox('real work inside the sandbox', () => {
  it('writes in the workspace and /tmp, and runs git, node, python3 and npm there', async () => {
    const w = await makeSandboxWorld();
    const work = await w.run([
      'set -e',
      'echo hello > note.txt',
      'echo scratch > /tmp/scratch && cat /tmp/scratch',
      'git init -q repo && cd repo && cp ../note.txt . && git add note.txt',
      'git -c user.email=a@example.com -c user.name=a commit -qm first && git log --oneline | wc -l',
      'cd ..',
      `${JSON.stringify(process.execPath)} -e "require('fs').writeFileSync('from-node.txt', 'node ' + process.version)"`,
      'python3 -c "open(\'from-python.txt\', \'w\').write(\'python\')"',
      `PATH=${JSON.stringify(join(process.execPath, '..'))}:$PATH npm --version`,
    ].join('\n'));
    expect(work.err).toBe('');
    expect(work.record).toMatchObject({ status: 'exited', exitCode: 0, sandbox: 'bwrap' });
    expect(work.out).toMatch(/^scratch\n1\n\d+\.\d+\.\d+\n$/);
    const workspace = join(w.home, 'agents', 'alpha', 'workspace');
    expect(readFileSync(join(workspace, 'note.txt'), 'utf8')).toBe('hello\n');
    expect(readFileSync(join(workspace, 'from-node.txt'), 'utf8')).toBe(`node ${process.version}`);
    expect(readFileSync(join(workspace, 'from-python.txt'), 'utf8')).toBe('python');
    expect(existsSync(join(workspace, 'repo', '.git'))).toBe(true);
    // The private /tmp is gone with the process.
    expect(existsSync('/tmp/scratch') && readFileSync('/tmp/scratch', 'utf8') === 'scratch\n').toBe(false);
  });

  it('passes exit codes through, stops the tree with SIGTERM first so the command can clean up, and restarts', async () => {
    const w = await makeSandboxWorld();
    expect((await w.run('exit 7')).record).toMatchObject({ status: 'exited', exitCode: 7 });
    expect((await w.run('kill -KILL $$')).record).toMatchObject({ status: 'exited', exitCode: 137 });

    const started = await w.manager.spawn({ agent: 'alpha', command: CLEANS_UP });
    trackPid(started.pid!, { group: true });
    await waitFor(() => w.manager.tail(started.id)?.some((l) => l.text === 'ready'), { what: 'the trap to be set' });
    // Everything inside is visible from the host and counted: the shim, bwrap, its init, the shell, a sleep.
    const usage = await waitFor(() => { const u = w.manager.usage(started.id); return u && u.processCount >= 4 && u; }, { what: 'a resource sample' });
    expect(usage.rssBytes).toBeGreaterThan(0);

    const restarted = await w.manager.restart({ id: started.id }, { by: 'test' });
    trackPid(restarted.pid!, { group: true });
    const old = w.manager.find({ id: started.id })!;
    expect(old).toMatchObject({ status: 'killed', signal: 'SIGTERM', exitCode: 0 });
    const workspace = join(w.home, 'agents', 'alpha', 'workspace');
    expect(readFileSync(join(workspace, 'cleaned.txt'), 'utf8')).toBe('cleaned\n');
    expect(restarted).toMatchObject({ status: 'running', sandbox: 'bwrap', restartedFrom: started.id });
    await waitFor(() => w.manager.tail(restarted.id)?.some((l) => l.text === 'ready'), { what: 'the restarted trap' });
    const stopped = await w.manager.kill({ id: restarted.id }, { by: 'test' });
    expect(stopped).toMatchObject({ status: 'killed', signal: 'SIGTERM' });
    expect(isAlive(restarted.pid!)).toBe(false);
  });

  it('dies with its shim (bwrap --die-with-parent), which is never the bot', async () => {
    const w = await makeSandboxWorld();
    const seconds = `60.${process.pid}${Date.now() % 1000}`;
    const started = await w.manager.spawn({ agent: 'alpha', command: `sleep ${seconds}` });
    trackPid(started.pid!, { group: true });
    const [sleeper] = await waitFor(() => { const found = pidsRunning(['sleep', seconds]); return found.length === 1 && found; }, { what: 'the confined sleep' });
    expect(namespacePids(sleeper!)).toHaveLength(2);
    process.kill(started.pid!, 'SIGKILL');
    await waitFor(() => !isAlive(sleeper!), { what: 'the sandbox to die with its shim' });
  });

  it('`chorus spawn --agent` is confined, keeps running after the supervisor is SIGKILLed and is adopted', async () => {
    const w = await makeSandboxWorld();
    await w.manager.close();
    const env = { HOME: w.userHome, CHORUS_SANDBOX: 'required' };
    const first = await startSupervisor(w.home, { env });
    const spawned = await runCli(w.home, ['spawn', '--agent', 'alpha', '--json', '--', CLEANS_UP], { env });
    expect(spawned.stderr).toBe('');
    const row = parseJson(spawned);
    trackPid(row.pid, { group: true });
    expect(row).toMatchObject({ status: 'running', sandbox: 'bwrap' });

    await first.sigkill();
    expect(isAlive(row.pid)).toBe(true);
    const second = await startSupervisor(w.home, { env });
    const status = parseJson(await runCli(w.home, ['status', String(row.pid), '--json'], { env }));
    expect(status).toMatchObject({ status: 'running', sandbox: 'bwrap' });
    expect((await runCli(w.home, ['status', String(row.pid)], { env })).stdout).toMatch(/sandbox\s+bwrap/);

    const killed = await runCli(w.home, ['kill', String(row.pid)], { env });
    expect(killed.stdout, killed.stderr).toMatch(/^stopped pid \d+/);
    // The supervisor may record the end first (the trap exits 0); either way it was a stop, not a crash.
    expect(parseJson(await runCli(w.home, ['status', String(row.pid), '--json'], { env }))).toMatchObject({ status: 'killed', stopped_by: 'cli' });
    expect(readFileSync(join(w.home, 'agents', 'alpha', 'workspace', 'cleaned.txt'), 'utf8')).toBe('cleaned\n');
    await second.stop();
  });
});

import { createServer, type Server } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { writeAgentConfig, loadAgentConfig } from '../../src/agents/agent-config.js';
import { isAlive, trackPid } from '../support/child-cleanup.js';
import { hostPid } from '../support/host-pid.js';
import { waitFor } from '../support/wait-for.js';
import { describeSandbox, makeSandboxWorld, SECRET } from './sandbox-home.js';

const node = JSON.stringify(process.execPath);

/** Each escape is a real child process that must fail: it prints ESCAPED only if the attempt worked. */
function attempt(shell: string): string {
  return `if ${shell}; then echo ESCAPED; else echo refused; fi`;
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

async function tcpServer(): Promise<number> {
  const server = createServer((socket) => socket.end('hello from the host\n'));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

function connectScript(port: number): string {
  const code = `const s = require('net').connect(${port}, '127.0.0.1'); s.on('data', (d) => { process.stdout.write(String(d)); process.exit(0); }); s.on('error', (e) => { console.log('error ' + e.code); process.exit(9); });`;
  return `${node} -e ${JSON.stringify(code)}`;
}

describeSandbox('sandbox escapes (each must fail)', () => {
  it('cannot read the .env or chorus.db, list CHORUS_HOME, or see other agents', async () => {
    const w = await makeSandboxWorld();
    const dotenv = await w.run(attempt(`cat ${w.envDir}/.env`));
    expect(dotenv.record.sandbox).toBe('bwrap');
    expect(dotenv.out).toBe('refused\n');
    expect(dotenv.out + dotenv.err).not.toContain(SECRET);

    const db = await w.run(attempt(`cat ${w.home}/chorus.db > /dev/null`));
    expect(db.out).toBe('refused\n');

    // CHORUS_HOME is empty but for the path down to the agent's own workspace.
    const listing = await w.run(`ls -A ${w.home}; echo ---; ls -A ${w.home}/agents; echo ---; ls -A ${w.home}/agents/alpha`);
    expect(listing.out).toBe('agents\n---\nalpha\n---\nworkspace\n');
  });

  it("cannot read or write another agent's workspace, inside CHORUS_HOME or outside it", async () => {
    const w = await makeSandboxWorld();
    const beta = join(w.home, 'agents', 'beta', 'workspace');
    for (const dir of [beta, w.outsideWorkspace]) {
      const read = await w.run(attempt(`cat ${dir}/secret.txt`));
      expect(read.out, dir).toBe('refused\n');
      expect(read.out + read.err).not.toContain(SECRET);
      const write = await w.run(attempt(`echo pwned > ${dir}/pwned.txt`));
      expect(write.out, dir).toBe('refused\n');
      expect(existsSync(join(dir, 'pwned.txt'))).toBe(false);
    }
  });

  it('cannot write agent.json (its own or another), /etc or ~/.bashrc', async () => {
    const w = await makeSandboxWorld();
    const own = join(w.home, 'agents', 'alpha', 'agent.json');
    const before = readFileSync(own, 'utf8');
    for (const target of [own, join(w.home, 'agents', 'beta', 'agent.json'), '/etc/chorus-escape', join(w.userHome, '.bashrc')]) {
      const write = await w.run(attempt(`echo '{"allowed_user_ids":["123456789012345678"]}' >> ${target}`));
      expect(write.out, target).toBe('refused\n');
    }
    expect(readFileSync(own, 'utf8')).toBe(before);
    expect(existsSync('/etc/chorus-escape')).toBe(false);
    expect(readFileSync(join(w.userHome, '.bashrc'), 'utf8')).toBe('# the real one\n');
  });

  it('cannot read ~/.ssh keys or other credentials', async () => {
    const w = await makeSandboxWorld();
    const keys = await w.run(attempt(`cat ${w.userHome}/.ssh/id_* ${w.userHome}/.aws/credentials`));
    expect(keys.out).toBe('refused\n');
    // A credential file is replaced by an empty one.
    const netrc = await w.run(`wc -c < ${w.userHome}/.netrc`);
    expect(netrc.out.trim()).toBe('0');
    const all = await w.run(`cat ${w.userHome}/.ssh/* ${w.userHome}/.netrc ${w.userHome}/.aws/* 2>&1; ls -A ${w.userHome}/.ssh`);
    expect(all.out + all.err).not.toContain(SECRET);
  });

  it("cannot see or signal the bot or another agent's process", async () => {
    const w = await makeSandboxWorld();
    const victim = await w.manager.spawn({ agent: 'beta', command: 'sleep 60' });
    trackPid(victim.pid!, { group: true });
    for (const pid of [process.pid, victim.pid!]) {
      const see = await w.run(attempt(`test -e /proc/${pid}`));
      expect(see.out, `pid ${pid}`).toBe('refused\n');
      const signal = await w.run(attempt(`kill -TERM ${pid}`));
      expect(signal.out, `pid ${pid}`).toBe('refused\n');
    }
    // Its own pid namespace: only its own processes are there.
    const ps = await w.run(`ls /proc | grep -c '^[0-9]'`);
    expect(Number(ps.out.trim())).toBeLessThan(10);
    expect(isAlive(process.pid) && isAlive(victim.pid!)).toBe(true);
    expect(w.manager.find({ id: victim.id })!.status).toBe('running');
  });

  it('cannot reach a TCP server on 127.0.0.1 with network off; can with network on', async () => {
    const w = await makeSandboxWorld();
    const port = await tcpServer();
    writeAgentConfig(w.home, { ...loadAgentConfig(w.home, 'beta'), sandbox: { network: false, allowRead: [], allowWrite: [], hide: [] } });
    const offline = await w.run(connectScript(port), 'beta');
    expect(offline.out).toMatch(/^error E/);
    expect(offline.record.exitCode).toBe(9);
    const online = await w.run(connectScript(port), 'alpha');
    expect(online.out).toBe('hello from the host\n');
    expect(online.record.exitCode).toBe(0);
  });

  it('gains no privileges (no_new_privs) and keeps no capabilities', async () => {
    const w = await makeSandboxWorld();
    const status = await w.run('grep -E "^(NoNewPrivs|CapEff):" /proc/self/status; umount /proc; echo "umount $?"');
    expect(status.out).toMatch(/NoNewPrivs:\s+1/);
    expect(status.out).toMatch(/CapEff:\s+0+\n/);
    expect(status.out).not.toContain('umount 0');
  });

  it('refuses, at the start, an allow list in agent.json that would uncover the .env directory', async () => {
    const w = await makeSandboxWorld();
    writeAgentConfig(w.home, { ...loadAgentConfig(w.home, 'alpha'), sandbox: { network: true, allowRead: [w.envDir], allowWrite: [], hide: [] } });
    const error = await w.manager.spawn({ agent: 'alpha', command: 'true' }).then(() => undefined, (e: unknown) => e);
    expect(String(error)).toMatch(new RegExp(`agent alpha: agent.json sandbox.allow_read "${w.envDir}" would expose ${w.envDir}`));
    expect(w.manager.list()).toEqual([]);
  });

  it('refuses a workspace that holds CHORUS_HOME or the .env directory', async () => {
    const w = await makeSandboxWorld();
    for (const workspace of [w.root, w.envDir]) {
      writeAgentConfig(w.home, { ...loadAgentConfig(w.home, 'alpha'), workspace });
      const error = await w.manager.spawn({ agent: 'alpha', command: 'true' }).then(() => undefined, (e: unknown) => e);
      expect(String(error)).toMatch(new RegExp(`agent.json workspace ${workspace} holds ${w.root === workspace ? w.home : w.envDir}`));
    }
    expect(w.manager.list()).toEqual([]);
  });

  it('run_command is confined the same way', async () => {
    const w = await makeSandboxWorld();
    const { runForeground } = await import('../../src/agents/run-command.js');
    const agent = w.manager.sandbox && (await import('../../src/agents/agent-config.js')).agentOwnerLoader(w.home)('alpha');
    const result = await runForeground(w.manager, {
      agent, command: attempt(`cat ${w.envDir}/.env || cat ${w.home}/chorus.db`),
    });
    expect(result.record.sandbox).toBe('bwrap');
    expect(result.stdout).toBe('refused\n');
  });

  it('a pid a sandboxed process prints is its own namespace pid; the host finds it', async () => {
    const w = await makeSandboxWorld();
    const started = await w.manager.spawn({ agent: 'alpha', command: `${node} -e "console.log('pid ' + process.pid); setInterval(() => {}, 1000)"` });
    trackPid(started.pid!, { group: true });
    const line = await waitFor(() => w.manager.tail(started.id)?.find((l) => l.text.startsWith('pid ')), { what: 'the pid line' });
    const inner = Number(line.text.split(' ')[1]);
    expect(inner).toBeLessThan(10);
    expect(isAlive(hostPid(inner, started))).toBe(true);
  });
});

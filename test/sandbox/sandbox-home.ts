import { chmodSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe } from 'vitest';
import { writeAgentConfig, loadAgentConfig } from '../../src/agents/agent-config.js';
import { findBwrap, probeSandbox } from '../../src/process/sandbox.js';
import type { ProcessManager } from '../../src/process/process-manager.js';
import type { ProcessRecord } from '../../src/store/process-repo.js';
import { startManager } from '../support/manager.js';
import { removeHome } from '../support/temp-home.js';
import { waitFor } from '../support/wait-for.js';

const probe = probeSandbox(findBwrap());

/**
 * The sandbox tests run wherever bwrap works. Under CI they must run: a missing or broken bwrap fails the run
 * instead of skipping it.
 */
export function describeSandbox(name: string, body: () => void): void {
  if (!probe.isAvailable && process.env.CI) {
    throw new Error(`CI is set but the sandbox cannot run here: ${probe.problem}`);
  }
  describe.skipIf(!probe.isAvailable)(name, body);
}

const roots: string[] = [];

afterEach(() => {
  for (const root of roots.splice(0)) removeHome(root);
});

export const SECRET = 'sk-sandbox-test-secret';

export interface SandboxWorld {
  /** Outside /tmp, so that what is hidden is hidden by the sandbox, not by the private /tmp. */
  root: string;
  home: string;
  /** Where Chorus read its .env from. */
  envDir: string;
  /** The user's home, with fake credentials. */
  userHome: string;
  /** Another agent's workspace outside CHORUS_HOME. */
  outsideWorkspace: string;
  manager: ProcessManager;
  /** Runs `command` as `agent` until it ends; the row and what it printed. */
  run(command: string, agent?: string): Promise<{ record: ProcessRecord; out: string; err: string }>;
}

function makeRoot(): string {
  // /var/tmp is world-writable like /tmp, so this works as an unprivileged user too.
  const root = realpathSync(mkdtempSync('/var/tmp/chorus-sandbox-'));
  chmodSync(root, 0o755);
  roots.push(root);
  return root;
}

/**
 * A home with agents alpha (the one that tries to escape), beta (workspace inside the home, with a secret) and gamma
 * (workspace outside it, with a secret), a .env directory and a user home with credentials, and a manager that
 * refuses to start anything unconfined.
 */
export async function makeSandboxWorld(options: { env?: NodeJS.ProcessEnv } = {}): Promise<SandboxWorld> {
  const root = makeRoot();
  const home = join(root, 'home');
  const envDir = join(root, 'bot');
  const userHome = join(root, 'user');
  const outsideWorkspace = join(root, 'gamma-workspace');
  for (const dir of [home, envDir, join(userHome, '.ssh'), join(userHome, '.aws'), outsideWorkspace]) mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(envDir, '.env'), `DISCORD_TOKEN=${SECRET}\n`);
  writeFileSync(join(userHome, '.ssh', 'id_ed25519'), `-----BEGIN OPENSSH PRIVATE KEY-----\n${SECRET}\n`);
  writeFileSync(join(userHome, '.ssh', 'id_rsa'), `${SECRET}\n`);
  writeFileSync(join(userHome, '.aws', 'credentials'), `aws_secret_access_key=${SECRET}\n`);
  writeFileSync(join(userHome, '.netrc'), `machine example.com password ${SECRET}\n`);
  writeFileSync(join(userHome, '.bashrc'), '# the real one\n');
  writeFileSync(join(outsideWorkspace, 'secret.txt'), `${SECRET}\n`);

  writeAgentConfig(home, loadAgentConfig(home, 'alpha'));
  writeAgentConfig(home, loadAgentConfig(home, 'beta'));
  writeAgentConfig(home, { ...loadAgentConfig(home, 'gamma'), workspace: outsideWorkspace });
  const betaWorkspace = join(home, 'agents', 'beta', 'workspace');
  mkdirSync(betaWorkspace, { recursive: true });
  writeFileSync(join(betaWorkspace, 'secret.txt'), `${SECRET}\n`);

  const { manager } = await startManager({
    home,
    env: { PATH: process.env.PATH, HOME: userHome, ...options.env },
    sandbox: { mode: 'required', protectedDirs: [envDir, join(envDir, '.env')] },
  });
  const run = async (command: string, agent = 'alpha') => {
    const started = await manager.spawn({ agent, command });
    const record = await waitFor(() => {
      const row = manager.find({ id: started.id })!;
      return row.status !== 'running' && row;
    }, { timeoutMs: 20_000, what: `${command} to end` });
    return { record, out: readFileSync(record.stdoutLog, 'utf8'), err: readFileSync(record.stderrLog, 'utf8') };
  };
  return { root, home, envDir, userHome, outsideWorkspace, manager, run };
}

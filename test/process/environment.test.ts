import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.js';
import { buildChildEnv } from '../../src/process/environment.js';
import type { ProcessRecord } from '../../src/store/process-repo.js';
import { startManager } from '../support/manager.js';
import { nextEvent } from '../support/wait-for.js';
import { fixture } from '../support/fixtures.js';

const command = [process.execPath, fixture('prints-env.mjs')].map((w) => JSON.stringify(w)).join(' ');

const SECRETS = {
  DISCORD_TOKEN: 'discord-token-value',
  LLM_API_KEY: 'sk-llm-key-value',
  MY_SECRET: 'my-secret-value',
  GITHUB_TOKEN: 'ghp_token_value',
  DB_PASSWORD: 'db-password-value',
  AWS_SECRET_ACCESS_KEY: 'aws-secret-value',
};

function writeAgentJson(home: string, name: string, json: unknown): void {
  const dir = join(home, 'agents', name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'agent.json'), JSON.stringify(json));
}

describe('child environment', () => {
  it('gets the allow-list, PYTHONUNBUFFERED and the agent\'s variables, and no secret', async () => {
    const home = process.env.HOME ?? '/root';
    const { manager, home: chorusHome } = await startManager({
      env: { ...SECRETS, PATH: process.env.PATH, HOME: home, LANG: 'C.UTF-8', NOT_ALLOWED: 'leak', NODE_OPTIONS: '--inspect' },
    });
    writeAgentJson(chorusHome, 'demo', { env: { MY_SETTING: 'on', FEATURE_FLAGS: 'a,b' } });
    const exited = nextEvent<[ProcessRecord]>(manager, 'exited');

    await manager.spawn({ agent: 'demo', command });
    const [ended] = await exited;
    expect(ended.exitCode).toBe(0);
    const childEnv = JSON.parse(readFileSync(ended.stdoutLog, 'utf8')) as Record<string, string>;

    for (const name of Object.keys(SECRETS)) expect(childEnv).not.toHaveProperty(name);
    const printed = JSON.stringify(childEnv);
    for (const value of Object.values(SECRETS)) expect(printed).not.toContain(value);
    expect(Object.keys(childEnv).filter((name) => /TOKEN|SECRET|KEY|PASSWORD/i.test(name))).toEqual([]);
    expect(childEnv).not.toHaveProperty('NOT_ALLOWED');
    expect(childEnv).not.toHaveProperty('NODE_OPTIONS');
    expect(childEnv).toMatchObject({
      PATH: process.env.PATH,
      HOME: home,
      LANG: 'C.UTF-8',
      PYTHONUNBUFFERED: '1',
      MY_SETTING: 'on',
      FEATURE_FLAGS: 'a,b',
      CHORUS_AGENT: 'demo',
      CHORUS_PROCESS_ID: String(ended.id),
    });
  });

  it('refuses an agent.json that would hand a secret to its children, before anything starts', async () => {
    const { manager, home } = await startManager({ env: { PATH: process.env.PATH } });
    writeAgentJson(home, 'demo', { env: { DEPLOY_TOKEN: 'x' } });

    const error = await manager.spawn({ agent: 'demo', command }).then(() => undefined, (e: unknown) => e);

    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('AGENT_CONFIG_INVALID');
    expect((error as AppError).message).toContain('env.DEPLOY_TOKEN');
    expect(manager.list()).toEqual([]);
  });

  it('reads the parent environment afresh each time: a change to the same object shows in the next child', () => {
    const parent: NodeJS.ProcessEnv = { PATH: '/bin', LC_ALL: 'C', API_TOKEN: 'x', OTHER: 'y' };
    expect(buildChildEnv(parent, {}, { M: '1' })).toEqual({ PATH: '/bin', LC_ALL: 'C', PYTHONUNBUFFERED: '1', M: '1' });
    parent.LC_ALL = 'C.UTF-8';
    parent.TZ = 'UTC';
    delete parent.PATH;
    parent.LC_SECRET = 'no';
    expect(buildChildEnv(parent, { MINE: 'z' }, {})).toEqual({ PATH: '/usr/local/bin:/usr/bin:/bin', LC_ALL: 'C.UTF-8', TZ: 'UTC', MINE: 'z', PYTHONUNBUFFERED: '1' });
  });

  it('reads process.env itself afresh', () => {
    process.env.LC_CHORUS_TEST = 'one';
    try {
      expect(buildChildEnv(process.env, {}, {}).LC_CHORUS_TEST).toBe('one');
      process.env.LC_CHORUS_TEST = 'two';
      expect(buildChildEnv(process.env, {}, {}).LC_CHORUS_TEST).toBe('two');
    } finally {
      delete process.env.LC_CHORUS_TEST;
    }
    expect(buildChildEnv(process.env, {}, {})).not.toHaveProperty('LC_CHORUS_TEST');
  });
});

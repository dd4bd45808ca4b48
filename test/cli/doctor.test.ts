import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { parseJson, runCli } from '../support/cli.js';
import { FakeDiscord } from '../support/fake-discord.js';
import { FakeLlmServer } from '../support/fake-llm-server.js';
import { makeTempHome } from '../support/temp-home.js';
import type { DoctorContext } from '../../src/doctor/check.js';
import { makeSpawnerCheck } from '../../src/doctor/spawner-check.js';
import { Forker } from '../../src/process/forker.js';

// CI builds the native forker (.ci/run); elsewhere it is there when a C compiler was.
const isNativeBuilt = Forker.findNative() !== undefined || Boolean(process.env.CI);

interface Report {
  ok: boolean;
  checks: Array<{ name: string; status: 'ok' | 'warn' | 'fail' | 'skip'; detail: string; fix?: string }>;
}

const servers: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

async function startServers(llmOptions: ConstructorParameters<typeof Object>[0] = {}): Promise<{ discord: FakeDiscord; llm: FakeLlmServer }> {
  const discord = await FakeDiscord.start();
  const llm = await FakeLlmServer.start({ expectedKey: 'llm-key', ...(llmOptions as object) });
  servers.push(discord, llm);
  return { discord, llm };
}

/** A home as a first start leaves it: created 0700, with its database. */
async function usedHome(): Promise<string> {
  const home = makeTempHome();
  expect((await runCli(home, ['ps'])).code).toBe(0);
  return home;
}

function envFor(discord: FakeDiscord, llm: FakeLlmServer): NodeJS.ProcessEnv {
  return {
    DISCORD_TOKEN: discord.token, DISCORD_API_URL: discord.apiUrl, DISCORD_GUILD_ID: discord.guildId,
    LLM_BASE_URL: llm.baseUrl, LLM_API_KEY: 'llm-key', LLM_MODEL: 'gpt-4o-mini',
  };
}

async function doctor(home: string, env: NodeJS.ProcessEnv): Promise<{ code: number; report: Report }> {
  const result = await runCli(home, ['doctor', '--json'], { env });
  return { code: result.code, report: parseJson<Report>(result) };
}

function check(report: Report, name: string): Report['checks'][number] {
  const found = report.checks.find((c) => c.name === name);
  if (!found) throw new Error(`no check ${name} in ${JSON.stringify(report)}`);
  return found;
}

describe('chorus doctor', () => {
  it('passes on a fresh home in console mode (nothing configured), exit 0', async () => {
    const parent = makeTempHome();
    const result = await runCli(parent, ['doctor'], { env: { CHORUS_HOME: join(parent, 'not-yet') } });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^CHECK\s+STATUS\s+DETAIL$/m);
    expect(result.stdout).toMatch(/^discord token\s+skip\s+DISCORD_TOKEN is not set/m);
    expect(result.stdout).toContain('all checks passed');
  });

  it('passes against a working Discord and LLM endpoint, every check ok', async () => {
    const { discord, llm } = await startServers();
    const home = await usedHome();
    const { code, report } = await doctor(home, envFor(discord, llm));
    expect(report.checks.map((c) => c.name)).toEqual(['node', '/proc', 'CHORUS_HOME', 'database', 'supervisor', 'disk', 'sandbox', 'spawner', 'discord token', 'discord guild', 'llm endpoint']);
    // The spawner warns where the native forker could not be built (no C compiler); CI builds it.
    expect(report.checks.filter((c) => c.status !== 'ok' && (isNativeBuilt || c.name !== 'spawner'))).toEqual([]);
    expect(report.ok).toBe(true);
    expect(code).toBe(0);
    expect(check(report, 'discord token').detail).toMatch(/accepted: bot chorus/);
    expect(check(report, 'discord guild').detail).toMatch(/reachable: Chorus Test Guild/);
    expect(check(report, 'database').detail).toMatch(/quick_check ok, schema version \d+/);
    expect(check(report, 'llm endpoint').detail).toMatch(/gpt-4o-mini is listed/);
    expect(check(report, 'sandbox').detail).toMatch(/bwrap works: agent processes run confined \(CHORUS_SANDBOX=auto\)/);
    if (isNativeBuilt) {
      expect(check(report, 'spawner').detail).toMatch(/^the native forker \(\/\S+\/dist\/native\/chorus-forker\) starts processes; the fallback is the perl forker \(\/\S*perl\)$/);
    }
  });

  it.runIf(isNativeBuilt)('names Node\'s spawn as the fallback when no perl is on PATH, the native forker starting processes', async () => {
    const { report, code } = await doctor(await usedHome(), { PATH: '/nonexistent' });
    expect(check(report, 'spawner')).toMatchObject({ status: 'ok', detail: expect.stringMatching(/starts processes; the fallback is Node's spawn \(perl was not found on PATH\)$/) });
    expect(code).toBe(0);
  });

  it('warns, naming the fix, when the native forker was not built, and when perl is missing as well', async () => {
    const perlOnly = await makeSpawnerCheck({ native: '/nonexistent/chorus-forker' }).run({} as DoctorContext);
    expect(perlOnly).toEqual({
      status: 'warn',
      detail: expect.stringMatching(/^the native forker was not built \(\/nonexistent\/chorus-forker\): processes are started by the perl forker \(\/\S*perl\) and the sh shim, about 2 ms more CPU a spawn$/),
      fix: 'install a C compiler (Debian/Ubuntu: apt-get install gcc), then run npm run build in the checkout',
    });
    const neither = await makeSpawnerCheck({ native: false, path: '/nonexistent' }).run({} as DoctorContext);
    expect(neither).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/^the native forker was not built \(\S+\) and perl was not found on PATH: processes are started with Node's spawn/),
      fix: expect.stringMatching(/apt-get install gcc.*; or install perl .*apt-get install perl-base/),
    });
  });

  it('warns when the native forker cannot run, naming what starts processes instead', async () => {
    const broken = join(makeTempHome(), 'chorus-forker');
    writeFileSync(broken, '#!/bin/sh\nexit 3\n', { mode: 0o755 });
    expect(await makeSpawnerCheck({ native: broken }).run({} as DoctorContext)).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/^the native forker \(\S+\) cannot run \(.*the native forker exited at start \(code 3\)\): processes are started by the perl forker/),
    });
  });

  it('reports the sandbox: a warning when bwrap is missing or it is off, a failure when it is required', async () => {
    const home = await usedHome();
    // A PATH without bwrap on it; the CLI itself runs from process.execPath.
    const noBwrap = { PATH: '/nonexistent' };
    const auto = await doctor(home, noBwrap);
    expect(check(auto.report, 'sandbox')).toMatchObject({ status: 'warn', detail: expect.stringMatching(/run unconfined/), fix: expect.stringMatching(/apt-get install bubblewrap/) });
    expect(auto.code).toBe(0);
    const required = await doctor(home, { ...noBwrap, CHORUS_SANDBOX: 'required' });
    expect(check(required.report, 'sandbox')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/every spawn will be refused/), fix: expect.stringMatching(/apt-get install bubblewrap/) });
    expect(required.code).not.toBe(0);
    const off = await doctor(home, { CHORUS_SANDBOX: 'off' });
    expect(check(off.report, 'sandbox')).toMatchObject({ status: 'warn', fix: expect.stringMatching(/CHORUS_SANDBOX=auto/) });
  });

  it('falls back to a one-token completion when the endpoint has no GET /models', async () => {
    const { discord, llm } = await startServers({ models: null });
    llm.enqueue({ content: 'p' });
    const { code, report } = await doctor(await usedHome(), envFor(discord, llm));
    expect(check(report, 'llm endpoint')).toMatchObject({ status: 'ok', detail: expect.stringMatching(/answers a completion with gpt-4o-mini \(GET \/models: 404\)/) });
    expect(code).toBe(0);
  });

  it.each([
    ['a rejected DISCORD_TOKEN', 'discord token', (env: NodeJS.ProcessEnv) => ({ ...env, DISCORD_TOKEN: 'wrong-token' }), /Discord rejected the token \(401/, /reset the token under Bot/],
    ['a guild the bot is not in', 'discord guild', (env: NodeJS.ProcessEnv) => ({ ...env, DISCORD_GUILD_ID: '199999999999999999' }), /guild 199999999999999999 answered 404 Unknown Guild/, /invite the bot/],
    ['an unreachable Discord', 'discord token', (env: NodeJS.ProcessEnv) => ({ ...env, DISCORD_API_URL: 'http://127.0.0.1:9/api' }), /cannot reach Discord at http:\/\/127\.0\.0\.1:9\/api/, /check the network/],
    ['a refused LLM key', 'llm endpoint', (env: NodeJS.ProcessEnv) => ({ ...env, LLM_API_KEY: 'bad-key' }), /the key was refused \(401 Incorrect API key provided\)/, /set LLM_API_KEY/],
    ['an LLM endpoint that is down', 'llm endpoint', (env: NodeJS.ProcessEnv) => ({ ...env, LLM_BASE_URL: 'http://127.0.0.1:9/v1' }), /cannot reach http:\/\/127\.0\.0\.1:9\/v1/, /check LLM_BASE_URL/],
  ])('fails on %s and names the fix', async (_what, name, change, detail, fix) => {
    const { discord, llm } = await startServers();
    const { code, report } = await doctor(await usedHome(), change(envFor(discord, llm)));
    expect(check(report, name)).toMatchObject({ status: 'fail', detail: expect.stringMatching(detail), fix: expect.stringMatching(fix) });
    expect(report.ok).toBe(false);
    expect(code).toBe(1);
  });

  it('warns when the endpoint does not list LLM_MODEL, naming models it has', async () => {
    const { discord, llm } = await startServers({ models: ['llama3', 'qwen2'] });
    const { code, report } = await doctor(await usedHome(), envFor(discord, llm));
    expect(check(report, 'llm endpoint')).toMatchObject({ status: 'warn', fix: expect.stringMatching(/set LLM_MODEL to one of llama3, qwen2/) });
    expect(code).toBe(0);
  });

  it('fails on a home or database readable by others, with the chmod that fixes it', async () => {
    const home = await usedHome();
    chmodSync(home, 0o755);
    let { code, report } = await doctor(home, {});
    expect(check(report, 'CHORUS_HOME')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/mode 0755/), fix: `chmod 700 ${home}` });
    expect(code).toBe(1);
    chmodSync(home, 0o700);
    chmodSync(join(home, 'chorus.db'), 0o644);
    ({ code, report } = await doctor(home, {}));
    expect(check(report, 'CHORUS_HOME')).toMatchObject({ status: 'fail', fix: expect.stringContaining(`chmod 600 ${join(home, 'chorus.db')}`) });
    expect(code).toBe(1);
  });

  it('finds a process log readable by others in its bucket and in a run directory from before the buckets', async () => {
    const home = await usedHome();
    const spawned = await runCli(home, ['spawn', '--agent', 'demo', '--json', '--', 'true']);
    expect(spawned.code).toBe(0);
    const { stdout_log: stdoutLog } = parseJson<{ stdout_log: string }>(spawned);
    expect(stdoutLog).toMatch(/\/agents\/demo\/processes\/\d{8}-\d{4}\/\d+-[0-9a-z]+\/stdout\.log$/);
    chmodSync(stdoutLog, 0o644);
    const old = join(home, 'agents', 'demo', 'processes', '7-lq2x0f');
    mkdirSync(old, { mode: 0o700 });
    writeFileSync(join(old, 'stderr.log'), '', { mode: 0o604 });
    const { code, report } = await doctor(home, {});
    expect(check(report, 'CHORUS_HOME')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/^2 file\(s\) readable by others/) });
    expect(check(report, 'CHORUS_HOME').fix).toContain(stdoutLog);
    expect(check(report, 'CHORUS_HOME').fix).toContain(join(old, 'stderr.log'));
    expect(code).toBe(1);
  });

  it('fails on a database from a newer Chorus and on a damaged one', async () => {
    const home = await usedHome();
    const path = join(home, 'chorus.db');
    const db = new Database(path);
    db.pragma('user_version = 999');
    db.close();
    let { code, report } = await doctor(home, {});
    expect(check(report, 'database')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/schema version 999 is newer/), fix: expect.stringMatching(/upgrade Chorus/) });
    expect(code).toBe(1);

    const damaged = makeTempHome();
    chmodSync(damaged, 0o700);
    writeFileSync(join(damaged, 'chorus.db'), Buffer.concat([Buffer.from('SQLite format 3\0'), Buffer.alloc(4096, 7)]), { mode: 0o600 });
    ({ code, report } = await doctor(damaged, {}));
    expect(check(report, 'database')).toMatchObject({ status: 'fail', fix: expect.stringMatching(/recover it|empty home/) });
    expect(code).toBe(1);
  });

  it('names the supervisor that holds the lock', async () => {
    const home = await usedHome();
    const db = new Database(join(home, 'chorus.db'));
    const stat = (await import('../../src/process/proc-fs.js')).readStat(process.pid)!;
    const bootId = (await import('../../src/process/proc-fs.js')).readBootId();
    db.prepare('INSERT INTO supervisor (id, pid, start_ticks, boot_id, started_at) VALUES (1, ?, ?, ?, ?)').run(process.pid, stat.startTicks, bootId, '2026-01-01T00:00:00.000Z');
    db.close();
    const { report } = await doctor(home, {});
    expect(check(report, 'supervisor')).toMatchObject({ status: 'ok', detail: `pid ${process.pid} holds the lock since 2026-01-01T00:00:00.000Z` });
  });

  it('prints each failing check with its fix in the table', async () => {
    const home = await usedHome();
    mkdirSync(join(home, 'agents', 'a'), { recursive: true });
    chmodSync(home, 0o750);
    const result = await runCli(home, ['doctor']);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^CHORUS_HOME\s+FAIL\s+.*mode 0750\n\s+fix: chmod 700 /m);
    expect(result.stdout).toMatch(/1 check\(s\) failed/);
  });
});

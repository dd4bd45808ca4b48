// Bad values for every key of .env.example: loadConfig's one-line error names the key, and a real `bot`/`supervise` start-up stops with it, writing nothing.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { isAppError } from '../src/errors.js';
import { CHORUS_BIN } from './support/cli.js';

interface BadValue {
  key: string;
  value: string | (() => string);
  /** What follows "Invalid configuration: <key> must be". */
  says: RegExp;
  /** A secret: the message must not repeat it. */
  isSecret?: boolean;
}

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'chorus-config-bad-')));
  dirs.push(dir);
  return dir;
}

/** A regular file, to point CHORUS_HOME at (or below). */
const aFile = () => {
  const path = join(tempDir(), 'not-a-dir');
  writeFileSync(path, 'a file\n');
  return path;
};

const CASES: BadValue[] = [
  { key: 'DISCORD_TOKEN', value: 'Bot MTIz.abc.def', says: /^the bot token alone, without spaces, quotes or a "Bot " prefix \(the value is not shown\)$/, isSecret: true },
  { key: 'DISCORD_TOKEN', value: '"MTIz.abc.def"', says: /^the bot token alone/, isSecret: true },
  { key: 'DISCORD_TOKEN', value: 'MTIz.abc\ndef', says: /^the bot token alone/, isSecret: true },
  { key: 'DISCORD_GUILD_ID', value: 'my-server', says: /^a Discord id \(17-20 digits\) \(got "my-server"\)$/ },
  { key: 'DISCORD_GUILD_ID', value: '12345', says: /^a Discord id \(17-20 digits\) \(got "12345"\)$/ },
  { key: 'DISCORD_API_URL', value: 'not a url', says: /^an http\(s\) URL \(got "not a url"\)$/ },
  { key: 'DISCORD_API_URL', value: 'ftp://127.0.0.1/api', says: /^an http\(s\) URL \(got "ftp:\/\/127\.0\.0\.1\/api"\)$/ },
  { key: 'DISCORD_API_URL', value: 'discord.com/api', says: /^an http\(s\) URL/ },
  { key: 'CHORUS_OWNER_IDS', value: '123456789012345678, abc', says: /^a comma-separated list of Discord ids \(17-20 digits\) \(got "abc"\)$/ },
  { key: 'CHORUS_OWNER_IDS', value: 'me', says: /^a comma-separated list of Discord ids/ },
  { key: 'DISCORD_READY_TIMEOUT_SECONDS', value: '0', says: /^an integer from 1 to 3600 \(got "0"\)$/ },
  { key: 'DISCORD_READY_TIMEOUT_SECONDS', value: '1m', says: /^an integer from 1 to 3600 \(got "1m"\)$/ },
  { key: 'CHORUS_REGISTER_COMMANDS', value: 'maybe', says: /^true or false \(got "maybe"\)$/ },
  { key: 'CHORUS_REGISTER_COMMANDS', value: 'yes please', says: /^true or false \(got "yes please"\)$/ },
  { key: 'LLM_BASE_URL', value: 'localhost:11434/v1', says: /^an http\(s\) URL \(got "localhost:11434\/v1"\)$/ },
  { key: 'LLM_BASE_URL', value: 'file:///etc/passwd', says: /^an http\(s\) URL/ },
  { key: 'LLM_API_KEY', value: 'Bearer sk-test-123', says: /^the key alone, without spaces, quotes or a "Bearer " prefix \(the value is not shown\)$/, isSecret: true },
  { key: 'LLM_API_KEY', value: 'sk-test-ключ', says: /^the key alone/, isSecret: true },
  { key: 'LLM_MODEL', value: 'gpt 4o mini', says: /^a model name without spaces or quotes, at most 200 characters, like gpt-4o-mini \(got "gpt 4o mini"\)$/ },
  { key: 'LLM_MODEL', value: 'm'.repeat(201), says: /^a model name without spaces or quotes, at most 200 characters/ },
  { key: 'LLM_TIMEOUT_MS', value: '500', says: /^an integer from 1000 to 3600000 \(got "500"\)$/ },
  { key: 'LLM_TIMEOUT_MS', value: '2m', says: /^an integer from 1000 to 3600000 \(got "2m"\)$/ },
  { key: 'LLM_TIMEOUT_MS', value: '99999999', says: /^an integer from 1000 to 3600000/ },
  { key: 'CHORUS_HOME', value: aFile, says: /^a directory path \(.*\/not-a-dir is a file\) \(got ".*\/not-a-dir"\)$/ },
  { key: 'CHORUS_HOME', value: () => join(aFile(), 'home'), says: /^a directory path \(.*\/not-a-dir is a file\) \(got ".*\/not-a-dir\/home"\)$/ },
  { key: 'LOG_LEVEL', value: 'loud', says: /^one of fatal, error, warn, info, debug, trace, silent \(got "loud"\)$/ },
  { key: 'LOG_LEVEL', value: '3', says: /^one of fatal, error/ },
  { key: 'CHORUS_KILL_GRACE_MS', value: '-1', says: /^an integer from 0 to 600000 \(got "-1"\)$/ },
  { key: 'CHORUS_KILL_GRACE_MS', value: '1.5', says: /^an integer from 0 to 600000 \(got "1\.5"\)$/ },
  { key: 'CHORUS_KILL_GRACE_MS', value: '9999999', says: /^an integer from 0 to 600000 \(got "9999999"\)$/ },
  { key: 'CHORUS_KILL_GRACE_MS', value: '5s', says: /^an integer from 0 to 600000 \(got "5s"\)$/ },
  { key: 'CHORUS_LOG_CAP', value: 'big', says: /^a size from 4K to 1024G, like 64M \(got "big"\)$/ },
  { key: 'CHORUS_LOG_CAP', value: '10', says: /^a size from 4K to 1024G, like 64M \(got "10"\)$/ },
  { key: 'CHORUS_LOG_CAP', value: '2048G', says: /^a size from 4K to 1024G/ },
  { key: 'CHORUS_LOG_CAP', value: '-64M', says: /^a size from 4K to 1024G/ },
  { key: 'CHORUS_SANDBOX', value: 'maybe', says: /^one of auto, required, off \(got "maybe"\)$/ },
  { key: 'CHORUS_SANDBOX', value: 'bwrap', says: /^one of auto, required, off \(got "bwrap"\)$/ },
];

function keysOfEnvExample(): string[] {
  const text = readFileSync(join(import.meta.dirname, '..', '.env.example'), 'utf8');
  return [...text.matchAll(/^([A-Z_]+)=/gm)].map((match) => match[1]!);
}

describe('loadConfig refuses a bad value of every key with one line naming it', () => {
  it('covers every key of .env.example', () => {
    expect(new Set(CASES.map((c) => c.key))).toEqual(new Set(keysOfEnvExample()));
  });

  it.for(CASES.map((c, i) => ({ ...c, label: `${c.key}=${typeof c.value === 'string' ? JSON.stringify(c.value).slice(0, 40) : '(path)'} #${i}` })))('$label', (c) => {
    const value = typeof c.value === 'function' ? c.value() : c.value;
    let error: unknown;
    try {
      loadConfig({ [c.key]: value });
    } catch (caught) {
      error = caught;
    }
    expect(isAppError(error, 'CONFIG_INVALID'), String(error)).toBe(true);
    const message = (error as Error).message;
    expect(message).not.toContain('\n');
    expect(message.startsWith(`Invalid configuration: ${c.key} must be `), message).toBe(true);
    expect(message.slice(`Invalid configuration: ${c.key} must be `.length)).toMatch(c.says);
    if (c.isSecret) expect(message).not.toContain(value.trim().split(/\s/).at(-1));
  });
});

interface StartUp {
  name: string;
  verb: 'bot' | 'supervise';
  env: NodeJS.ProcessEnv | ((dir: string) => NodeJS.ProcessEnv);
  /** A .env file in the working directory, as a user would write one. */
  dotenv?: string;
  says: RegExp;
  /** Text that must not appear on stderr (a secret). */
  hides?: string;
}

const START_UPS: StartUp[] = [
  { name: 'bot with LOG_LEVEL=loud', verb: 'bot', env: { LOG_LEVEL: 'loud' }, says: /LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent \(got "loud"\)$/ },
  { name: 'bot with a "Bot " prefix on DISCORD_TOKEN', verb: 'bot', env: { DISCORD_TOKEN: 'Bot sekrit.token.value' }, says: /DISCORD_TOKEN must be the bot token alone, .*\(the value is not shown\)$/, hides: 'sekrit' },
  { name: 'bot with DISCORD_API_URL not a URL', verb: 'bot', env: { DISCORD_TOKEN: 'abc.def.ghi', DISCORD_API_URL: '127.0.0.1:9/api' }, says: /DISCORD_API_URL must be an http\(s\) URL \(got "127\.0\.0\.1:9\/api"\)$/ },
  { name: 'bot with LLM_BASE_URL without a scheme', verb: 'bot', env: { LLM_BASE_URL: 'localhost:11434/v1' }, says: /LLM_BASE_URL must be an http\(s\) URL/ },
  { name: 'bot with LLM_MODEL from a .env file', verb: 'bot', env: {}, dotenv: 'LLM_MODEL=gpt 4o mini\n', says: /LLM_MODEL must be a model name without spaces or quotes.*\(got "gpt 4o mini"\)$/ },
  { name: 'bot with CHORUS_HOME a file', verb: 'bot', env: (dir) => ({ CHORUS_HOME: join(dir, 'a-file') }), says: /CHORUS_HOME must be a directory path \(.*\/a-file is a file\)/ },
  { name: 'supervise with CHORUS_KILL_GRACE_MS=soon', verb: 'supervise', env: { CHORUS_KILL_GRACE_MS: 'soon' }, says: /CHORUS_KILL_GRACE_MS must be an integer from 0 to 600000 \(got "soon"\)$/ },
  { name: 'supervise with CHORUS_LOG_CAP=10', verb: 'supervise', env: { CHORUS_LOG_CAP: '10' }, says: /CHORUS_LOG_CAP must be a size from 4K to 1024G, like 64M \(got "10"\)$/ },
  { name: 'supervise with LLM_API_KEY with a Bearer prefix', verb: 'supervise', env: { LLM_API_KEY: 'Bearer sk-hidden-key' }, says: /LLM_API_KEY must be the key alone/, hides: 'sk-hidden-key' },
  { name: 'bot with LLM_TIMEOUT_MS=soon', verb: 'bot', env: { LLM_TIMEOUT_MS: 'soon' }, says: /LLM_TIMEOUT_MS must be an integer from 1000 to 3600000 \(got "soon"\)$/ },
  { name: 'supervise with CHORUS_OWNER_IDS=me', verb: 'supervise', env: { CHORUS_OWNER_IDS: 'me' }, says: /CHORUS_OWNER_IDS must be a comma-separated list of Discord ids \(17-20 digits\) \(got "me"\)$/ },
];

function run(verb: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number | string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CHORUS_BIN, verb], { cwd, env, timeout: 10_000, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      resolve({ code: error ? (error.code ?? error.signal ?? null) : 0, stdout, stderr });
    });
  });
}

/** Every path under a directory, with file contents, to see that nothing was written. */
function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir, { recursive: true, withFileTypes: true }).map((entry) => {
    const path = join(entry.parentPath, entry.name);
    return [path, entry.isFile() ? readFileSync(path, 'utf8') : entry.isDirectory() ? '(dir)' : '(other)'];
  }));
}

describe.concurrent('a real start-up with a bad value stops with one line naming the key, and writes nothing', () => {
  it.for(START_UPS)('$name', async (c, { expect: expectHere }) => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a-file'), 'a file\n');
    if (c.dotenv) writeFileSync(join(dir, '.env'), c.dotenv);
    const home = join(dir, 'home');
    const before = snapshot(dir);
    // HOME is the temporary directory too, so not even the default home could be touched.
    const env = { PATH: process.env.PATH, HOME: dir, CHORUS_HOME: home, ...(typeof c.env === 'function' ? c.env(dir) : c.env) };

    const result = await run(c.verb, dir, env);

    expectHere(result.code, `exit code; stdout: ${result.stdout}`).not.toBe(0);
    expectHere(typeof result.code, 'an exit code, not a signal or a timeout').toBe('number');
    expectHere(result.stdout).toBe('');
    const lines = result.stderr.trimEnd().split('\n');
    expectHere(lines, 'exactly one line on stderr').toHaveLength(1);
    expectHere(lines[0]).toMatch(/^chorus: Invalid configuration: [A-Z_]+ must be /);
    expectHere(lines[0]).toMatch(c.says);
    if (c.hides) expectHere(result.stderr).not.toContain(c.hides);
    expectHere(existsSync(home), 'CHORUS_HOME was not created').toBe(false);
    expectHere(snapshot(dir), 'nothing written').toEqual(before);
  });
});

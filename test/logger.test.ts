// The pino logger from src/logger.ts keeps tokens, keys, authorization headers and environments out of the log.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, redactSecrets } from '../src/logger.js';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const log = createLogger({ level: 'debug', destination: stream });
  return { log, lines, entries: () => lines.map((line) => JSON.parse(line) as Record<string, any>) };
}

const SECRETS = ['discord-secret-1', 'llm-secret-2', 'token-secret-3', 'apikey-secret-4', 'header-secret-5', 'env-secret-6', 'nested-secret-7'];

describe('logger', () => {
  it('redacts DISCORD_TOKEN, LLM_API_KEY, token, apiKey, authorization headers and env objects, at the top and nested', () => {
    const { log, lines, entries } = capture();
    log.info({ DISCORD_TOKEN: SECRETS[0], LLM_API_KEY: SECRETS[1] }, 'environment keys');
    log.info({ config: { discordToken: SECRETS[0], llmApiKey: SECRETS[1], chorusHome: '/srv/chorus' } }, 'config');
    log.warn({ token: SECRETS[2], apiKey: SECRETS[3] }, 'top-level names');
    log.info({ client: { token: SECRETS[2], apiKey: SECRETS[3] } }, 'nested names');
    log.error({ headers: { authorization: `Bearer ${SECRETS[4]}`, 'content-type': 'application/json' } }, 'headers');
    log.error({ request: { headers: { authorization: `Bot ${SECRETS[4]}` }, url: 'https://example.test/v1' } }, 'request headers');
    log.debug({ env: { PATH: '/usr/bin', MY_SECRET: SECRETS[5] } }, 'an environment');
    log.info({ spawn: { command: 'npm test', env: { LLM_API_KEY: SECRETS[1] } } }, 'a spawn with its environment');
    log.child({ module: 'llm' }).info({ agent: { token: SECRETS[6] }, pid: 42 }, 'a child logger');

    expect(lines).toHaveLength(9);
    for (const secret of SECRETS) expect(lines.join(''), secret).not.toContain(secret);
    const [keys, config, top, nested, headers, request, env, spawn, child] = entries();
    expect(keys).toMatchObject({ DISCORD_TOKEN: '[redacted]', LLM_API_KEY: '[redacted]' });
    expect(config!.config).toEqual({ discordToken: '[redacted]', llmApiKey: '[redacted]', chorusHome: '/srv/chorus' });
    expect(top).toMatchObject({ token: '[redacted]', apiKey: '[redacted]', level: 40 });
    expect(nested!.client).toEqual({ token: '[redacted]', apiKey: '[redacted]' });
    expect(headers!.headers).toEqual({ authorization: '[redacted]', 'content-type': 'application/json' });
    expect(request!.request).toEqual({ headers: { authorization: '[redacted]' }, url: 'https://example.test/v1' });
    expect(env!.env).toBe('[redacted]');
    expect(spawn!.spawn).toEqual({ command: 'npm test', env: '[redacted]' });
    expect(child).toMatchObject({ module: 'llm', agent: { token: '[redacted]' }, pid: 42, msg: 'a child logger' });
  });

  it('redacts inside errors (their fields and their cause) and leaves the logged objects as they were', () => {
    const { log, lines, entries } = capture();
    const cause = Object.assign(new Error('upstream'), { token: SECRETS[2] });
    const error = Object.assign(new Error('request failed', { cause }), { request: { headers: { authorization: `Bearer ${SECRETS[4]}` } }, status: 401 });
    log.error({ err: error }, 'an error');
    log.error(error);
    const config = { client: { apiKey: SECRETS[3], model: 'm' } };
    log.info({ config }, 'a config');
    for (const secret of SECRETS) expect(lines.join(''), secret).not.toContain(secret);
    const [first, second, third] = entries();
    for (const entry of [first, second]) {
      expect(entry!.err).toMatchObject({ message: expect.stringContaining('request failed'), status: 401, request: { headers: { authorization: '[redacted]' } } });
      expect(entry!.err.stack).toContain('request failed');
    }
    expect(third!.config).toEqual({ client: { apiKey: '[redacted]', model: 'm' } });
    // What was logged is not changed.
    expect(error.request.headers.authorization).toBe(`Bearer ${SECRETS[4]}`);
    expect(cause.token).toBe(SECRETS[2]);
    expect(config.client.apiKey).toBe(SECRETS[3]);
  });

  it('copies nothing when a line holds no secret', () => {
    const object = { id: 1, nested: { pid: 2, list: [{ a: 1 }] } };
    expect(redactSecrets(object)).toBe(object);
  });

  it('keeps what is not a secret, and logs nothing below its level', () => {
    const { log, entries } = capture();
    log.info({ pid: 1234, agent: 'main', command: 'npm test' }, 'process started');
    log.trace({ token: 'never-written' }, 'too detailed');
    expect(entries()).toEqual([expect.objectContaining({ pid: 1234, agent: 'main', command: 'npm test', msg: 'process started', level: 30 })]);
  });
});

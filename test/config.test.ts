import { describe, expect, it } from 'vitest';
import { loadConfig, DEFAULT_LOG_CAP_BYTES } from '../src/config.js';

describe('config', () => {
  it('has working defaults with an empty environment', () => {
    const config = loadConfig({ HOME: '/home/someone' });
    expect(config.chorusHome).toMatch(/\.chorus-agents$/);
    expect(config.logCapBytes).toBe(DEFAULT_LOG_CAP_BYTES);
    expect(config.killGraceMs).toBe(5000);
    expect(config.llmTimeoutMs).toBe(120_000);
    expect(config.discordToken).toBeUndefined();
    expect(config.registerCommandsOnStart).toBe(true);
  });

  it('reads every key', () => {
    const config = loadConfig({
      DISCORD_TOKEN: 't', DISCORD_GUILD_ID: '123456789012345678', DISCORD_API_URL: 'http://127.0.0.1:9/api/',
      CHORUS_OWNER_IDS: '123456789012345678, 223456789012345678', LLM_BASE_URL: 'http://localhost:11434/v1',
      LLM_API_KEY: 'k', LLM_MODEL: 'llama3', CHORUS_HOME: '/tmp/x', LOG_LEVEL: 'DEBUG', CHORUS_KILL_GRACE_MS: '250',
      CHORUS_LOG_CAP: '512K', CHORUS_REGISTER_COMMANDS: 'false', LLM_TIMEOUT_MS: '300000', DISCORD_READY_TIMEOUT_SECONDS: '5',
    });
    expect(config).toMatchObject({
      discordToken: 't', discordGuildId: '123456789012345678', discordApiUrl: 'http://127.0.0.1:9/api',
      ownerIds: ['123456789012345678', '223456789012345678'], llmModel: 'llama3', llmTimeoutMs: 300_000, chorusHome: '/tmp/x',
      logLevel: 'debug', killGraceMs: 250, logCapBytes: 512 * 1024, registerCommandsOnStart: false,
      discordReadyTimeoutMs: 5_000,
    });
  });
});

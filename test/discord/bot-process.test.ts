import { afterEach, describe, expect, it } from 'vitest';
import { homeWithRunningProcess } from '../support/agent-home.js';
import { isAlive } from '../support/child-cleanup.js';
import { FakeDiscord } from '../support/fake-discord.js';
import { runUntilExit, startSupervisor } from '../support/supervisor-process.js';
import { waitFor } from '../support/wait-for.js';

// `chorus bot` as its own OS process against the local Discord: how it ends when Discord misbehaves (issue 9).
let server: FakeDiscord | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function setUp(): Promise<{ home: string; env: NodeJS.ProcessEnv; pid: number }> {
  server = await FakeDiscord.start();
  // A process started before the bot: whatever happens to the bot, it keeps running.
  const { home, pid } = await homeWithRunningProcess(server.channels[1]!.id);
  const env = {
    DISCORD_TOKEN: server.token, DISCORD_API_URL: server.apiUrl, DISCORD_GUILD_ID: server.guildId,
    LOG_LEVEL: 'info', DISCORD_READY_TIMEOUT_SECONDS: '3',
  };
  return { home, env, pid };
}

/** The lines that are not pino's JSON log lines: what a person reads. */
function plainLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line && !line.startsWith('{'));
}

function logLines(stderr: string): Array<Record<string, unknown>> {
  return stderr.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('chorus bot against a Discord that misbehaves', () => {
  it('ends a start that never gets ready with one chorus: line naming the close code, a non-zero exit, processes untouched', async () => {
    const { home, env, pid } = await setUp();
    server!.closeEveryConnection(4002);
    const result = await runUntilExit(home, { verb: 'bot', env, timeoutMs: 20_000 });
    expect(result.code).not.toBe(0);
    expect(plainLines(result.stderr)).toEqual([expect.stringMatching(/^chorus: .*did not get ready within 3 s .*4002 Discord could not decode a payload/)]);
    // Each close is logged with its code and meaning, but not once per reconnect.
    const closes = logLines(result.stderr).filter((l) => l.msg === 'discord gateway closed; reconnecting');
    expect(closes[0]).toMatchObject({ code: 4002, meaning: 'Discord could not decode a payload' });
    expect(server!.gatewayStats.connections).toBeGreaterThan(closes.length);
    expect(isAlive(pid)).toBe(true);
  });

  it.each([
    [4004, /authentication failed: Discord rejected DISCORD_TOKEN/],
    [4013, /4013 invalid intents: turn on Message Content Intent/],
    [4014, /4014 disallowed intents: turn on Message Content Intent/],
    [4011, /4011 sharding required/],
  ])('stops at once on the fatal close code %i with one line saying what to fix', async (code, says) => {
    const { home, env, pid } = await setUp();
    server!.closeEveryConnection(code);
    const result = await runUntilExit(home, { verb: 'bot', env: { ...env, DISCORD_READY_TIMEOUT_SECONDS: '60' }, timeoutMs: 20_000 });
    expect(result.code).not.toBe(0);
    expect(plainLines(result.stderr)).toEqual([expect.stringMatching(says)]);
    expect(plainLines(result.stderr)[0]).toMatch(/^chorus: /);
    expect(isAlive(pid)).toBe(true);
  });

  it('stops with one line when the gateway closes for good after start-up, and a new start takes over', async () => {
    const { home, env, pid } = await setUp();
    const bot = await startSupervisor(home, { verb: 'bot', env, readyTimeoutMs: 20_000 });
    server!.closeEveryConnection(4014);
    const exit = await bot.exited;
    expect(exit.code).not.toBe(0);
    expect(plainLines(bot.stderr)).toEqual([expect.stringMatching(/^chorus: .*4014 disallowed intents: turn on Message Content Intent/)]);
    expect(isAlive(pid)).toBe(true);
    server!.closeEveryConnection(null);
    const again = await startSupervisor(home, { verb: 'bot', env, readyTimeoutMs: 20_000 });
    expect((await again.stop()).code).toBe(0);
  });

  it.each(['button-thread-null', 'autocomplete-no-data'] as const)(
    'a malformed payload (%s) runs the normal shutdown and exits non-zero; processes keep running',
    async (kind) => {
      const { home, env, pid } = await setUp();
      const bot = await startSupervisor(home, { verb: 'bot', env, readyTimeoutMs: 20_000 });
      await server!.waitForBot();
      const message = server!.sendMessage({ content: 'hello', channelId: server!.channels[0]!.id });
      server!.sendMalformedInteraction(kind, { messageId: message.id });
      const exit = await bot.exited;
      expect(exit.code).not.toBe(0);
      expect(plainLines(bot.stderr)).toEqual([expect.stringMatching(/^chorus: Internal error: (uncaughtException|unhandledRejection): .*; shut down cleanly \(processes keep running\)$/)]);
      expect(logLines(bot.stderr).some((l) => l.msg === 'internal error; shutting down (processes keep running)' && typeof l.origin === 'string')).toBe(true);
      expect(isAlive(pid)).toBe(true);
      // The shutdown released the supervisor lock and left the database sound: the next start is not refused.
      const again = await startSupervisor(home, { verb: 'bot', env, readyTimeoutMs: 20_000 });
      await waitFor(() => server!.gatewayStats.connectedSessions > 0, { what: 'the new bot to connect' });
      expect((await again.stop()).code).toBe(0);
    },
  );
});

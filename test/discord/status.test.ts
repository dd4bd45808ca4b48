import { Routes, type APIMessage } from 'discord.js';
import { describe, expect, it } from 'vitest';
import { loadAgentConfig, writeAgentConfig } from '../../src/agents/agent-config.js';
import { STATE_COLOURS } from '../../src/discord/status-embed.js';
import type { ProcessRecord } from '../../src/store/process-repo.js';
import type { Payload, StoredMessage } from '../support/fake-discord.js';
import { isAlive } from '../support/child-cleanup.js';
import { waitFor } from '../support/wait-for.js';
import {
  ALLOWED_USER, ALPHA_CHANNEL, BETA_CHANNEL, GENERAL, OUTSIDER, TIMEOUT_MS, spawnBackground, startHarness, ticker, type Harness,
} from './harness.js';

function embedOf(message: { embeds: Payload[] }): Payload & { title: string; description: string; color: number; fields: Array<{ name: string; value: string }> } {
  return message.embeds[0] as never;
}

function field(message: { embeds: Payload[] }, name: string): string | undefined {
  return embedOf(message).fields.find((candidate) => candidate.name === name)?.value;
}

function customIds(message: { components: Payload[] }): string[] {
  return message.components.flatMap((row) => (row.components as Array<{ custom_id: string }>).map((button) => button.custom_id));
}

function isStatusOf(record: ProcessRecord) {
  return (message: StoredMessage): boolean => message.source === 'bot' && message.embeds.length > 0
    && String((message.embeds[0]?.footer as { text?: string } | undefined)?.text).endsWith(`row #${record.id}`);
}

async function statusMessage(h: Harness, record: ProcessRecord): Promise<StoredMessage> {
  const message = await h.server.waitForMessage(isStatusOf(record), { timeoutMs: TIMEOUT_MS });
  await waitFor(() => h.manager.find({ id: record.id })?.discordMessageId === message.id, { timeoutMs: TIMEOUT_MS, what: 'the stored message id' });
  return message;
}

function lastVersion(h: Harness, messageId: string): StoredMessage {
  return h.server.message(messageId)!;
}

describe('live status messages of background processes', () => {
  it('posts an embed, edits it while the process runs, and ends in its final state', async () => {
    const h = await startHarness();
    const record = await spawnBackground(h, h.alpha, ticker(20, 100, 3));
    const posted = await statusMessage(h, record);
    expect(posted.channelId).toBe(ALPHA_CHANNEL);
    expect(posted.interactionId).toBeNull();
    expect(field(posted, 'PID')).toBe(String(record.pid));
    expect(field(posted, 'Command')).toContain('tick');
    expect(customIds(posted)).toEqual([`proc:kill:${record.id}`, `proc:restart:${record.id}`, `proc:logs:${record.id}`]);
    expect(h.manager.find({ id: record.id })?.statusChannelId).toBe(ALPHA_CHANNEL);

    const running = await h.server.waitForEdit((edit) => edit.messageId === posted.id && /tick \d/.test(embedOf(edit.message).description)
      && embedOf(edit.message).title.endsWith('running'), { timeoutMs: TIMEOUT_MS });
    expect(embedOf(running.message).color).toBe(STATE_COLOURS.running);

    const final = await h.server.waitForEdit((edit) => edit.messageId === posted.id && embedOf(edit.message).title.endsWith('exited'), { timeoutMs: TIMEOUT_MS });
    expect(field(final.message, 'Exit code')).toBe('code 3');
    expect(embedOf(final.message).color).toBe(STATE_COLOURS.failure);
    expect(embedOf(final.message).description).toContain('tick 19');
    expect(customIds(final.message)).toEqual([`proc:restart:${record.id}`, `proc:logs:${record.id}`]);
    // One message for the process, in its agent's channel only.
    expect(h.server.messages(ALPHA_CHANNEL).filter(isStatusOf(record))).toHaveLength(1);
    expect(h.server.messages(BETA_CHANNEL)).toEqual([]);
    expect(h.server.messages(GENERAL)).toEqual([]);
    expect(h.server.unhandled).toEqual([]);
    expect(h.server.rejected).toEqual([]);
  });

  it('Kill and Logs buttons check authorization on every press', async () => {
    const h = await startHarness();
    const record = await spawnBackground(h, h.alpha, ticker(0, 100));
    const posted = await statusMessage(h, record);
    await waitFor(() => (h.manager.tail(record.id)?.length ?? 0) >= 2, { timeoutMs: TIMEOUT_MS, what: 'output' });

    const logs = await h.server.sendButton({ customId: `proc:logs:${record.id}`, messageId: posted.id, userId: ALLOWED_USER }).waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(logs.isEphemeral).toBe(true);
    expect(logs.content).toMatch(/tick 0/);

    for (const action of ['kill', 'logs']) {
      const refused = await h.server.sendButton({ customId: `proc:${action}:${record.id}`, messageId: posted.id, userId: OUTSIDER }).waitForReply({ timeoutMs: TIMEOUT_MS });
      expect(refused.isEphemeral).toBe(true);
      expect(refused.content).toMatch(/^You are not allowed to do that here/);
    }
    expect(h.manager.find({ id: record.id })?.status).toBe('running');

    // Taken off the allow-list: the very next press is refused.
    writeAgentConfig(h.home, { ...loadAgentConfig(h.home, 'alpha'), allowedUserIds: [] });
    const revoked = await h.server.sendButton({ customId: `proc:kill:${record.id}`, messageId: posted.id, userId: ALLOWED_USER }).waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(revoked.content).toMatch(/^You are not allowed/);
    writeAgentConfig(h.home, { ...loadAgentConfig(h.home, 'alpha'), allowedUserIds: [ALLOWED_USER] });

    const kill = await h.server.sendButton({ customId: `proc:kill:${record.id}`, messageId: posted.id, userId: ALLOWED_USER }).waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(kill.isEphemeral).toBe(true);
    expect(kill.content).toMatch(new RegExp(`^Stopped pid ${record.pid}`));
    const final = await h.server.waitForEdit((edit) => edit.messageId === posted.id && embedOf(edit.message).title.endsWith('killed'), { timeoutMs: TIMEOUT_MS });
    expect(embedOf(final.message).color).toBe(STATE_COLOURS.killed);
    expect(field(final.message, 'Signal')).toMatch(new RegExp(`SIGTERM by ${ALLOWED_USER}`));

    const again = await h.server.sendButton({ customId: `proc:kill:${record.id}`, messageId: posted.id, userId: ALLOWED_USER }).waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(again.content).toMatch(/has already ended/);
  });

  it('never lets a channel show or touch another agent\'s processes', async () => {
    const h = await startHarness();
    const alphaRow = await spawnBackground(h, h.alpha, ticker(0, 200));
    await statusMessage(h, alphaRow);
    // A button naming alpha's row, on a message in beta's channel (a forged or stale custom id).
    const forged = await h.bot.client.rest.post(Routes.channelMessages(BETA_CHANNEL), {
      body: { content: 'x', components: [{ type: 1, components: [{ type: 2, style: 4, label: 'Kill', custom_id: `proc:kill:${alphaRow.id}` }] }] },
    }) as APIMessage;
    const refused = await h.server.sendButton({ customId: `proc:kill:${alphaRow.id}`, messageId: forged.id }).waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(refused.content).toBe(`No such process: process #${alphaRow.id} is not one of agent beta's`);
    const list = await h.server.sendCommand({ name: 'process', subcommand: 'list', channelId: BETA_CHANNEL }).waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(list.content).not.toContain(String(alphaRow.pid));
    const logs = await h.server.sendCommand({ name: 'process', subcommand: 'logs', options: { pid: alphaRow.pid! }, channelId: BETA_CHANNEL }).waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(logs.content).toMatch(/^No such process/);
    expect(h.manager.find({ id: alphaRow.id })?.status).toBe('running');
    expect(h.server.messages(BETA_CHANNEL).filter((message) => message.embeds.length > 0)).toEqual([]);
  });

  it('re-posts a deleted status message and stores its new id', async () => {
    const h = await startHarness();
    const record = await spawnBackground(h, h.alpha, ticker(0, 100));
    const first = await statusMessage(h, record);
    h.server.deleteMessage(ALPHA_CHANNEL, first.id);
    const second = await h.server.waitForMessage((message) => isStatusOf(record)(message) && message.id !== first.id && !message.isDeleted, { timeoutMs: TIMEOUT_MS });
    await waitFor(() => h.manager.find({ id: record.id })?.discordMessageId === second.id, { timeoutMs: TIMEOUT_MS, what: 'the new id stored' });
    expect(h.server.rejected.map((request) => request.code)).toEqual([10008]);
    await h.manager.kill({ id: record.id }, { by: 'test' });
    await h.server.waitForEdit((edit) => edit.messageId === second.id && embedOf(edit.message).title.endsWith('killed'), { timeoutMs: TIMEOUT_MS });
  });

  it('backs off a message past its edit cap (30046) and still delivers the final state', async () => {
    const h = await startHarness();
    const record = await spawnBackground(h, h.alpha, ticker(30, 100));
    const posted = await statusMessage(h, record);
    h.server.markOld(posted.id);
    const ended = await h.server.waitForMessage((message) => isStatusOf(record)(message) && message.id !== posted.id, { timeoutMs: TIMEOUT_MS });
    await waitFor(() => embedOf(lastVersion(h, ended.id)).title.endsWith('exited'), { timeoutMs: TIMEOUT_MS, what: 'the final state' });
    await waitFor(() => h.manager.find({ id: record.id })?.discordMessageId === ended.id, { timeoutMs: TIMEOUT_MS, what: 'the new id stored' });
    // One refusal, then no edit of the capped message for the rest of the run (about 3 s of output).
    expect(h.server.rejected.filter((request) => request.code === 30046)).toHaveLength(1);
  });

  it('keeps editing the same message after the bot restarts while the process runs', async () => {
    const first = await startHarness();
    const record = await spawnBackground(first, first.alpha, ticker(0, 100));
    const posted = await statusMessage(first, record);
    await first.stop();
    const stoppedAt = Date.now();
    const second = await startHarness({ server: first.server, home: first.home });
    expect(second.manager.isWatching(record.id)).toBe(true);
    await second.server.waitForEdit((edit) => edit.messageId === posted.id && edit.at > stoppedAt, { timeoutMs: TIMEOUT_MS });
    await second.manager.kill({ id: record.id }, { by: 'test' });
    await second.server.waitForEdit((edit) => edit.messageId === posted.id && embedOf(edit.message).title.endsWith('killed'), { timeoutMs: TIMEOUT_MS });
    expect(second.server.messages(ALPHA_CHANNEL).filter(isStatusOf(record)).map((message) => message.id)).toEqual([posted.id]);
  });

  it('keeps 20 busy processes in one channel under 5 edits per 5 s with no 429, and delivers every final state', async () => {
    const h = await startHarness({ fake: { enforceRateLimit: true, advertiseEditLimit: false, editLimit: { count: 5, windowMs: 5_000 } } });
    const records: ProcessRecord[] = [];
    for (let i = 0; i < 20; i += 1) records.push(await spawnBackground(h, h.alpha, ticker(25, 80, i % 2)));
    await waitFor(() => records.every((record) => {
      const row = h.manager.find({ id: record.id });
      const message = row?.discordMessageId ? h.server.message(row.discordMessageId) : undefined;
      return message !== undefined && /· exited$/.test(embedOf(message).title);
    }), { timeoutMs: 50_000, what: 'every final state' });
    for (const [index, record] of records.entries()) {
      const message = h.server.message(h.manager.find({ id: record.id })!.discordMessageId!)!;
      expect(field(message, 'Exit code')).toBe(`code ${index % 2}`);
    }
    expect(h.server.rateLimitHits).toBe(0);
    expect(h.server.maxEditsInWindow(ALPHA_CHANNEL, 5_000)).toBeLessThanOrEqual(5);
    expect(h.server.messages(ALPHA_CHANNEL)).toHaveLength(20);
  }, 60_000);

  it('flushes final states on shutdown, destroys the client and leaves processes running', async () => {
    const h = await startHarness();
    const long = await spawnBackground(h, h.alpha, ticker(0, 100));
    await statusMessage(h, long);
    const short = await spawnBackground(h, h.alpha, ticker(3, 50));
    const shortMessage = await statusMessage(h, short);
    await waitFor(() => h.manager.find({ id: short.id })?.status === 'exited', { timeoutMs: TIMEOUT_MS, what: 'the short process to end' });
    await h.stop();
    expect(embedOf(lastVersion(h, shortMessage.id)).title).toMatch(/· exited$/);
    expect(h.bot.frontEnd.pendingUpdates).toBe(0);
    await waitFor(() => h.server.gatewayStats.connectedSessions === 0, { timeoutMs: TIMEOUT_MS, what: 'the gateway session to close' });
    expect(isAlive(long.pid!)).toBe(true);
  });
});

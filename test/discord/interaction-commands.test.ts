import { describe, expect, it } from 'vitest';
import type { ProcessRecord } from '../../src/store/process-repo.js';
import type { StoredMessage } from '../support/fake-discord.js';
import { trackPid } from '../support/child-cleanup.js';
import { waitFor } from '../support/wait-for.js';
import { ALLOWED_USER, ALPHA_CHANNEL, OUTSIDER, TIMEOUT_MS, startHarness, type Harness } from './harness.js';

function isStatusOf(record: ProcessRecord) {
  return (message: StoredMessage): boolean => message.source === 'bot' && message.embeds.length > 0
    && String((message.embeds[0]?.footer as { text?: string } | undefined)?.text).endsWith(`row #${record.id}`);
}

function lines(h: Harness, id: number): string[] {
  return (h.manager.tail(id) ?? []).map((l) => l.text);
}

describe('/process start, input, signal and the Input button', () => {
  it('a person starts an interactive process, types into it by slash command and by the Input form, pauses and resumes it', async () => {
    const h = await startHarness();
    const started = await h.server.sendCommand({
      name: 'process', subcommand: 'start', channelId: ALPHA_CHANNEL, userId: ALLOWED_USER,
      options: { command: `trap 'echo usr1' USR1; while IFS= read -r l; do echo "got: $l"; done; exit 2`, interactive: true, name: 'reader' },
    }).waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(started.content).toMatch(/^Started pid (\d+)/);
    const pid = Number(/pid (\d+)/.exec(started.content)![1]);
    trackPid(pid, { group: true });
    const record = h.manager.find({ pid, agentName: 'alpha' })!;
    expect(record).toMatchObject({ isInteractive: true, name: 'reader', processType: 'background' });

    const typed = await h.server.sendCommand({ name: 'process', subcommand: 'input', channelId: ALPHA_CHANNEL, userId: ALLOWED_USER, options: { pid, text: 'from slash' } })
      .waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(typed.content).toBe(`Sent 11 bytes to pid ${pid}.`);
    await waitFor(() => lines(h, record.id).includes('got: from slash'), { timeoutMs: TIMEOUT_MS, what: 'the slash input echoed' });

    const refused = await h.server.sendCommand({ name: 'process', subcommand: 'input', channelId: ALPHA_CHANNEL, userId: OUTSIDER, options: { pid, text: 'x' } })
      .waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(refused.isEphemeral).toBe(true);
    expect(refused.content).toMatch(/not allowed/i);

    const status = await h.server.waitForMessage((m) => isStatusOf(record)(m) && JSON.stringify(m.components).includes('proc:input'), { timeoutMs: TIMEOUT_MS });
    const pressed = await h.server.sendButton({ customId: `proc:input:${record.id}`, messageId: status.id, userId: ALLOWED_USER }).waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(pressed.callbackType).toBe(9);
    expect(pressed.modal).toMatchObject({ custom_id: `proc:input-modal:${record.id}` });
    const outsiderPress = await h.server.sendButton({ customId: `proc:input:${record.id}`, messageId: status.id, userId: OUTSIDER }).waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(outsiderPress.content).toMatch(/not allowed/i);
    const submitted = await h.server.sendModalSubmit({ customId: `proc:input-modal:${record.id}`, fields: { text: 'from the form' }, userId: ALLOWED_USER, channelId: ALPHA_CHANNEL })
      .waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(submitted.content).toBe(`Sent 14 bytes to pid ${pid}.`);
    await waitFor(() => lines(h, record.id).includes('got: from the form'), { timeoutMs: TIMEOUT_MS, what: 'the form input echoed' });

    const stop = await h.server.sendCommand({ name: 'process', subcommand: 'signal', channelId: ALPHA_CHANNEL, userId: ALLOWED_USER, options: { pid, signal: 'STOP' } })
      .waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(stop.content).toMatch(/paused/);
    await h.server.waitForMessage((m) => m.id === status.id && JSON.stringify(m.embeds).includes('paused'), { timeoutMs: TIMEOUT_MS });
    const listed = await h.server.sendCommand({ name: 'process', subcommand: 'status', channelId: ALPHA_CHANNEL, options: { pid } }).waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(listed.content).toMatch(/interactive, paused/);
    await h.server.sendCommand({ name: 'process', subcommand: 'signal', channelId: ALPHA_CHANNEL, userId: ALLOWED_USER, options: { pid, signal: 'CONT' } })
      .waitForReply({ timeoutMs: TIMEOUT_MS });
    await h.server.sendCommand({ name: 'process', subcommand: 'signal', channelId: ALPHA_CHANNEL, userId: ALLOWED_USER, options: { pid, signal: 'USR1' } })
      .waitForReply({ timeoutMs: TIMEOUT_MS });
    await waitFor(() => lines(h, record.id).includes('usr1'), { timeoutMs: TIMEOUT_MS, what: 'the USR1 trap' });
    expect(h.manager.find({ id: record.id })).toMatchObject({ lastSignal: 'USR1', lastSignalBy: ALLOWED_USER, pausedAt: null });
    await h.server.sendCommand({ name: 'process', subcommand: 'input', channelId: ALPHA_CHANNEL, userId: ALLOWED_USER, options: { pid, text: 'bye', eof: true } })
      .waitForReply({ timeoutMs: TIMEOUT_MS });
    await waitFor(() => h.manager.find({ id: record.id })?.status === 'exited', { timeoutMs: TIMEOUT_MS, what: 'the end' });
    expect(h.manager.find({ id: record.id })!.exitCode).toBe(2);
  });
});

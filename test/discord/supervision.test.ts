import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { STATE_COLOURS } from '../../src/discord/status-embed.js';
import { parseReadySpec, parseRestartPolicy } from '../../src/process/supervision-spec.js';
import type { ProcessRecord } from '../../src/store/process-repo.js';
import type { Payload, StoredMessage } from '../support/fake-discord.js';
import { freePort } from '../support/free-port.js';
import { waitFor } from '../support/wait-for.js';
import { ALLOWED_USER, ALPHA_CHANNEL, OUTSIDER, TIMEOUT_MS, startHarness, type Harness } from './harness.js';
import { fixture } from '../support/fixtures.js';

const node = JSON.stringify(process.execPath);
const LATE_SERVER = fixture('late-server.mjs');

type Embed = Payload & { title: string; description: string; color: number; fields: Array<{ name: string; value: string }> };
const embedOf = (message: { embeds: Payload[] }) => message.embeds[0] as Embed;
const field = (message: { embeds: Payload[] }, name: string) => embedOf(message).fields.find((f) => f.name === name)?.value;
const customIds = (message: { components: Payload[] }) =>
  message.components.flatMap((row) => (row.components as Array<{ custom_id: string }>).map((button) => button.custom_id));
const footerId = (message: StoredMessage) => String((message.embeds[0]?.footer as { text?: string } | undefined)?.text);

async function statusMessage(h: Harness, record: ProcessRecord): Promise<StoredMessage> {
  return h.server.waitForMessage((m) => m.source === 'bot' && m.embeds.length > 0 && footerId(m).endsWith(`row #${record.id}`), { timeoutMs: TIMEOUT_MS });
}

async function processStatus(h: Harness, pid: number): Promise<string> {
  const reply = await h.server.sendCommand({ name: 'process', subcommand: 'status', options: { pid }, channelId: ALPHA_CHANNEL }).waitForReply({ timeoutMs: TIMEOUT_MS });
  return reply.content;
}

describe('supervision on the status message and /process status', () => {
  it('shows starting → ready, with the probe, in the embed and /process status', async () => {
    const h = await startHarness();
    const port = await freePort();
    const record = await h.manager.spawn({
      agent: h.alpha, command: `${node} ${JSON.stringify(LATE_SERVER)} ${port} 1500`, processType: 'background',
      readyJson: JSON.stringify(parseReadySpec({ port, http_path: '/health' })),
    });
    const posted = await statusMessage(h, record);
    expect(embedOf(posted).title).toMatch(/· starting$/);
    expect(field(posted, 'State')).toBe('🟡 starting');
    expect(await processStatus(h, record.pid!)).toMatch(/readiness: starting \(not ready yet\); probe: port \d+ GET \/health within 60s/);
    const ready = await h.server.waitForEdit((edit) => edit.messageId === posted.id && field(edit.message, 'State') === '🟢 ready', { timeoutMs: TIMEOUT_MS });
    expect(embedOf(ready.message).title).toMatch(/· ready$/);
    expect(await processStatus(h, record.pid!)).toMatch(/status: {4}ready\n[\s\S]*readiness: ready since \d{4}-/);
  });

  it('shows a crash loop with its restarts under one handle; Restart is authorised like Kill and starts it again', async () => {
    const h = await startHarness();
    const first = await h.manager.spawn({
      agent: h.alpha, command: `${node} -e "console.log('dying'); process.exit(4)"`, processType: 'background',
      restartJson: JSON.stringify(parseRestartPolicy({ on: 'failure', max_restarts: 2, backoff_seconds: 0.2 })),
    });
    const looped = await waitFor(() => {
      const current = h.manager.find({ id: first.id })!;
      return current.status === 'crash_loop' ? current : undefined;
    }, { timeoutMs: 15_000, what: 'the crash loop' });
    expect(looped.restartCount).toBe(2);
    // One status message for the logical process: its footer names the current run.
    const posted = await statusMessage(h, looped);
    const final = await h.server.waitForEdit((edit) => edit.messageId === posted.id && embedOf(edit.message).title.endsWith('crash_loop'), { timeoutMs: TIMEOUT_MS });
    expect(field(final.message, 'State')).toBe('💥 crash loop');
    expect(field(final.message, 'Exit code')).toBe('code 4');
    expect(field(final.message, 'Restarts')).toBe('2 (2 in a row)');
    expect(embedOf(final.message).color).toBe(STATE_COLOURS.crashLoop);
    expect(customIds(final.message)).toEqual([`proc:restart:${looped.id}`, `proc:logs:${looped.id}`]);
    expect(h.server.messages(ALPHA_CHANNEL).filter((m) => m.source === 'bot' && m.embeds.length > 0)).toHaveLength(1);

    // The first pid still names the logical process.
    const text = await processStatus(h, first.pid!);
    expect(text).toContain(`pid ${looped.pid} (#${looped.id})`);
    expect(text).toMatch(/status: {4}crash loop: exited with code 4 and its restart policy gave up/);
    expect(text).toMatch(/restarts: {2}restarted 2 times \(2 in a row\); policy: on failure, at most 2 in a row/);
    const list = await h.server.sendCommand({ name: 'process', subcommand: 'list', channelId: ALPHA_CHANNEL }).waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(list.content).toContain('crash_loop ↻2');
    expect(list.content.match(/dying/g)).toHaveLength(1);

    const refused = await h.server.sendButton({ customId: `proc:restart:${first.id}`, messageId: posted.id, userId: OUTSIDER }).waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(refused.content).toMatch(/^You are not allowed to do that here: the Restart button/);
    const restarted = await h.server.sendButton({ customId: `proc:restart:${first.id}`, messageId: posted.id, userId: ALLOWED_USER }).waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(restarted.content).toMatch(new RegExp(`^Restarted pid ${looped.pid} as pid \\d+`));
    const fresh = h.manager.list({ agentName: 'alpha' })[0]!;
    expect(fresh.restartedFrom).toBe(looped.id);
    expect(fresh.restartJson).toBe(looped.restartJson);
  });
});

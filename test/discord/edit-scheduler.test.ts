import { afterEach, describe, expect, it } from 'vitest';
import { EditScheduler, type EditSchedulerOptions, type StatusTransport } from '../../src/discord/edit-scheduler.js';
import type { StatusBody } from '../../src/discord/status-embed.js';
import { silentLogger } from '../../src/logger.js';
import { waitFor } from '../support/wait-for.js';

const DISCORD_EPOCH_MS = 1_420_070_400_000n;

interface Call {
  kind: 'post' | 'edit';
  messageId: string;
  text: string;
  at: number;
}

/** A channel that records calls; `failNext` makes the next edit of a message fail with a Discord code. */
class RecordingTransport implements StatusTransport {
  readonly calls: Call[] = [];
  readonly shown = new Map<string, string>();
  readonly failures = new Map<string, number[]>();
  /** Messages whose every edit fails with this code (Missing Access, a 500...). */
  readonly brokenMessages = new Map<string, number>();
  /** When set, every post fails with this code (the channel takes no posts). */
  postFailure: number | undefined;
  private next = 0n;

  constructor(private readonly messageAgeMs = 0) {}

  async post(_channelId: string, body: StatusBody): Promise<string> {
    await new Promise((resolve) => setImmediate(resolve));
    if (this.postFailure !== undefined) {
      this.calls.push({ kind: 'post', messageId: '', text: textOf(body), at: Date.now() });
      throw Object.assign(new Error(`Discord error ${this.postFailure}`), { code: this.postFailure });
    }
    this.next += 1n;
    const id = (((BigInt(Date.now() - this.messageAgeMs) - DISCORD_EPOCH_MS) << 22n) | this.next).toString();
    this.calls.push({ kind: 'post', messageId: id, text: textOf(body), at: Date.now() });
    this.shown.set(id, textOf(body));
    return id;
  }

  async edit(_channelId: string, messageId: string, body: StatusBody): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    this.calls.push({ kind: 'edit', messageId, text: textOf(body), at: Date.now() });
    const code = this.failures.get(messageId)?.shift() ?? this.brokenMessages.get(messageId);
    if (code !== undefined) throw Object.assign(new Error(`Discord error ${code}`), { code });
    this.shown.set(messageId, textOf(body));
  }

  edits(): Call[] {
    return this.calls.filter((call) => call.kind === 'edit');
  }
}

function body(text: string): StatusBody {
  return { content: text, embeds: [], components: [] };
}

function textOf(value: StatusBody): string {
  return value.content;
}

const schedulers: EditScheduler[] = [];
afterEach(() => {
  for (const scheduler of schedulers.splice(0)) scheduler.close();
});

function start(transport: StatusTransport, options: Partial<EditSchedulerOptions> = {}): { scheduler: EditScheduler; posted: Array<[number, string]> } {
  const posted: Array<[number, string]> = [];
  const scheduler = new EditScheduler({
    channelId: '100000000000000001', transport, log: silentLogger(), onPosted: (key, id) => posted.push([key, id]),
    budget: { count: 3, windowMs: 300 }, marginMs: 20, ...options,
  });
  schedulers.push(scheduler);
  return { scheduler, posted };
}

function maxInWindow(times: number[], windowMs: number): number {
  let best = 0;
  for (let end = 0, begin = 0; end < times.length; end += 1) {
    while (times[end]! - times[begin]! >= windowMs) begin += 1;
    best = Math.max(best, end - begin + 1);
  }
  return best;
}

describe('EditScheduler', () => {
  it('posts once, coalesces a burst to the latest state and skips unchanged renders', async () => {
    const transport = new RecordingTransport();
    const { scheduler, posted } = start(transport);
    for (let i = 0; i <= 50; i += 1) scheduler.update(1, body(`v${i}`), { isFinal: false });
    await scheduler.flush(5_000);
    const [post] = transport.calls;
    expect(post).toMatchObject({ kind: 'post', text: 'v0' });
    expect(posted).toEqual([[1, post!.messageId]]);
    expect(transport.shown.get(post!.messageId)).toBe('v50');
    expect(transport.edits().length).toBeLessThanOrEqual(2);
    const before = transport.calls.length;
    scheduler.update(1, body('v50'), { isFinal: false });
    scheduler.update(1, body('v50'), { isFinal: true });
    await scheduler.flush(1_000);
    expect(transport.calls.length).toBe(before);
  });

  it('keeps edits within the budget across many messages and delivers every final state', async () => {
    const transport = new RecordingTransport();
    const { scheduler } = start(transport);
    for (let key = 1; key <= 8; key += 1) scheduler.update(key, body(`${key}:start`), { isFinal: false });
    await waitFor(() => transport.calls.filter((call) => call.kind === 'post').length === 8, { timeoutMs: 2_000 });
    for (let round = 0; round < 5; round += 1) {
      for (let key = 1; key <= 8; key += 1) scheduler.update(key, body(`${key}:${round}`), { isFinal: false });
      await new Promise((resolve) => setImmediate(resolve));
    }
    for (let key = 1; key <= 8; key += 1) scheduler.update(key, body(`${key}:final`), { isFinal: true });
    // A stale update after the final one is ignored.
    scheduler.update(3, body('3:stale'), { isFinal: false });
    expect(await scheduler.flush(10_000)).toBe(true);
    const ids = transport.calls.filter((call) => call.kind === 'post').map((call) => call.messageId);
    for (const [index, id] of ids.entries()) expect(transport.shown.get(id)).toBe(`${index + 1}:final`);
    expect(maxInWindow(transport.edits().map((call) => call.at), 300)).toBeLessThanOrEqual(3);
  });

  it('re-posts a deleted message (10008) and reports the new id', async () => {
    const transport = new RecordingTransport();
    const { scheduler, posted } = start(transport);
    scheduler.update(7, body('a'), { isFinal: false });
    await scheduler.flush(1_000);
    const first = posted[0]![1];
    transport.failures.set(first, [10008]);
    scheduler.update(7, body('b'), { isFinal: false });
    await scheduler.flush(2_000);
    expect(posted.length).toBe(2);
    const second = posted[1]![1];
    expect(second).not.toBe(first);
    expect(transport.shown.get(second)).toBe('b');
    scheduler.update(7, body('c'), { isFinal: true });
    await scheduler.flush(2_000);
    expect(transport.shown.get(second)).toBe('c');
  });

  it('backs off after 30046 and still delivers the final state, as a new message', async () => {
    const transport = new RecordingTransport();
    const { scheduler, posted } = start(transport, { backoffMs: 60_000 });
    scheduler.update(9, body('a'), { isFinal: false });
    await scheduler.flush(1_000);
    const old = posted[0]![1];
    transport.failures.set(old, [30046, 30046, 30046]);
    scheduler.update(9, body('b'), { isFinal: false });
    await waitFor(() => transport.edits().length === 1, { timeoutMs: 2_000 });
    for (let i = 0; i < 10; i += 1) scheduler.update(9, body(`b${i}`), { isFinal: false });
    expect(await scheduler.flush(500)).toBe(false);
    expect(transport.edits().length).toBe(1);
    scheduler.update(9, body('final'), { isFinal: true });
    expect(await scheduler.flush(2_000)).toBe(true);
    expect(transport.edits().length).toBe(1);
    expect(posted.length).toBe(2);
    expect(transport.shown.get(posted[1]![1])).toBe('final');
  });

  it('treats a message over an hour old gently: one non-final edit per interval', async () => {
    const transport = new RecordingTransport(2 * 3_600_000);
    const { scheduler } = start(transport, { oldMessageIntervalMs: 60_000 });
    scheduler.update(1, body('a'), { isFinal: false });
    await scheduler.flush(1_000);
    scheduler.update(1, body('b'), { isFinal: false });
    await waitFor(() => transport.edits().length === 1, { timeoutMs: 2_000 });
    scheduler.update(1, body('c'), { isFinal: false });
    expect(await scheduler.flush(400)).toBe(false);
    expect(transport.edits().length).toBe(1);
    scheduler.update(1, body('done'), { isFinal: true });
    expect(await scheduler.flush(2_000)).toBe(true);
    expect(transport.edits().map((call) => call.text)).toEqual(['b', 'done']);
  });

  it('edits the stored message after a restart instead of posting a new one', async () => {
    const transport = new RecordingTransport();
    const { scheduler, posted } = start(transport);
    scheduler.update(4, body('after restart'), { isFinal: false, messageId: '1300000000000000000' });
    await scheduler.flush(1_000);
    expect(posted).toEqual([]);
    expect(transport.calls).toEqual([expect.objectContaining({ kind: 'edit', messageId: '1300000000000000000' })]);
  });

  it('giving up on a message is final for its id: one fresh post, and later updates never edit the old id again', async () => {
    const transport = new RecordingTransport();
    const { scheduler, posted } = start(transport, { retryMs: 5 });
    scheduler.update(3, body('a'), { isFinal: false });
    await scheduler.flush(1_000);
    const dead = posted[0]![1];
    transport.brokenMessages.set(dead, 50001);
    scheduler.update(3, body('b'), { isFinal: false });
    expect(await scheduler.flush(5_000)).toBe(true);
    expect(transport.edits().filter((c) => c.messageId === dead).length).toBe(5);
    expect(posted.length).toBe(2);
    const fresh = posted[1]![1];
    expect(transport.shown.get(fresh)).toBe('b');
    // Later updates, even one that names the dead id (as the store would after a restart), go to the fresh message.
    scheduler.update(3, body('c'), { isFinal: false });
    await scheduler.flush(2_000);
    scheduler.update(9, body('x'), { isFinal: false, messageId: dead });
    await scheduler.flush(2_000);
    expect(transport.edits().filter((c) => c.messageId === dead).length).toBe(5);
    expect(transport.shown.get(fresh)).toBe('c');
  });

  it('stops for good, without another round of edits, when the channel takes no fresh post either', async () => {
    const transport = new RecordingTransport();
    const { scheduler } = start(transport, { retryMs: 5 });
    scheduler.update(3, body('a'), { isFinal: false });
    await scheduler.flush(1_000);
    const dead = transport.calls[0]!.messageId;
    transport.brokenMessages.set(dead, 50013);
    transport.postFailure = 50013;
    scheduler.update(3, body('b'), { isFinal: false });
    expect(await scheduler.flush(5_000)).toBe(true);
    const callsAtGiveUp = transport.calls.length;
    expect(transport.calls.filter((c) => c.kind === 'post').length).toBe(2);
    for (const text of ['c', 'd', 'final']) {
      scheduler.update(3, body(text), { isFinal: text === 'final' });
      expect(await scheduler.flush(2_000)).toBe(true);
    }
    expect(transport.calls.length).toBe(callsAtGiveUp);
    expect(scheduler.abandonedReason(3)).toMatch(/not updated any more: Discord refused its edits and a fresh post \(Discord error 50013\)/);
  });
});

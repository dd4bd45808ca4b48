import { describe, expect, it } from 'vitest';
import type { FakeLlmRequest } from '../support/fake-llm-server.js';
import type { StoredMessage } from '../support/fake-discord.js';
import { waitFor } from '../support/wait-for.js';
import { ALLOWED_USER, ALPHA_CHANNEL, DEV_USER, DEVS_ROLE, OUTSIDER, TIMEOUT_MS, startHarness, ticker } from './harness.js';

function userContents(request: FakeLlmRequest): string[] {
  return (request.body.messages as Array<{ role: string; content: string | null }>)
    .filter((message) => message.role === 'user' || message.role === 'assistant')
    .map((message) => String(message.content ?? ''))
    .filter((content) => content.length > 0);
}

function botReplyTo(messageId: string) {
  return (message: StoredMessage): boolean => message.source === 'bot' && message.referencedMessageId === messageId;
}

describe('chat in an agent channel', () => {
  it('starts a branch; the model starts a background process whose status is posted, edited and finished', async () => {
    const h = await startHarness({ withLlm: true });
    const llm = h.llm!;
    llm.enqueue(
      { toolCalls: [{ name: 'start_process', arguments: { command: ticker(20, 100, 0), process_type: 'background', name: 'unit tests' } }] },
      { content: 'Started the unit tests; I will keep an eye on them.' },
    );
    const question = h.server.sendMessage({ channelId: ALPHA_CHANNEL, content: 'please run the unit tests', authorId: ALLOWED_USER });
    const answer = await h.server.waitForMessage(botReplyTo(question.id), { timeoutMs: TIMEOUT_MS });
    expect(answer.content).toBe('Started the unit tests; I will keep an eye on them.');
    expect(answer.channelId).toBe(ALPHA_CHANNEL);
    expect(userContents(llm.requests[0]!)).toContain('please run the unit tests');
    expect(h.server.requests.some((request) => request.method === 'POST' && request.path.endsWith(`/channels/${ALPHA_CHANNEL}/typing`))).toBe(true);

    const [record] = h.manager.list({ agentName: 'alpha' });
    expect(record).toMatchObject({ name: 'unit tests', processType: 'background' });
    const status = await h.server.waitForMessage((message) => message.embeds.length > 0 && message.channelId === ALPHA_CHANNEL, { timeoutMs: TIMEOUT_MS });
    expect(String((status.embeds[0] as { title: string }).title)).toMatch(/^unit tests · running$/);
    await h.server.waitForEdit((edit) => edit.messageId === status.id && /tick \d+/.test(String(edit.message.embeds[0]?.description)), { timeoutMs: TIMEOUT_MS });
    await h.server.waitForEdit((edit) => edit.messageId === status.id && String(edit.message.embeds[0]?.title) === 'unit tests · exited', { timeoutMs: TIMEOUT_MS });
    await waitFor(() => h.manager.find({ id: record!.id })?.discordMessageId === status.id, { timeoutMs: TIMEOUT_MS, what: 'the stored id' });
  });

  it('continues the branch a reply points at, starts a new one otherwise, and splits long answers', async () => {
    const h = await startHarness({ withLlm: true });
    const llm = h.llm!;
    const code = Array.from({ length: 120 }, (_, i) => `  step(${i}); // ${'explained '.repeat(3)}`).join('\n');
    const long = `Here is the plan:\n\`\`\`js\n${code}\n\`\`\`\nDone.`;
    llm.enqueue({ content: 'First answer.' }, { content: long }, { content: 'A fresh start.' }, { content: 'Still the same branch.' });

    const first = h.server.sendMessage({ channelId: ALPHA_CHANNEL, content: 'hello there', authorId: DEV_USER, roles: [DEVS_ROLE] });
    const answer = await h.server.waitForMessage(botReplyTo(first.id), { timeoutMs: TIMEOUT_MS });
    // The fake shows the post before the bot has its id back; a person replies later than that.
    await waitFor(() => h.agents.repo.branchForPost(answer.id), { timeoutMs: TIMEOUT_MS, what: 'the post recorded' });

    const followUp = h.server.sendMessage({ channelId: ALPHA_CHANNEL, content: 'give me the long version', authorId: DEV_USER, referencedMessageId: answer.id });
    const parts = await waitFor(() => {
      const found = h.server.messages(ALPHA_CHANNEL).filter((message) => message.source === 'bot' && message.id > followUp.id);
      return found.length >= 2 && found.at(-1)!.content.endsWith('Done.') ? found : undefined;
    }, { timeoutMs: TIMEOUT_MS, what: 'the long answer in parts' });
    await waitFor(() => h.agents.repo.branchForPost(parts.at(-1)!.id), { timeoutMs: TIMEOUT_MS, what: 'the post recorded' });
    expect(userContents(llm.requests[1]!)).toEqual(['hello there', 'First answer.', 'give me the long version']);
    expect(parts[0]!.referencedMessageId).toBe(followUp.id);
    for (const part of parts) {
      expect(part.content.length).toBeLessThanOrEqual(2000);
      expect((part.content.match(/^```/gm) ?? []).length % 2).toBe(0);
    }
    expect(parts.map((part) => part.content).join('\n').replace(/\n```\n```js\n/g, '\n')).toBe(long);

    const fresh = h.server.sendMessage({ channelId: ALPHA_CHANNEL, content: 'something else', authorId: DEV_USER });
    await h.server.waitForMessage(botReplyTo(fresh.id), { timeoutMs: TIMEOUT_MS });
    expect(userContents(llm.requests[2]!)).toEqual(['something else']);

    // A reply to the first part of the split answer continues that branch too.
    const toPart = h.server.sendMessage({ channelId: ALPHA_CHANNEL, content: 'about part one', authorId: DEV_USER, referencedMessageId: parts[0]!.id });
    await h.server.waitForMessage(botReplyTo(toPart.id), { timeoutMs: TIMEOUT_MS });
    expect(userContents(llm.requests[3]!).slice(0, 3)).toEqual(['hello there', 'First answer.', 'give me the long version']);
    expect(userContents(llm.requests[3]!).at(-1)).toBe('about part one');
  });

  it('answers a user outside the allow-list with one refusal and never reaches the model', async () => {
    const h = await startHarness({ withLlm: true });
    const first = h.server.sendMessage({ channelId: ALPHA_CHANNEL, content: 'let me in', authorId: OUTSIDER });
    const refusal = await h.server.waitForMessage(botReplyTo(first.id), { timeoutMs: TIMEOUT_MS });
    expect(refusal.content).toMatch(/not on agent \*\*alpha\*\*'s allow-list/);
    const second = h.server.sendMessage({ channelId: ALPHA_CHANNEL, content: 'please?', authorId: OUTSIDER });
    h.llm!.enqueue({ content: 'Hi owner.' });
    const allowed = h.server.sendMessage({ channelId: ALPHA_CHANNEL, content: 'hi', authorId: ALLOWED_USER });
    await h.server.waitForMessage(botReplyTo(allowed.id), { timeoutMs: TIMEOUT_MS });
    expect(h.llm!.requests).toHaveLength(1);
    expect(userContents(h.llm!.requests[0]!)).toEqual(['hi']);
    expect(h.server.messages(ALPHA_CHANNEL).filter(botReplyTo(second.id))).toEqual([]);
  });
});

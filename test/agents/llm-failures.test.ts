import { describe, expect, it } from 'vitest';
import { CONTINUE_PROMPT, CUT_NOTE } from '../../src/agents/branch-runner.js';
import { messagesOf, startHarness, startLlm } from './harness.js';

describe('a branch when the LLM fails', () => {
  it('waits for Retry-After on 429, then answers', async () => {
    const h = await startHarness();
    h.llm!.enqueue({ status: 429, headers: { 'retry-after': '0.2' }, body: { error: { message: 'Rate limit reached', type: 'requests' } } }, { content: 'Here I am.' });
    const outcome = await h.agents.handleMessage({ agentName: 'main', authorId: 'u-1', content: 'hi', messageId: 'in-1' });
    await outcome.finished;
    const [first, second] = h.llm!.requests;
    expect(second!.receivedAt - first!.receivedAt).toBeGreaterThanOrEqual(190);
    expect(h.frontEnd.posts.map((p) => p.text)).toEqual(['Here I am.']);
  });

  it('posts an actionable error when the LLM does not answer in time, and a reply tries again', async () => {
    const h = await startHarness({ llmClient: { timeoutMs: 300, maxRetries: 0 } });
    // A wait for the first byte is retried once.
    h.llm!.enqueue({ hang: true }, { hang: true });
    const outcome = await h.agents.handleMessage({ agentName: 'main', authorId: 'u-1', content: 'hi', messageId: 'in-1' });
    await outcome.finished;
    const [error] = h.frontEnd.posts;
    expect(error!.text).toMatch(/^⚠️ I could not finish: The LLM endpoint did not answer in time: no answer from .* within 300 ms/);
    expect(error!.text).toMatch(/\(twice\)\. The model may be loading, queued or slow: raise LLM_TIMEOUT_MS if this repeats, then reply to this message to try again\.$/);
    expect(h.llm!.requests).toHaveLength(2);
    expect(h.agents.branch(outcome.branchId!)!.status).toBe('idle');

    h.llm!.enqueue({ content: 'Better now.' });
    const retry = await h.agents.handleMessage({ agentName: 'main', authorId: 'u-1', content: 'again?', messageId: 'in-2', replyToMessageId: error!.id });
    await retry.finished;
    expect(retry.branchId).toBe(outcome.branchId);
    expect(h.frontEnd.posts.at(-1)!.text).toBe('Better now.');
  });

  it('posts what to fix when the endpoint refuses the key (401), without showing the key', async () => {
    const llm = await startLlm({ expectedKey: 'sk-right' });
    const h = await startHarness({ llm, llmClient: { apiKey: 'sk-wrong-key-123' } });
    const outcome = await h.agents.handleMessage({ agentName: 'main', authorId: 'u-1', content: 'hi', messageId: 'in-1' });
    await outcome.finished;
    expect(llm.requests).toHaveLength(1);
    const [post] = h.frontEnd.posts;
    expect(post!.text).toContain('The LLM endpoint refused the key');
    expect(post!.text).toContain('Fix LLM_API_KEY');
    expect(post!.text).not.toContain('sk-wrong-key-123');
    expect(post!.replyTo).toBe('in-1');
  });

  it('continues an answer cut at the output limit once, and says so when it is cut again', async () => {
    const h = await startHarness();
    h.llm!.enqueue({ content: 'Part one, ', finishReason: 'length' }, { content: 'part two.' });
    const outcome = await h.agents.handleMessage({ agentName: 'main', authorId: 'u-1', content: 'write a lot', messageId: 'in-1' });
    await outcome.finished;
    expect(h.frontEnd.posts.map((p) => p.text)).toEqual(['Part one, part two.']);
    expect(messagesOf(h.llm!.requests[1]!).slice(-2)).toEqual([{ role: 'assistant', content: 'Part one, ' }, { role: 'user', content: CONTINUE_PROMPT }]);

    h.llm!.enqueue({ content: 'Again one, ', finishReason: 'length' }, { content: 'again two', finishReason: 'length' });
    const again = await h.agents.handleMessage({ agentName: 'main', authorId: 'u-1', content: 'more', messageId: 'in-2', replyToMessageId: h.frontEnd.posts[0]!.id });
    await again.finished;
    expect(h.frontEnd.posts.at(-1)!.text).toBe(`Again one, again two\n\n${CUT_NOTE}`);
    expect(h.llm!.requests).toHaveLength(4);
  });

  it('a turn that hits the step limit after tool results leaves a history the next request can use', async () => {
    const h = await startHarness({ maxSteps: 1 });
    h.llm!.enqueue({ toolCalls: [{ name: 'list_processes', arguments: {} }] });
    const outcome = await h.agents.handleMessage({ agentName: 'main', authorId: 'u-1', content: 'look', messageId: 'in-1' });
    await outcome.finished;
    expect(h.frontEnd.posts[0]!.text).toMatch(/step limit/);

    h.llm!.enqueue({ content: 'Nothing runs.' });
    const next = await h.agents.handleMessage({ agentName: 'main', authorId: 'u-1', content: 'continue', messageId: 'in-2', replyToMessageId: h.frontEnd.posts[0]!.id });
    await next.finished;
    expect(h.frontEnd.posts.at(-1)!.text).toBe('Nothing runs.');
    const stepLimitRequest = messagesOf(h.llm!.requests[1]!);
    expect(stepLimitRequest.slice(-3).map((m) => m.role)).toEqual(['tool', 'assistant', 'user']);
    expect(stepLimitRequest.at(-2)!.content).toBe('(I stopped here: the step limit of 1 steps.)');
  });
});

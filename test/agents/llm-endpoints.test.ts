// The same conversation against a local endpoint that behaves like each provider, through the real LlmClient and branch loop.
import { afterEach, describe, expect, it } from 'vitest';
import type { FakeLlmRequest, FakeLlmResponse, FakeLlmServer } from '../support/fake-llm-server.js';
import { LLM_ENDPOINTS, type LlmEndpoint } from '../support/llm-endpoints/index.js';
import { messagesOf, startHarness, type Harness } from './harness.js';

const servers: FakeLlmServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

const call = (filter: string) => ({ name: 'list_processes', arguments: { filter } });

/** The model's side of the conversation, decided by the last user message and the tool rounds since it. */
function conversation(endpoint: LlmEndpoint) {
  return (request: FakeLlmRequest): FakeLlmResponse => {
    const messages = messagesOf(request);
    const lastUser = messages.map((m) => m.role).lastIndexOf('user');
    const asked = messages[lastUser]!.content ?? '';
    const rounds = messages.slice(lastUser).filter((m) => m.role === 'assistant' && m.tool_calls?.length).length;
    if (asked === 'What runs here?') {
      if (rounds === 0) return { toolCalls: [call('running'), call('exited')] };
      if (rounds === 1) return { toolCalls: [call('all')] };
      return { content: 'Nothing runs here.' };
    }
    if (asked === 'And the lost ones?') return rounds === 0 ? { toolCalls: [call('lost')] } : endpoint.failure;
    if (asked === 'Try again') return { content: 'No lost processes.' };
    if (asked === 'One more look, please') return rounds === 0 ? { toolCalls: [call('all'), call('running')] } : { content: 'Still nothing.' };
    return { content: `unexpected: ${asked}` };
  };
}

async function startOn(endpoint: LlmEndpoint, options: { home?: string; frontEndPrefix?: string } = {}): Promise<{ h: Harness; server: FakeLlmServer }> {
  const server = await endpoint.start();
  servers.push(server);
  server.setDefault(conversation(endpoint));
  const h = await startHarness({
    llm: server, llmClient: { model: endpoint.model, retryBaseMs: 5, maxRetries: 2 }, ...options,
  });
  return { h, server };
}

async function say(h: Harness, content: string, replyTo?: string): Promise<string> {
  const before = h.frontEnd.posts.length;
  const outcome = await h.agents.handleMessage({ agentName: 'main', authorId: 'u-1', content, messageId: `in-${content.length}`, ...(replyTo && { replyToMessageId: replyTo }) });
  await outcome.finished;
  expect(h.frontEnd.posts.length, 'one answer per message').toBe(before + 1);
  return h.frontEnd.posts.at(-1)!.text;
}

describe('the same conversation passes on every endpoint', () => {
  it.for(LLM_ENDPOINTS.map((endpoint, i) => ({ endpoint, next: LLM_ENDPOINTS[(i + 1) % LLM_ENDPOINTS.length]!, label: endpoint.name })))(
    '$label',
    async ({ endpoint, next }) => {
      const { h, server } = await startOn(endpoint);

      expect(await say(h, 'What runs here?')).toBe('Nothing runs here.');
      const firstTurn = server.requests.slice(0, 3);
      expect(firstTurn.map((r) => messagesOf(r).filter((m) => m.role === 'tool').length)).toEqual(endpoint.isParallel ? [0, 2, 3] : [0, 1, 2]);

      const failed = await say(h, 'And the lost ones?', h.frontEnd.posts.at(-1)!.id);
      expect(failed).toMatch(/^⚠️ I could not finish: /);
      expect(failed).toMatch(endpoint.failureSays);
      expect(await say(h, 'Try again', h.frontEnd.posts.at(-1)!.id)).toBe('No lost processes.');
      const lastPost = h.frontEnd.posts.at(-1)!.id;
      await h.stop();

      // The same branch, after a restart on another endpoint.
      const { h: after, server: nextServer } = await startOn(next, { home: h.home, frontEndPrefix: 'n' });
      expect(await say(after, 'One more look, please', lastPost)).toBe('Still nothing.');
      expect(nextServer.requests.length).toBeGreaterThanOrEqual(2);
    },
  );
});

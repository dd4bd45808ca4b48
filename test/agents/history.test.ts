import { describe, expect, it } from 'vitest';
import { BRIDGE_CONTENT, EMPTY_ANSWER_CONTENT, enforceInvariants, INTERRUPTED_RESULT, toWireMessages } from '../../src/agents/history.js';
import type { ChatMessage, ToolCall } from '../../src/agents/llm-client.js';

const call = (id: string, extra?: Record<string, unknown>): ToolCall => ({
  id, type: 'function', function: { name: 'list_processes', arguments: '{}' }, ...(extra && { extra }),
});
const result = (id: string, content = '[]'): ChatMessage => ({ role: 'tool', tool_call_id: id, content });
const user = (content: string): ChatMessage => ({ role: 'user', content });
const HERE = 'http://here/v1/chat/completions m';
const ELSEWHERE = 'http://elsewhere/v1/chat/completions m';

/** The invariants, checked on any wire history. */
function checkInvariants(messages: Array<Record<string, any>>): string[] {
  const problems: string[] = [];
  messages.forEach((m, i) => {
    const calls = (m.tool_calls ?? []) as Array<{ id: string }>;
    if (m.role === 'assistant' && !calls.length && !(typeof m.content === 'string' && m.content.trim())) problems.push(`${i}: assistant without content or calls`);
    if (m.role === 'assistant' && !calls.length && m.content === null) problems.push(`${i}: content null without calls`);
    for (const c of calls) if (!c.id) problems.push(`${i}: empty id`);
    if (m.role === 'tool' && !m.tool_call_id) problems.push(`${i}: empty tool_call_id`);
    const previous = messages[i - 1];
    if (previous?.role === 'tool' && (m.role === 'user' || m.role === 'system')) problems.push(`${i}: ${m.role} after tool`);
    if (calls.length) {
      const following = messages.slice(i + 1, i + 1 + calls.length);
      if (following.map((f) => f.role === 'tool' && f.tool_call_id).join() !== calls.map((c) => c.id).join()) problems.push(`${i}: calls not answered right after`);
    }
    if (m.role === 'tool') {
      let j = i - 1;
      while (j >= 0 && messages[j]!.role === 'tool') j--;
      if (!(messages[j]?.tool_calls ?? []).some((c: { id: string }) => c.id === m.tool_call_id)) problems.push(`${i}: result without its call`);
    }
  });
  return problems;
}

describe('history invariants, before each request', () => {
  const broken: Array<{ name: string; history: ChatMessage[] }> = [
    { name: 'a step stopped between a call and its results', history: [user('go'), { role: 'assistant', content: null, tool_calls: [call('a'), call('b')] }, result('b'), user('are you there?')] },
    { name: 'a failed step: results, then the next message', history: [user('go'), { role: 'assistant', content: null, tool_calls: [call('a')] }, result('a'), user('try again')] },
    { name: 'a queued message slotted right after tool results', history: [user('go'), { role: 'assistant', content: null, tool_calls: [call('a')] }, result('a'), user('[hook] the server is up')] },
    { name: 'an empty answer and a null answer', history: [user('go'), { role: 'assistant', content: '' }, user('again'), { role: 'assistant', content: null }, user('and?')] },
    { name: 'a result without its call, and a result out of place', history: [user('go'), result('ghost'), { role: 'assistant', content: 'hm' }, user('x')] },
    { name: 'calls without ids (Gemini 2.x, LM Studio) and results without ids', history: [user('go'), { role: 'assistant', content: null, tool_calls: [call(''), call('')] }, result('', 'one'), result('', 'two'), user('ok')] },
  ];

  it.for(broken)('$name: fixed', ({ history }) => {
    expect(checkInvariants(toWireMessages(history, HERE))).toEqual([]);
    expect(checkInvariants(toWireMessages(history, ELSEWHERE))).toEqual([]);
  });

  it('answers an interrupted call, bridges a tool message and a user message, and keeps results in call order', () => {
    const fixed = enforceInvariants(broken[0]!.history);
    expect(fixed.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'tool', 'assistant', 'user']);
    expect(fixed[2]).toEqual({ role: 'tool', tool_call_id: 'a', content: INTERRUPTED_RESULT });
    expect(fixed[3]).toEqual(result('b'));
    expect(fixed[4]).toEqual({ role: 'assistant', content: BRIDGE_CONTENT });
  });

  it('gives empty answers a content, and keeps results of id-less calls by position', () => {
    expect(enforceInvariants(broken[3]!.history).filter((m) => m.role === 'assistant').map((m) => m.content)).toEqual([EMPTY_ANSWER_CONTENT, EMPTY_ANSWER_CONTENT]);
    const fixed = enforceInvariants(broken[5]!.history);
    const ids = (fixed[1] as { tool_calls: ToolCall[] }).tool_calls.map((c) => c.id);
    expect(ids.every((id) => /^[a-zA-Z0-9]{9}$/.test(id))).toBe(true);
    expect(fixed.slice(2, 4)).toEqual([result(ids[0]!, 'one'), result(ids[1]!, 'two')]);
  });

  it('changes nothing in a valid history', () => {
    const valid: ChatMessage[] = [user('go'), { role: 'assistant', content: null, tool_calls: [call('a')] }, result('a'), { role: 'assistant', content: 'done' }, user('thanks')];
    expect(enforceInvariants(valid)).toEqual(valid);
  });
});

describe('the wire form, per endpoint', () => {
  const history: ChatMessage[] = [
    user('go'),
    { role: 'assistant', content: null, tool_calls: [call('call_abc', { extra_content: { google: { thought_signature: 'sig' } } }), call('call_def')], extra: { reasoning_content: 'think' }, endpoint: HERE },
    result('call_abc', '1'),
    result('call_def', '2'),
    { role: 'assistant', content: 'done', extra: { reasoning: 'r' }, endpoint: HERE },
  ];

  it('sends back every field to the endpoint that wrote them', () => {
    const wire = toWireMessages([...history, user('more')], HERE);
    expect(wire[1]).toEqual({
      role: 'assistant', content: null, reasoning_content: 'think',
      tool_calls: [{ id: 'call_abc', type: 'function', function: { name: 'list_processes', arguments: '{}' }, extra_content: { google: { thought_signature: 'sig' } } }, { id: 'call_def', type: 'function', function: { name: 'list_processes', arguments: '{}' } }],
    });
    expect(wire[4]).toEqual({ role: 'assistant', content: 'done', reasoning: 'r' });
  });

  it('sends portable fields only elsewhere: one call per message, string content, 9-character ids matched by their results', () => {
    const wire = toWireMessages([...history, user('more')], ELSEWHERE);
    expect(wire.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant', 'tool', 'assistant', 'user']);
    const [first, second] = [wire[1]!, wire[3]!] as unknown as [{ tool_calls: ToolCall[]; content: string }, { tool_calls: ToolCall[]; content: string }];
    for (const [i, message] of [first, second].entries()) {
      expect(Object.keys(message).sort()).toEqual(['content', 'role', 'tool_calls']);
      expect(message.content).toBe('');
      expect(message.tool_calls[0]!.id).toMatch(/^[a-zA-Z0-9]{9}$/);
      expect(wire[2 + 2 * i]).toEqual({ role: 'tool', tool_call_id: message.tool_calls[0]!.id, content: String(i + 1) });
    }
    expect(first.tool_calls[0]!.id).not.toBe(second.tool_calls[0]!.id);
    expect(wire[5]).toEqual({ role: 'assistant', content: 'done' });
    // The same ids on every request, so a conversation reads the same each time.
    expect(toWireMessages([...history, user('more')], ELSEWHERE)).toEqual(wire);
  });

  it('keeps ids that already have the portable form', () => {
    const wire = toWireMessages([user('go'), { role: 'assistant', content: 'x', tool_calls: [call('Ab3dE6gH9')], endpoint: HERE }, result('Ab3dE6gH9'), user('ok')], ELSEWHERE);
    expect(wire[1]!.tool_calls).toEqual([{ id: 'Ab3dE6gH9', type: 'function', function: { name: 'list_processes', arguments: '{}' } }]);
    expect(wire[1]!.content).toBe('x');
  });
});

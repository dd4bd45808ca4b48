// The local endpoints refuse what their provider refuses, with the provider's error body: otherwise the conversation
// tests in test/agents/llm-endpoints.test.ts would prove nothing.
import { afterEach, describe, expect, it } from 'vitest';
import type { FakeLlmServer } from './fake-llm-server.js';
import { anthropic } from './llm-endpoints/anthropic.js';
import { deepseek } from './llm-endpoints/deepseek.js';
import type { LlmEndpoint } from './llm-endpoints/endpoint.js';
import { gemini25, gemini3 } from './llm-endpoints/gemini.js';
import { groq } from './llm-endpoints/groq.js';
import { llamaCppEndpoint } from './llm-endpoints/llama-cpp.js';
import { lmStudio } from './llm-endpoints/lm-studio.js';
import { mistral } from './llm-endpoints/mistral.js';
import { ollama } from './llm-endpoints/ollama.js';
import { openai } from './llm-endpoints/openai.js';
import { openrouter } from './llm-endpoints/openrouter.js';
import { vllmEndpoint } from './llm-endpoints/vllm.js';

const servers: FakeLlmServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

const call = (id: string, extra: Record<string, unknown> = {}) => ({ id, type: 'function', function: { name: 'list_processes', arguments: '{}' }, ...extra });
const askedAndCalled = (id: string, callExtra: Record<string, unknown> = {}, messageExtra: Record<string, unknown> = {}) => [
  { role: 'system', content: 's' }, { role: 'user', content: 'u' },
  { role: 'assistant', content: null, tool_calls: [call(id, callExtra)], ...messageExtra }, { role: 'tool', tool_call_id: id, content: '[]' },
];
const tool = (parameters: Record<string, unknown> = { type: 'object', properties: {} }, name = 'list_processes') => ({ type: 'function', function: { name, description: 'd', parameters } });

interface Refusal {
  name: string;
  endpoint: LlmEndpoint;
  body: Record<string, unknown>;
  status: number;
  /** The error body, as JSON text. */
  says: RegExp;
}

const REFUSALS: Refusal[] = [
  { name: 'OpenAI: unknown argument', endpoint: openai, body: { messages: askedAndCalled('call_1'), foo: 1 }, status: 400, says: /"Unrecognized request argument supplied: foo"/ },
  { name: 'OpenAI: empty tool_calls', endpoint: openai, body: { messages: [{ role: 'user', content: 'u' }, { role: 'assistant', content: 'a', tool_calls: [] }, { role: 'user', content: 'v' }] }, status: 400, says: /empty array/ },
  { name: 'OpenAI: unanswered call', endpoint: openai, body: { messages: askedAndCalled('call_1').slice(0, 3).concat({ role: 'user', content: 'v' }) }, status: 400, says: /did not have response messages: call_1/ },
  { name: 'OpenAI: result without a call', endpoint: openai, body: { messages: [{ role: 'user', content: 'u' }, { role: 'tool', tool_call_id: 'x', content: '' }] }, status: 400, says: /must be a response to a preceeding message/ },
  { name: 'OpenAI: bad tool name', endpoint: openai, body: { messages: [{ role: 'user', content: 'u' }], tools: [tool(undefined, 'list processes')] }, status: 400, says: /does not match pattern/ },
  { name: 'OpenAI: o1-mini with a system message', endpoint: openai, body: { model: 'o1-mini', messages: [{ role: 'system', content: 's' }, { role: 'user', content: 'u' }] }, status: 400, says: /does not support 'system' with this model/ },
  { name: 'OpenAI: max_tokens on o3', endpoint: openai, body: { model: 'o3', max_tokens: 10, messages: [{ role: 'user', content: 'u' }] }, status: 400, says: /Use 'max_completion_tokens' instead/ },
  { name: 'Anthropic: tool_use without tool_result', endpoint: anthropic, body: { messages: askedAndCalled('toolu_1').slice(0, 3).concat({ role: 'user', content: 'v' }) }, status: 400, says: /"type":"invalid_request_error".*`tool_use` ids were found without `tool_result` blocks immediately after: toolu_1/ },
  { name: 'Anthropic: n = 2', endpoint: anthropic, body: { n: 2, messages: [{ role: 'user', content: 'u' }] }, status: 400, says: /n=1/ },
  { name: 'Gemini: unknown schema key', endpoint: gemini25, body: { messages: [{ role: 'user', content: 'u' }], tools: [tool({ type: 'object', properties: {}, additionalProperties: false })] }, status: 400, says: /^\[\{"error":\{"code":400,"message":"Invalid JSON payload received. Unknown name \\"additionalProperties\\"/ },
  { name: 'Gemini: a number enum', endpoint: gemini25, body: { messages: [{ role: 'user', content: 'u' }], tools: [tool({ type: 'object', properties: { n: { type: 'integer', enum: [1, 2] } } })] }, status: 400, says: /TYPE_STRING/ },
  { name: 'Gemini: a result whose call is unknown', endpoint: gemini25, body: { messages: [{ role: 'user', content: 'u' }, { role: 'assistant', content: null, tool_calls: [call('a')] }, { role: 'tool', tool_call_id: 'b', content: '' }] }, status: 400, says: /function_response.name: Name cannot be empty/ },
  { name: 'Gemini 3: a call without its thought signature', endpoint: gemini3, body: { messages: askedAndCalled('function-call-1') }, status: 400, says: /Function call is missing a thought_signature/ },
  { name: 'Gemini 3: a signature it never issued', endpoint: gemini3, body: { messages: askedAndCalled('function-call-1', { extra_content: { google: { thought_signature: 'Zm9yZ2Vk' } } }) }, status: 400, says: /Corrupted thought signature/ },
  { name: 'OpenRouter: reasoning_details not preserved', endpoint: openrouter, body: { messages: askedAndCalled('tool_0_x') }, status: 400, says: /"message":"Provider returned error","metadata":\{"raw":".*missing a thought_signature/ },
  { name: 'Groq: reasoning_content on an assistant message', endpoint: groq, body: { messages: askedAndCalled('fc_1', {}, { reasoning_content: 'r' }) }, status: 400, says: /property 'reasoning_content' is unsupported/ },
  { name: 'Groq: name on a message', endpoint: groq, body: { messages: [{ role: 'user', content: 'u', name: 'bob' }] }, status: 400, says: /property 'name' is unsupported/ },
  { name: 'Groq: logprobs', endpoint: groq, body: { logprobs: true, messages: [{ role: 'user', content: 'u' }] }, status: 400, says: /logprobs/ },
  { name: 'Mistral: an id of another provider', endpoint: mistral, body: { messages: askedAndCalled('call_abc123') }, status: 400, says: /"object":"error","message":"Tool call id was call_abc123 but must be a-z, A-Z, 0-9, with a length of 9\."/ },
  { name: 'Mistral: user after tool', endpoint: mistral, body: { messages: askedAndCalled('abcDEF123').concat({ role: 'user', content: 'v' }) }, status: 400, says: /Unexpected role 'user' after role 'tool'.*"code":"3230"/ },
  { name: 'Mistral: last message from the assistant', endpoint: mistral, body: { messages: [{ role: 'user', content: 'u' }, { role: 'assistant', content: 'a' }] }, status: 400, says: /Expected last role User or Tool/ },
  { name: 'DeepSeek: reasoning_content left out in the turn', endpoint: deepseek, body: { messages: askedAndCalled('call_00_x') }, status: 400, says: /Missing `reasoning_content` field in the assistant message at message index 2/ },
  { name: 'Ollama: null content without calls', endpoint: ollama, body: { messages: [{ role: 'user', content: 'u' }, { role: 'assistant', content: null }, { role: 'user', content: 'v' }] }, status: 400, says: /invalid message content type: <nil>/ },
  { name: 'Ollama: arguments that are not JSON', endpoint: ollama, body: { messages: [{ role: 'user', content: 'u' }, { role: 'assistant', content: '', tool_calls: [{ id: 'c', type: 'function', function: { name: 'x', arguments: '{' } }] }, { role: 'tool', tool_call_id: 'c', content: '' }] }, status: 400, says: /invalid tool call arguments/ },
  { name: 'vLLM: no tool-call parser', endpoint: vllmEndpoint(false), body: { messages: [{ role: 'user', content: 'u' }], tools: [tool()] }, status: 400, says: /"auto\\" tool choice requires --enable-auto-tool-choice.*"type":"BadRequestError"/ },
  { name: 'vLLM: two calls in one message (Llama 3 template)', endpoint: vllmEndpoint(), body: { messages: [{ role: 'user', content: 'u' }, { role: 'assistant', content: null, tool_calls: [call('a'), call('b')] }, { role: 'tool', tool_call_id: 'a', content: '' }, { role: 'tool', tool_call_id: 'b', content: '' }] }, status: 400, says: /only supports single tool-calls at once/ },
  { name: 'vLLM: unknown model', endpoint: vllmEndpoint(), body: { model: 'llama-4', messages: [{ role: 'user', content: 'u' }] }, status: 404, says: /The model `llama-4` does not exist\./ },
  { name: 'llama.cpp: tools without --jinja', endpoint: llamaCppEndpoint(false), body: { messages: [{ role: 'user', content: 'u' }], tools: [tool()] }, status: 500, says: /tools param requires --jinja flag/ },
  { name: 'LM Studio: null content', endpoint: lmStudio, body: { messages: askedAndCalled('1') }, status: 400, says: /^\{"error":"Invalid 'content': 'content' field must be a string or an array of objects\."\}$/ },
  { name: 'LM Studio: an empty id', endpoint: lmStudio, body: { messages: [{ role: 'user', content: 'u' }, { role: 'assistant', content: '', tool_calls: [call('')] }, { role: 'tool', tool_call_id: '', content: '' }] }, status: 400, says: /Invalid 'messages' in payload/ },
];

describe('each local endpoint refuses what its provider refuses', () => {
  it.for(REFUSALS)('$name', async ({ endpoint, body, status, says }) => {
    const server = await endpoint.start();
    servers.push(server);
    server.setDefault(() => ({ content: 'accepted' }));
    const response = await fetch(`${server.baseUrl}/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: endpoint.model, ...body }),
    });
    const text = await response.text();
    expect(response.status, text).toBe(status);
    expect(text).toMatch(says);
  });
});

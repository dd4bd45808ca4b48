import { FakeLlmServer } from '../fake-llm-server.js';
import { findToolAnswerProblem, messagesOf, openAiError, randomAlnum, reshapeMessage, type LlmEndpoint } from './endpoint.js';

// Top-level arguments of Chat Completions; anything else is 400 "Unrecognized request argument supplied".
const KNOWN_ARGUMENTS = new Set([
  'model', 'messages', 'tools', 'tool_choice', 'parallel_tool_calls', 'temperature', 'top_p', 'max_tokens', 'max_completion_tokens',
  'stream', 'stream_options', 'stop', 'n', 'seed', 'response_format', 'user', 'metadata', 'store', 'reasoning_effort', 'logprobs',
  'top_logprobs', 'frequency_penalty', 'presence_penalty', 'logit_bias', 'service_tier', 'modalities', 'audio', 'prediction',
  'web_search_options', 'verbosity', 'functions', 'function_call', 'prompt_cache_key', 'safety_identifier',
]);
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
/** o-series and gpt-5 models: no `max_tokens`, temperature 1 only (cherry-studio#1403); o1-mini/o1-preview: no system (agent-framework#1077). */
const REASONING_MODEL = /^(o\d|gpt-5)/;
const NO_SYSTEM_MODEL = /^o1-(mini|preview)/;

/**
 * api.openai.com/v1: unknown arguments are 400 (langchain_dart#712), `tool_calls: []` is 400 (openai-node#1341), every
 * call must be answered right after it (litellm#10083), at most 128 tools named `^[a-zA-Z0-9_-]{1,64}$`; parallel
 * calls with `content: null` (function-calling guide); billing errors as 429 `insufficient_quota`.
 */
export const openai: LlmEndpoint = {
  name: 'OpenAI',
  model: 'gpt-4o-mini',
  isParallel: true,
  failure: {
    status: 429,
    body: { error: { message: 'You exceeded your current quota, please check your plan and billing details.', type: 'insufficient_quota', param: null, code: 'insufficient_quota' } },
  },
  failureSays: /You exceeded your current quota/,
  start: (options = {}) => FakeLlmServer.start({
    basePath: '/v1',
    ...options,
    validate: (request) => {
      const body = request.body as Record<string, unknown>;
      const unknown = Object.keys(body).find((key) => !KNOWN_ARGUMENTS.has(key));
      if (unknown) return openAiError(400, `Unrecognized request argument supplied: ${unknown}`);
      const model = String(body.model);
      if (REASONING_MODEL.test(model) && 'max_tokens' in body) {
        return openAiError(400, "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.", { type: 'invalid_request_error', param: 'max_tokens', code: 'unsupported_parameter' });
      }
      if (REASONING_MODEL.test(model) && body.temperature !== undefined && body.temperature !== 1) {
        return openAiError(400, "Unsupported value: 'temperature' does not support 0 with this model. Only the default (1) value is supported.", { param: 'temperature', code: 'unsupported_value' });
      }
      if (NO_SYSTEM_MODEL.test(model) && messagesOf(request).some((m) => m.role === 'system')) {
        return openAiError(400, "Unsupported value: 'messages[0].role' does not support 'system' with this model.", { param: 'messages[0].role', code: 'unsupported_value' });
      }
      const tools = Array.isArray(body.tools) ? body.tools as Array<{ function?: { name?: string } }> : [];
      if (tools.length > 128) return openAiError(400, `Invalid 'tools': array too long. Expected an array with maximum length 128, but got an array with length ${tools.length} instead.`, { param: 'tools', code: 'array_above_max_length' });
      const badName = tools.findIndex((tool) => !TOOL_NAME.test(tool.function?.name ?? ''));
      if (badName >= 0) return openAiError(400, `Invalid 'tools[${badName}].function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.`, { param: `tools[${badName}].function.name`, code: 'invalid_value' });
      const messages = messagesOf(request);
      const empty = messages.findIndex((m) => Array.isArray(m.tool_calls) && m.tool_calls.length === 0);
      if (empty >= 0) return openAiError(400, `Invalid 'messages[${empty}].tool_calls': empty array. Expected an array with minimum length 1, but got an empty array instead.`, { param: `messages[${empty}].tool_calls`, code: 'empty_array' });
      const problem = findToolAnswerProblem(messages);
      if (problem?.kind === 'unanswered') return openAiError(400, `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${problem.ids.join(', ')}`, { param: `messages.[${problem.index}].role` });
      if (problem?.kind === 'orphan') return openAiError(400, "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.", { param: `messages.[${problem.index}].role` });
      return options.validate?.(request);
    },
    shapeCompletion: (completion) => {
      reshapeMessage(completion, {
        isParallel: true,
        reshapeCall: (call) => ({ ...call, id: `call_${randomAlnum(24)}` }),
        extra: () => ({ refusal: null, annotations: [] }),
      });
      return completion;
    },
  }),
};

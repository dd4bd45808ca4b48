import { FakeLlmServer } from '../fake-llm-server.js';
import { messagesOf, reshapeMessage, toolCallsOf, type LlmEndpoint } from './endpoint.js';

/**
 * LM Studio's server (localhost:1234/v1; lmstudio-bug-tracker #261, #830, #1318, optillm#272): `content: null` on an assistant message is 400, an empty tool call id
 * echoed back is 400, text answers carry `tool_calls: []`, tool calls sometimes come with `id: ""`, errors are
 * `{"error": "<string>"}`.
 */
export const lmStudio: LlmEndpoint = {
  name: 'LM Studio',
  model: 'qwen2.5-7b-instruct',
  isParallel: true,
  failure: { status: 404, body: { error: 'No models loaded. Please load a model in the developer page or use the `lms load` command.' } },
  failureSays: /No models loaded/,
  start: (options = {}) => FakeLlmServer.start({
    basePath: '/v1',
    ...options,
    validate: (request) => {
      for (const message of messagesOf(request)) {
        if (message.role === 'assistant' && message.content === null) {
          return { status: 400, body: { error: "Invalid 'content': 'content' field must be a string or an array of objects." } };
        }
        const ids = [...toolCallsOf(message).map((call) => call.id), ...(message.role === 'tool' ? [message.tool_call_id] : [])];
        if (ids.some((id) => id === '' || id === undefined)) return { status: 400, body: { error: "Invalid 'messages' in payload" } };
      }
      return options.validate?.(request);
    },
    shapeCompletion: (completion) => {
      reshapeMessage(completion, {
        isParallel: true,
        reshapeCall: (call) => ({ ...call, id: '' }),
        // Whether it answers null or "" beside tool calls is not verified; "" is what a client survives.
        extra: (message) => ({ ...(message.content === null && { content: '' }), ...(!message.tool_calls && { tool_calls: [] }) }),
      });
      return completion;
    },
  }),
};

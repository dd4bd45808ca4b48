import { FakeLlmServer } from '../fake-llm-server.js';
import { messagesOf, openAiError, randomAlnum, reshapeMessage, toolCallsOf, type LlmEndpoint } from './endpoint.js';

/** localhost:11434/v1, with the request rules of Ollama's openai/openai.go (`FromChatRequest`). */
export const ollama: LlmEndpoint = {
  name: 'Ollama',
  model: 'qwen3:8b',
  isParallel: true,
  failure: openAiError(404, 'model "qwen3:8b" not found, try pulling it first', { type: 'api_error' }),
  failureSays: /not found, try pulling it first/,
  start: (options = {}) => FakeLlmServer.start({
    basePath: '/v1',
    ...options,
    validate: (request) => {
      for (const message of messagesOf(request)) {
        const calls = toolCallsOf(message);
        if (message.role === 'assistant' && message.content === null && !calls.length) return openAiError(400, 'invalid message content type: <nil>', { type: 'api_error' });
        for (const call of calls) {
          try {
            JSON.parse(call.function.arguments);
          } catch {
            return openAiError(400, 'invalid tool call arguments', { type: 'api_error' });
          }
        }
      }
      return options.validate?.(request);
    },
    shapeCompletion: (completion) => {
      reshapeMessage(completion, {
        isParallel: true,
        reshapeCall: (call, index) => ({ ...call, id: `call_${randomAlnum(8).toLowerCase()}`, index }),
        extra: (message) => ({ reasoning: 'Okay, the user asks about processes.', ...(message.content === null && { content: '' }) }),
      });
      return { ...completion, system_fingerprint: 'fp_ollama' };
    },
  }),
};

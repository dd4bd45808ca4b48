import { FakeLlmServer } from '../fake-llm-server.js';
import { currentTurnStart, hasToolCalls, messagesOf, openAiError, randomAlnum, reshapeMessage, type LlmEndpoint } from './endpoint.js';

/**
 * api.deepseek.com in thinking mode (https://api-docs.deepseek.com/guides/thinking_mode): every answer carries
 * `reasoning_content`, and an assistant message that made tool calls must carry it back in the requests of its turn
 * (the guide's own example clears it at the next user turn).
 */
export const deepseek: LlmEndpoint = {
  name: 'DeepSeek',
  model: 'deepseek-reasoner',
  isParallel: true,
  failure: openAiError(402, 'Insufficient Balance', { type: 'unknown_error', code: 'invalid_request_error' }),
  failureSays: /Insufficient Balance/,
  start: (options = {}) => FakeLlmServer.start({
    basePath: '',
    ...options,
    validate: (request) => {
      const messages = messagesOf(request);
      for (let i = currentTurnStart(messages); i < messages.length; i++) {
        const message = messages[i]!;
        if (message.role === 'assistant' && hasToolCalls(message) && !('reasoning_content' in message)) {
          return openAiError(400, `Missing \`reasoning_content\` field in the assistant message at message index ${i}. For more information, please refer to https://api-docs.deepseek.com/guides/thinking_mode#tool-calls`, { code: 'invalid_request_error' });
        }
      }
      return options.validate?.(request);
    },
    shapeCompletion: (completion) => {
      reshapeMessage(completion, {
        isParallel: true,
        reshapeCall: (call, index) => ({ ...call, id: `call_0${index}_${randomAlnum(24)}` }),
        extra: (message) => ({ reasoning_content: `Thinking: ${hasToolCalls(message) ? 'I need the tools.' : 'I can answer now.'}`, ...(message.content === null && { content: '' }) }),
      });
      return completion;
    },
  }),
};

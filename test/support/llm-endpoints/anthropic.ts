import { FakeLlmServer } from '../fake-llm-server.js';
import { findToolAnswerProblem, messagesOf, randomAlnum, reshapeMessage, type LlmEndpoint } from './endpoint.js';

const anthropicError = (status: number, type: string, message: string) => ({ status, body: { error: { type, message } } });

/**
 * api.anthropic.com/v1/ through the OpenAI SDK compatibility layer (https://docs.claude.com/en/api/openai-sdk): ids
 * `toolu_…`, text and tool calls in one message, `n` must be 1, a tool_use without its tool_result right after is 400
 * with the native text.
 */
export const anthropic: LlmEndpoint = {
  name: 'Anthropic (OpenAI compatibility)',
  model: 'claude-sonnet-4-5',
  isParallel: true,
  failure: anthropicError(401, 'authentication_error', 'invalid x-api-key'),
  failureSays: /invalid x-api-key/,
  start: (options = {}) => FakeLlmServer.start({
    basePath: '/v1',
    ...options,
    validate: (request) => {
      const body = request.body as Record<string, unknown>;
      // The exact text is not documented; the rule is.
      if (body.n !== undefined && body.n !== 1) return anthropicError(400, 'invalid_request_error', 'n: only n=1 is supported');
      const problem = findToolAnswerProblem(messagesOf(request));
      if (problem) {
        return anthropicError(400, 'invalid_request_error', `messages.${problem.index}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${problem.ids.join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`);
      }
      return options.validate?.(request);
    },
    shapeCompletion: (completion) => {
      reshapeMessage(completion, {
        isParallel: true,
        reshapeCall: (call) => ({ ...call, id: `toolu_01${randomAlnum(22)}` }),
        extra: (message) => (message.content === null ? { content: 'Let me check.' } : {}),
      });
      return completion;
    },
  }),
};

import { FakeLlmServer } from '../fake-llm-server.js';
import { messagesOf, openAiError, randomAlnum, reshapeMessage, type LlmEndpoint } from './endpoint.js';

// https://console.groq.com/docs/openai and the issues in the notes: unsupported arguments and properties are 400.
const UNSUPPORTED_ARGUMENTS = ['logprobs', 'logit_bias', 'top_logprobs'];
const PROPERTIES: Record<string, Set<string>> = {
  system: new Set(['role', 'content']),
  user: new Set(['role', 'content']),
  // `reasoning` only on reasoning models (this one is); `reasoning_content` never.
  assistant: new Set(['role', 'content', 'tool_calls', 'reasoning']),
  tool: new Set(['role', 'content', 'tool_call_id']),
};

/**
 * api.groq.com/openai/v1 with a reasoning model: strict about every property of every message (jan#8136,
 * vercel/ai#8057), `tool_use_failed` with `failed_generation` (groq-typescript#28).
 */
export const groq: LlmEndpoint = {
  name: 'Groq',
  model: 'openai/gpt-oss-120b',
  isParallel: true,
  failure: {
    status: 400,
    body: { error: { message: "Failed to call a function. Please adjust your prompt. See 'failed_generation' for more details.", type: 'invalid_request_error', code: 'tool_use_failed', failed_generation: '<function=list_processes{"filter": running}</function>' } },
  },
  failureSays: /Failed to call a function/,
  start: (options = {}) => FakeLlmServer.start({
    basePath: '/openai/v1',
    ...options,
    validate: (request) => {
      const body = request.body as Record<string, unknown>;
      const unsupported = UNSUPPORTED_ARGUMENTS.find((key) => key in body);
      if (unsupported) return openAiError(400, `'${unsupported}' : value must be unset`, { param: unsupported });
      if (body.n !== undefined && body.n !== 1) return openAiError(400, "'n' : number must be at most 1", { param: 'n' });
      for (const [i, message] of messagesOf(request).entries()) {
        const allowed = PROPERTIES[message.role];
        const extra = Object.keys(message).find((key) => !allowed?.has(key));
        if (extra) return openAiError(400, `'messages.${i}' : for 'role:${message.role}' the following must be satisfied[('messages.${i}' : property '${extra}' is unsupported)]`);
      }
      return options.validate?.(request);
    },
    shapeCompletion: (completion) => {
      reshapeMessage(completion, {
        isParallel: true,
        reshapeCall: (call) => ({ ...call, id: `fc_${randomAlnum(8).toLowerCase()}-${randomAlnum(4).toLowerCase()}` }),
        extra: () => ({ reasoning: 'The user wants the processes listed.' }),
      });
      return { ...completion, x_groq: { id: `req_${randomAlnum(26).toLowerCase()}` } };
    },
  }),
};

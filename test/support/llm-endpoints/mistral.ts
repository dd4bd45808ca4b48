import { FakeLlmServer, type FakeHttpReply } from '../fake-llm-server.js';
import { messagesOf, randomAlnum, reshapeMessage, toolCallsOf, type LlmEndpoint } from './endpoint.js';

const mistralError = (message: string, type: string, code: string | null): FakeHttpReply => ({
  status: 400, body: { object: 'error', message, type, param: null, code },
});
const TOOL_CALL_ID = /^[a-zA-Z0-9]{9}$/;
const FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

/**
 * api.mistral.ai/v1, with the rules of Mistral's own validator (mistral-common `validator.py`): 9-character ids,
 * nothing but assistant or tool after a tool message, the last message a user or tool one, as many results as calls.
 */
export const mistral: LlmEndpoint = {
  name: 'Mistral',
  model: 'mistral-large-latest',
  isParallel: true,
  failure: { status: 401, body: { detail: 'Unauthorized' } },
  failureSays: /Unauthorized/,
  start: (options = {}) => FakeLlmServer.start({
    basePath: '/v1',
    ...options,
    validate: (request) => {
      const tools = Array.isArray(request.body.tools) ? request.body.tools as Array<{ function?: { name?: string } }> : [];
      const badName = tools.map((tool) => tool.function?.name ?? '').find((name) => !FUNCTION_NAME.test(name));
      if (badName !== undefined) return mistralError(`Function name was ${badName} but must be a-z, A-Z, 0-9, or contain underscores and dashes, with a maximum length of 64.`, 'invalid_function_call', null);
      const messages = messagesOf(request);
      for (const message of messages) {
        const ids = [...toolCallsOf(message).map((call) => call.id), ...(message.role === 'tool' ? [message.tool_call_id] : [])];
        const bad = ids.find((id) => typeof id !== 'string' || !TOOL_CALL_ID.test(id));
        if (bad !== undefined) return mistralError(`Tool call id was ${bad} but must be a-z, A-Z, 0-9, with a length of 9.`, 'invalid_request_message_order', '3280');
      }
      for (let i = 1; i < messages.length; i++) {
        const previous = messages[i - 1]!.role;
        const current = messages[i]!.role;
        if (previous === 'tool' && current !== 'assistant' && current !== 'tool') {
          return mistralError(`Unexpected role '${current}' after role '${previous}'`, 'invalid_request_message_order', '3230');
        }
      }
      const last = messages.at(-1)?.role;
      if (last !== 'user' && last !== 'tool') {
        return mistralError(`Expected last role User or Tool (or Assistant with prefix True) for serving but got ${last}`, 'invalid_request_message_order', '3230');
      }
      const calls = messages.reduce((n, m) => n + toolCallsOf(m).length, 0);
      const results = messages.filter((m) => m.role === 'tool').length;
      if (calls !== results) return mistralError('Not the same number of function calls and responses', 'invalid_request_message_order', '3230');
      return options.validate?.(request);
    },
    shapeCompletion: (completion) => {
      reshapeMessage(completion, {
        isParallel: true,
        reshapeCall: (call) => ({ ...call, id: randomAlnum(9) }),
        extra: (message) => (message.content === null ? { content: '' } : {}),
      });
      return completion;
    },
  }),
};

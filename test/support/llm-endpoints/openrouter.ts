import { randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { FakeLlmServer, type FakeHttpReply } from '../fake-llm-server.js';
import { currentTurnStart, messagesOf, randomAlnum, reshapeMessage, toolCallsOf, type LlmEndpoint } from './endpoint.js';

/** `{"error":{"code": <number>, "message", "metadata"}}` with the HTTP status equal to the code (errors-and-debugging doc). */
export const openRouterError = (code: number, message: string, metadata?: Record<string, unknown>, status = code): FakeHttpReply => ({
  status, body: { error: { code, message, ...(metadata && { metadata }) } },
});

/**
 * openrouter.ai/api/v1 on a Gemini route: `reasoning` and `reasoning_details` on the message, which must come back in
 * every request (reasoning-tokens doc, "preserving reasoning blocks"), or the upstream refuses and OpenRouter passes its
 * words in `error.metadata.raw`; `finish_reason: "stop"` with tool calls, plus `native_finish_reason`.
 */
export const openrouter: LlmEndpoint = {
  name: 'OpenRouter (Gemini route)',
  model: 'google/gemini-3-pro-preview',
  isParallel: true,
  failure: openRouterError(402, 'Insufficient credits. Add more using https://openrouter.ai/settings/credits'),
  failureSays: /Insufficient credits/,
  start: (options = {}) => {
    const issued = new Map<string, unknown>();
    return FakeLlmServer.start({
      basePath: '/api/v1',
      ...options,
      validate: (request) => {
        const messages = messagesOf(request);
        for (let i = currentTurnStart(messages); i < messages.length; i++) {
          const first = toolCallsOf(messages[i]!)[0];
          if (!first) continue;
          const details = messages[i]!.reasoning_details;
          if (issued.has(first.id) && isDeepStrictEqual(details, issued.get(first.id))) continue;
          const raw = JSON.stringify([{ error: { code: 400, message: `Function call is missing a thought_signature in functionCall parts. Additional data, function call \`default_api:${first.function.name}\` , position ${i + 1}.`, status: 'INVALID_ARGUMENT' } }]);
          return openRouterError(400, 'Provider returned error', { raw, provider_name: 'Google AI Studio' });
        }
        return options.validate?.(request);
      },
      shapeCompletion: (completion) => {
        const { choice, message } = reshapeMessage(completion, {
          isParallel: true,
          reshapeCall: (call, index) => ({ ...call, id: `tool_${index}_${call.function.name}_${randomAlnum(20)}` }),
        });
        message.reasoning = 'Thinking about which processes to look at.';
        message.reasoning_details = [
          { type: 'reasoning.text', text: message.reasoning, format: 'google-gemini-v1', index: 0 },
          ...(message.tool_calls?.length ? [{ type: 'reasoning.encrypted', data: randomBytes(32).toString('base64'), id: message.tool_calls[0].id, format: 'google-gemini-v1', index: 1 }] : []),
        ];
        message.refusal = null;
        if (message.tool_calls?.length) issued.set(message.tool_calls[0].id, structuredClone(message.reasoning_details));
        (choice as Record<string, unknown>).native_finish_reason = 'STOP';
        choice.finish_reason = 'stop';
        return { ...completion, provider: 'Google AI Studio' };
      },
    });
  },
};

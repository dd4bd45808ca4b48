import { FakeLlmServer } from '../fake-llm-server.js';
import { messagesOf, openAiError, randomHex, reshapeMessage, toolCallsOf, type LlmEndpoint } from './endpoint.js';

/**
 * vLLM's OpenAI server with a Llama 3.1 model (docs.vllm.ai features/tool_calling, `protocol.py`,
 * `examples/tool_chat_template_llama3.1_json.jinja`): tool calling needs `--enable-auto-tool-choice --tool-call-parser`
 * (`hasToolParser`), and the Llama 3 template refuses two calls in one assistant message.
 */
export function vllmEndpoint(hasToolParser = true): LlmEndpoint {
  return {
    name: hasToolParser ? 'vLLM' : 'vLLM without a tool-call parser',
    model: 'meta-llama/Llama-3.1-8B-Instruct',
    isParallel: false,
    failure: openAiError(400, "This model's maximum context length is 8192 tokens. However, you requested 9013 tokens (8013 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.", { type: 'BadRequestError', code: 400 }),
    failureSays: /maximum context length is 8192 tokens/,
    start: (options = {}) => FakeLlmServer.start({
      basePath: '/v1',
      ...options,
      validate: (request) => {
        const body = request.body as Record<string, unknown>;
        if (body.model !== 'meta-llama/Llama-3.1-8B-Instruct') return openAiError(404, `The model \`${String(body.model)}\` does not exist.`, { type: 'NotFoundError', code: 404 });
        const hasTools = Array.isArray(body.tools) && body.tools.length > 0;
        // tool_choice defaults to "auto" when tools are present (protocol.py check_tool_usage).
        if (hasTools && !hasToolParser && (body.tool_choice === undefined || body.tool_choice === 'auto')) {
          return openAiError(400, '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set', { type: 'BadRequestError', code: 400 });
        }
        if (messagesOf(request).some((m) => toolCallsOf(m).length > 1)) return openAiError(400, 'This model only supports single tool-calls at once!', { type: 'BadRequestError', code: 400 });
        return options.validate?.(request);
      },
      shapeCompletion: (completion) => {
        reshapeMessage(completion, { isParallel: false, reshapeCall: (call) => ({ ...call, id: `chatcmpl-tool-${randomHex(32)}` }) });
        return completion;
      },
    }),
  };
}

export const vllm = vllmEndpoint();

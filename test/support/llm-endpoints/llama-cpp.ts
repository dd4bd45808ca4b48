import { FakeLlmServer } from '../fake-llm-server.js';
import { openAiError, randomAlnum, reshapeMessage, type LlmEndpoint } from './endpoint.js';

/**
 * llama.cpp's llama-server (docs/function-calling.md, PR 17524): tools need `--jinja` (`hasJinja`; else HTTP 500), one call per step unless
 * `parallel_tool_calls: true`, `reasoning_content` from a thinking model; the model name is ignored.
 */
export function llamaCppEndpoint(hasJinja = true): LlmEndpoint {
  return {
    name: hasJinja ? 'llama.cpp' : 'llama.cpp without --jinja',
    model: 'qwen3-8b',
    isParallel: false,
    failure: { status: 400, body: { error: { code: 400, message: 'the request exceeds the available context size, try increasing it', type: 'exceed_context_size_error', n_prompt_tokens: 5012, n_ctx: 4096 } } },
    failureSays: /exceeds the available context size/,
    start: (options = {}) => FakeLlmServer.start({
      basePath: '/v1',
      ...options,
      validate: (request) => {
        const body = request.body as Record<string, unknown>;
        if (!hasJinja && Array.isArray(body.tools) && body.tools.length > 0) {
          return { status: 500, body: { error: { code: 500, message: 'tools param requires --jinja flag', type: 'server_error' } } };
        }
        return options.validate?.(request);
      },
      shapeCompletion: (completion, request) => {
        reshapeMessage(completion, {
          isParallel: request.body.parallel_tool_calls === true,
          reshapeCall: (call) => ({ ...call, id: randomAlnum(32) }),
          extra: () => ({ reasoning_content: 'Let me think about the processes.' }),
        });
        return completion;
      },
    }),
  };
}

export const llamaCpp = llamaCppEndpoint();

import { randomBytes, randomUUID } from 'node:crypto';
import { FakeLlmServer, type FakeHttpReply } from '../fake-llm-server.js';
import { currentTurnStart, messagesOf, reshapeMessage, toolCallsOf, type LlmEndpoint } from './endpoint.js';

/** Gemini's error bodies are a JSON array (notes: Gemini, error bodies). */
export const geminiError = (status: number, message: string, code = 'INVALID_ARGUMENT'): FakeHttpReply => ({
  status, body: [{ error: { code: status, message, status: code } }],
});

// The OpenAPI subset of https://ai.google.dev/api/caching#Schema; other keys are "Unknown name".
const SCHEMA_KEYS = new Set([
  'type', 'format', 'title', 'description', 'nullable', 'enum', 'maxItems', 'minItems', 'properties', 'required', 'minProperties',
  'maxProperties', 'minLength', 'maxLength', 'pattern', 'example', 'anyOf', 'propertyOrdering', 'default', 'items', 'minimum', 'maximum',
]);
/** Google's documented stand-ins for a signature the client never had (a call from another model). */
const DUMMY_SIGNATURES = new Set(['skip_thought_signature_validator', 'context_engineering_is_the_way_to_go']);

function unknownSchemaKey(schema: unknown, path: string): string | undefined {
  if (typeof schema !== 'object' || schema === null) return undefined;
  for (const [key, value] of Object.entries(schema)) {
    if (!SCHEMA_KEYS.has(key)) return `Invalid JSON payload received. Unknown name "${key}" at '${path}': Cannot find field.`;
    // `enum` is for strings (firebase ai.schemashared).
    if (key === 'enum' && (!Array.isArray(value) || value.some((v) => typeof v !== 'string'))) return `Invalid value at '${path}.enum' (TYPE_STRING), ${JSON.stringify(value)}`;
    if (key === 'properties' && typeof value === 'object' && value !== null) {
      for (const [name, sub] of Object.entries(value)) {
        const found = unknownSchemaKey(sub, `${path}.properties[${JSON.stringify(name)}].value`);
        if (found) return found;
      }
    } else if (key === 'items' || key === 'anyOf') {
      const found = Array.isArray(value) ? value.map((v, i) => unknownSchemaKey(v, `${path}.${key}[${i}]`)).find(Boolean) : unknownSchemaKey(value, `${path}.${key}`);
      if (found) return found;
    }
  }
  return undefined;
}

function makeGemini(version: '2.5' | '3'): LlmEndpoint {
  const issued = new Set<string>();
  return {
    name: `Gemini ${version} (OpenAI compatibility)`,
    model: version === '3' ? 'gemini-3-pro-preview' : 'gemini-2.5-flash',
    isParallel: true,
    failure: geminiError(400, 'Request contains an invalid argument.'),
    failureSays: /Request contains an invalid argument/,
    start: (options = {}) => FakeLlmServer.start({
      basePath: '/v1beta/openai',
      ...options,
      validate: (request) => {
        const tools = Array.isArray(request.body.tools) ? request.body.tools as Array<{ function?: { parameters?: unknown } }> : [];
        for (const [i, tool] of tools.entries()) {
          const found = unknownSchemaKey(tool.function?.parameters, `tools[0].function_declarations[${i}].parameters`);
          if (found) return geminiError(400, found);
        }
        const messages = messagesOf(request);
        const names = new Map<string, string>();
        for (const [i, message] of messages.entries()) {
          for (const call of toolCallsOf(message)) names.set(call.id, call.function.name);
          // The function response's name is found from tool_call_id.
          if (message.role === 'tool' && !names.has(message.tool_call_id)) {
            return geminiError(400, `* GenerateContentRequest.contents[${i}].parts[0].function_response.name: Name cannot be empty.\n`);
          }
        }
        if (version === '3') {
          // https://ai.google.dev/gemini-api/docs/thought-signatures: strict for the current turn; the first call of each step carries it.
          const start = currentTurnStart(messages);
          for (let i = start; i < messages.length; i++) {
            const first = toolCallsOf(messages[i]!)[0];
            if (!first) continue;
            const signature = (first.extra_content as { google?: { thought_signature?: string } } | undefined)?.google?.thought_signature;
            if (signature === undefined) {
              return geminiError(400, `Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call \`default_api:${first.function.name}\` , position ${i + 1}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.`);
            }
            if (!issued.has(signature) && !DUMMY_SIGNATURES.has(signature)) return geminiError(400, 'Corrupted thought signature.');
          }
        }
        return options.validate?.(request);
      },
      shapeCompletion: (completion) => {
        const { choice, message } = reshapeMessage(completion, {
          isParallel: true,
          // Gemini 2.x sent empty ids; Gemini 3's are `function-call-<uuid>` (one report).
          reshapeCall: (call, index) => {
            if (version === '2.5') return { ...call, id: '' };
            const shaped: typeof call = { ...call, id: `function-call-${randomUUID()}` };
            if (index === 0) {
              const signature = randomBytes(48).toString('base64');
              issued.add(signature);
              shaped.extra_content = { google: { thought_signature: signature } };
            }
            return shaped;
          },
        });
        // Gemini answers "stop" even with tool calls.
        choice.finish_reason = message.tool_calls?.length ? 'stop' : choice.finish_reason;
        return completion;
      },
    }),
  };
}

export const gemini25 = makeGemini('2.5');
export const gemini3 = makeGemini('3');

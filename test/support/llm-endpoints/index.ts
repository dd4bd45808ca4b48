import { anthropic } from './anthropic.js';
import { deepseek } from './deepseek.js';
import type { LlmEndpoint } from './endpoint.js';
import { gemini25, gemini3 } from './gemini.js';
import { groq } from './groq.js';
import { llamaCpp } from './llama-cpp.js';
import { lmStudio } from './lm-studio.js';
import { mistral } from './mistral.js';
import { ollama } from './ollama.js';
import { openai } from './openai.js';
import { openrouter } from './openrouter.js';
import { vllm } from './vllm.js';

export type { LlmEndpoint } from './endpoint.js';

/** Every endpoint the README's table lists, each a local server that behaves like the provider. */
export const LLM_ENDPOINTS: readonly LlmEndpoint[] = [openai, anthropic, gemini25, gemini3, openrouter, groq, mistral, deepseek, ollama, vllm, llamaCpp, lmStudio];

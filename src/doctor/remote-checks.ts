import { errorMessage } from '../errors.js';
import { fail, ok, skip, warn, type Check, type CheckOutcome, type DoctorContext } from './check.js';

const DISCORD_API = 'https://discord.com/api';

interface Answer {
  status: number;
  body: unknown;
}

/** One GET or POST with a timeout; a network failure is an answer of status 0 with the error's words. */
async function request(ctx: DoctorContext, url: string, init: RequestInit): Promise<Answer> {
  try {
    const response = await ctx.fetch(url, { ...init, signal: AbortSignal.timeout(ctx.timeoutMs) });
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch { /* kept as text */ }
    return { status: response.status, body };
  } catch (error) {
    const cause = (error as { cause?: unknown }).cause;
    return { status: 0, body: cause ? `${errorMessage(error)} (${errorMessage(cause)})` : errorMessage(error) };
  }
}

function field(body: unknown, name: string): string | undefined {
  const value = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined;
  return typeof value === 'string' ? value : undefined;
}

/** The endpoint's own words: Discord's `message`, OpenAI's `error.message`, or the start of the text. */
function saidBy(answer: Answer): string {
  const nested = typeof answer.body === 'object' && answer.body !== null ? (answer.body as { error?: unknown }).error : undefined;
  const text = field(answer.body, 'message') ?? field(nested, 'message') ?? (typeof answer.body === 'string' ? answer.body.slice(0, 200) : '');
  return answer.status === 0 ? text : `${answer.status}${text ? ` ${text}` : ''}`;
}

function discordUrl(ctx: DoctorContext, path: string): string {
  return `${ctx.config.discordApiUrl ?? DISCORD_API}/v10${path}`;
}

function discordGet(ctx: DoctorContext, path: string): Promise<Answer> {
  return request(ctx, discordUrl(ctx, path), { headers: { authorization: `Bot ${ctx.config.discordToken}` } });
}

export const discordTokenCheck: Check = {
  name: 'discord token',
  run: async (ctx): Promise<CheckOutcome> => {
    if (!ctx.config.discordToken) return skip('DISCORD_TOKEN is not set: the bot runs in console mode');
    const answer = await discordGet(ctx, '/users/@me');
    if (answer.status === 200) return ok(`accepted: bot ${field(answer.body, 'username') ?? '?'} (${field(answer.body, 'id') ?? '?'})`);
    if (answer.status === 401) {
      return fail(`Discord rejected the token (${saidBy(answer)})`, 'reset the token under Bot in the Discord Developer Portal and put it in .env as DISCORD_TOKEN');
    }
    if (answer.status === 0) return fail(`cannot reach Discord at ${discordUrl(ctx, '')}: ${saidBy(answer)}`, 'check the network (and DISCORD_API_URL, if set)');
    return fail(`GET /users/@me answered ${saidBy(answer)}`, 'check DISCORD_API_URL, if set, and Discord\'s status page');
  },
};

export const discordGuildCheck: Check = {
  name: 'discord guild',
  run: async (ctx): Promise<CheckOutcome> => {
    const guildId = ctx.config.discordGuildId;
    if (!guildId) return skip('DISCORD_GUILD_ID is not set: commands are registered globally');
    if (!ctx.config.discordToken) return skip('DISCORD_TOKEN is not set');
    const answer = await discordGet(ctx, `/guilds/${guildId}`);
    if (answer.status === 200) return ok(`reachable: ${field(answer.body, 'name') ?? guildId}`);
    if (answer.status === 0) return fail(`cannot reach Discord: ${saidBy(answer)}`, 'check the network (and DISCORD_API_URL, if set)');
    if (answer.status === 401) return fail(`the token was rejected (${saidBy(answer)})`, 'fix DISCORD_TOKEN first (see the discord token check)');
    return fail(`guild ${guildId} answered ${saidBy(answer)}`, 'invite the bot to that server (docs/discord.md has the invite link), or fix DISCORD_GUILD_ID');
  },
};

export const llmCheck: Check = {
  name: 'llm endpoint',
  run: async (ctx): Promise<CheckOutcome> => {
    const { llmBaseUrl, llmApiKey, llmModel } = ctx.config;
    if (!llmBaseUrl) return skip('LLM_BASE_URL is not set: chat is off, /process commands work');
    const headers: Record<string, string> = { 'content-type': 'application/json', ...(llmApiKey && { authorization: `Bearer ${llmApiKey}` }) };
    const keyFix = 'set LLM_API_KEY to a key this endpoint accepts';
    const models = await request(ctx, `${llmBaseUrl}/models`, { headers });
    if (models.status === 200) {
      const data = typeof models.body === 'object' && models.body !== null ? (models.body as { data?: unknown }).data : undefined;
      const ids = Array.isArray(data) ? data.map((m) => field(m, 'id')).filter((id): id is string => id !== undefined) : [];
      if (ids.length && !ids.includes(llmModel)) {
        return warn(`answers; ${ids.length} model(s), but not LLM_MODEL=${llmModel}`, `set LLM_MODEL to one of ${ids.slice(0, 5).join(', ')}${ids.length > 5 ? ', …' : ''} (or an agent's model)`);
      }
      return ok(`answers GET /models${ids.length ? `; ${llmModel} is listed` : ''}`);
    }
    if (models.status === 401 || models.status === 403) return fail(`the key was refused (${saidBy(models)})`, keyFix);
    if (models.status === 0) return fail(`cannot reach ${llmBaseUrl}: ${saidBy(models)}`, 'check LLM_BASE_URL (it ends in /v1 for most endpoints) and that the server runs');
    // Not every compatible server lists models: a one-token completion proves the endpoint instead.
    const completion = await request(ctx, `${llmBaseUrl}/chat/completions`, {
      method: 'POST', headers, body: JSON.stringify({ model: llmModel, max_tokens: 1, messages: [{ role: 'user', content: 'ping' }] }),
    });
    if (completion.status === 200) return ok(`answers a completion with ${llmModel} (GET /models: ${models.status})`);
    if (completion.status === 401 || completion.status === 403) return fail(`the key was refused (${saidBy(completion)})`, keyFix);
    if (completion.status === 404 && /model/i.test(saidBy(completion))) return fail(`the endpoint does not know LLM_MODEL=${llmModel} (${saidBy(completion)})`, 'set LLM_MODEL to a model this endpoint serves');
    return fail(`GET /models answered ${saidBy(models)}; a completion answered ${saidBy(completion)}`, 'check LLM_BASE_URL (the OpenAI-compatible base, e.g. https://api.openai.com/v1)');
  },
};

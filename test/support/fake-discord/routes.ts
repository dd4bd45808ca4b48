import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dispatchMessage, guildPayload } from './dispatch.js';
import type { FormProblem } from './errors.js';
import type { FakeGateway } from './gateway.js';
import {
  FixedWindowLimiter, NO_CONTENT, checkMessage, errorReply, isPayload, jsonReply, rateLimitHeaders, readBody, writeReply,
  type Payload, type Route, type RouteContext, type RouteReply,
} from './http.js';
import { InteractionRoutes } from './interaction-routes.js';
import { dmChannelPayload, guildChannelPayload, userPayload } from './payloads.js';
import type { DiscordState, MessageRecord } from './state.js';

const GENERIC_LIMIT = 50;

function bucketHash(method: string, pattern: string[]): string {
  return createHash('sha1').update(`${method} ${pattern.join('/')}`).digest('hex').slice(0, 16);
}

/** The REST half of the fake: one table of routes, Discord-shaped errors, rate-limit headers. */
export class RestRoutes {
  private readonly routes: Route[] = [];
  private readonly editLimiter: FixedWindowLimiter;

  constructor(private readonly state: DiscordState, private readonly gateway: FakeGateway) {
    this.editLimiter = new FixedWindowLimiter(state.config.editLimit.count, state.config.editLimit.windowMs);
    const add = (isAuthed: boolean) => (method: string, path: string, handler: Route['handler']): void => {
      this.routes.push({ method, pattern: path.split('/').filter(Boolean), isAuthed, handler });
    };
    const authed = add(true);
    const open = add(false);
    const gatewayInfo = { url: state.config.baseUrl.replace(/^http/, 'ws') };
    open('GET', '/gateway', () => jsonReply(gatewayInfo));
    authed('GET', '/gateway/bot', () => jsonReply({
      ...gatewayInfo,
      shards: 1,
      session_start_limit: { total: 1000, remaining: 999, reset_after: 0, max_concurrency: 1 },
    }));
    authed('GET', '/users/@me', () => jsonReply(userPayload(state.config.bot)));
    authed('GET', '/applications/@me', () => jsonReply(this.applicationPayload()));
    authed('POST', '/users/@me/channels', ({ body }) => this.openDm(body));
    authed('GET', '/applications/:app/commands', ({ params }) => this.listCommands(params[0], 'global'));
    authed('PUT', '/applications/:app/commands', (context) => this.putCommands(context, 'global'));
    authed('GET', '/applications/:app/guilds/:guild/commands', ({ params }) => this.listCommands(params[0], params[1] ?? ''));
    authed('PUT', '/applications/:app/guilds/:guild/commands', (context) => this.putCommands(context, context.params[1] ?? ''));
    authed('GET', '/guilds/:guild', ({ params }) => this.inGuild(params[0], () => jsonReply(guildPayload(state))));
    authed('GET', '/guilds/:guild/channels', ({ params }) => this.inGuild(params[0], () => jsonReply(
      state.config.channels.map((channel, index) => guildChannelPayload(channel, state.config.guildId, index)),
    )));
    authed('GET', '/guilds/:guild/roles', ({ params }) => this.inGuild(params[0], () => jsonReply(guildPayload(state).roles)));
    authed('GET', '/guilds/:guild/members/:user', ({ params }) => this.inGuild(params[0], () => this.getMember(params[1])));
    authed('GET', '/channels/:channel', ({ params }) => this.getChannel(params[0]));
    authed('POST', '/channels/:channel/typing', ({ params }) => (state.isKnownChannel(params[0] ?? '') ? NO_CONTENT : errorReply('unknownChannel')));
    authed('GET', '/channels/:channel/messages', (context) => this.listMessages(context));
    authed('POST', '/channels/:channel/messages', (context) => this.postMessage(context));
    authed('GET', '/channels/:channel/messages/:message', ({ params }) => this.withMessage(params, (record) => jsonReply(state.messagePayload(record))));
    authed('PATCH', '/channels/:channel/messages/:message', (context) => this.editMessage(context));
    authed('DELETE', '/channels/:channel/messages/:message', ({ params }) => this.withMessage(params, (record) => {
      state.deleteMessage(record);
      dispatchMessage(state, gateway, 'MESSAGE_DELETE', record);
      return NO_CONTENT;
    }));
    new InteractionRoutes(state, gateway).register(open);
  }

  async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const method = request.method ?? 'GET';
    const url = new URL(request.url ?? '/', this.state.config.baseUrl);
    let segments: string[];
    try {
      segments = url.pathname.split('/').filter(Boolean).map((segment) => decodeURIComponent(segment));
    } catch {
      segments = url.pathname.split('/').filter(Boolean);
    }
    const path = `/${segments.join('/')}`;
    if (segments[0] === 'attachments' && method === 'GET') {
      this.serveAttachment(segments, response);
      return;
    }
    const apiSegments = segments[0] === 'api' ? segments.slice(/^v\d+$/.test(segments[1] ?? '') ? 2 : 1) : null;
    const match = apiSegments ? this.match(method, apiSegments) : null;
    let reply: RouteReply;
    if (!match) {
      request.resume();
      this.state.unhandled.push({ method, path, status: 404, at: Date.now() });
      reply = errorReply('notFound');
    } else if (match.route.isAuthed && request.headers.authorization !== `Bot ${this.state.config.token}`) {
      request.resume();
      reply = errorReply('unauthorized');
    } else {
      reply = await this.run(match.route, { params: match.params, query: url.searchParams, body: {}, files: [] }, request);
    }
    const headers = { ...reply.headers };
    if (match && !('x-ratelimit-bucket' in headers)) {
      Object.assign(headers, rateLimitHeaders(bucketHash(method, match.route.pattern), GENERIC_LIMIT, GENERIC_LIMIT - 1, 1000));
    }
    this.logRequest(method, path, reply, match !== null);
    writeReply(response, { ...reply, headers });
    this.state.changed();
  }

  private async run(route: Route, context: RouteContext, request: IncomingMessage): Promise<RouteReply> {
    try {
      const { body, files } = await readBody(request);
      context.body = body;
      context.files = files;
    } catch {
      return errorReply('invalidJson');
    }
    try {
      return await route.handler(context);
    } catch (error) {
      const reply = errorReply('internal');
      reply.body = { ...(reply.body as Payload), detail: error instanceof Error ? error.stack : String(error) };
      return reply;
    }
  }

  private match(method: string, segments: string[]): { route: Route; params: string[] } | null {
    for (const route of this.routes) {
      if (route.method !== method || route.pattern.length !== segments.length) continue;
      const params: string[] = [];
      const isMatch = route.pattern.every((part, index) => {
        const segment = segments[index] ?? '';
        if (part.startsWith(':')) {
          params.push(segment);
          return true;
        }
        return part === segment;
      });
      if (isMatch) return { route, params };
    }
    return null;
  }

  private logRequest(method: string, path: string, reply: RouteReply, isMatched: boolean): void {
    const at = Date.now();
    this.state.requests.push({ method, path, status: reply.status, at });
    if (!isMatched || reply.status < 400 || reply.status === 429) return;
    const body = isPayload(reply.body) ? reply.body : {};
    this.state.rejected.push({
      method, path, status: reply.status, at,
      code: typeof body.code === 'number' ? body.code : 0,
      message: typeof body.message === 'string' ? body.message : '',
      body,
    });
  }

  /** Serves `/attachments/:channel/:attachment/:filename`, the `url` given in attachment objects. */
  private serveAttachment(segments: string[], response: ServerResponse): void {
    const attachmentId = segments[2] ?? '';
    for (const record of this.state.messagesById.values()) {
      const attachment = record.attachments.find((candidate) => candidate.id === attachmentId);
      if (!attachment) continue;
      response.writeHead(200, { 'content-type': attachment.contentType, 'content-length': String(attachment.size) });
      response.end(attachment.data);
      return;
    }
    writeReply(response, errorReply('notFound'));
  }

  private applicationPayload(): Payload {
    const { config } = this.state;
    return {
      id: config.applicationId, name: config.bot.username, icon: null, description: '', bot_public: false,
      bot_require_code_grant: false, bot: userPayload(config.bot), owner: userPayload(config.owner),
      verify_key: '0'.repeat(64), team: null, flags: 0, summary: '',
    };
  }

  private inGuild(guildId: string | undefined, answer: () => RouteReply): RouteReply {
    return guildId === this.state.config.guildId ? answer() : errorReply('unknownGuild');
  }

  private getMember(userId: string | undefined): RouteReply {
    const user = userId ? this.state.users.get(userId) : undefined;
    if (!user || !this.state.memberRoles.has(user.id)) return errorReply('unknownMember');
    return jsonReply(this.state.memberPayloadOf(user, true));
  }

  private getChannel(channelId: string | undefined): RouteReply {
    const id = channelId ?? '';
    const index = this.state.config.channels.findIndex((channel) => channel.id === id);
    const channel = this.state.config.channels[index];
    if (channel) return jsonReply(guildChannelPayload(channel, this.state.config.guildId, index));
    const recipient = this.state.dmRecipientOf(id);
    return recipient ? jsonReply(dmChannelPayload(id, recipient)) : errorReply('unknownChannel');
  }

  private openDm(body: Payload): RouteReply {
    const recipientId = typeof body.recipient_id === 'string' ? body.recipient_id : '';
    if (!recipientId) return errorReply('invalidFormBody', [{ path: 'recipient_id', code: 'BASE_TYPE_REQUIRED', message: 'This field is required' }]);
    const user = this.state.ensureUser(recipientId);
    return jsonReply(dmChannelPayload(this.state.dmChannelFor(recipientId), user));
  }

  private listCommands(applicationId: string | undefined, scope: string): RouteReply {
    if (applicationId !== this.state.config.applicationId) return errorReply('notFound');
    return jsonReply(this.state.commands.get(scope) ?? []);
  }

  private putCommands({ params, body }: RouteContext, scope: string): RouteReply {
    if (params[0] !== this.state.config.applicationId) return errorReply('notFound');
    if (scope !== 'global' && scope !== this.state.config.guildId) return errorReply('unknownGuild');
    const list = Array.isArray(body.items) ? body.items.filter(isPayload) : [];
    const previous = this.state.commands.get(scope) ?? [];
    const stored = list.map((command) => ({
      type: 1,
      description: '',
      options: [],
      default_member_permissions: null,
      nsfw: false,
      ...command,
      id: previous.find((old) => old.name === command.name)?.id ?? this.state.ids.next(),
      application_id: this.state.config.applicationId,
      version: this.state.ids.next(),
      ...(scope === 'global' ? {} : { guild_id: scope }),
    }));
    this.state.commands.set(scope, stored);
    return jsonReply(stored);
  }

  private withMessage(params: string[], answer: (record: MessageRecord) => RouteReply): RouteReply {
    const [channelId = '', messageId = ''] = params;
    if (!this.state.isKnownChannel(channelId)) return errorReply('unknownChannel');
    const record = this.state.liveMessage(messageId);
    if (!record || record.channelId !== channelId || record.isEphemeral) return errorReply('unknownMessage');
    return answer(record);
  }

  private listMessages({ params, query }: RouteContext): RouteReply {
    const channelId = params[0] ?? '';
    if (!this.state.isKnownChannel(channelId)) return errorReply('unknownChannel');
    const limit = Math.min(100, Math.max(1, Number(query.get('limit') ?? 50)));
    const ids = this.state.channelMessages.get(channelId) ?? [];
    const live = ids.map((id) => this.state.liveMessage(id)).filter((record): record is MessageRecord => record !== undefined);
    return jsonReply(live.reverse().slice(0, limit).map((record) => this.state.messagePayload(record)));
  }

  private postMessage({ params, body, files }: RouteContext): RouteReply {
    const channelId = params[0] ?? '';
    if (!this.state.isKnownChannel(channelId)) return errorReply('unknownChannel');
    const problem = checkMessage(body, files, true);
    if (problem) return problem;
    const reference = isPayload(body.message_reference) ? body.message_reference : null;
    if (reference && typeof reference.message_id === 'string' && !this.state.liveMessage(reference.message_id)
      && reference.fail_if_not_exists !== false) {
      const unknownReply: FormProblem = { path: 'message_reference', code: 'MESSAGE_REFERENCE_UNKNOWN_MESSAGE', message: 'Unknown message' };
      return errorReply('invalidFormBody', [unknownReply]);
    }
    const { bot } = this.state.config;
    const record = this.state.createMessage({
      channelId, author: bot, authorRoles: this.state.memberRoles.get(bot.id) ?? null, body, files, source: 'bot',
    });
    dispatchMessage(this.state, this.gateway, 'MESSAGE_CREATE', record);
    return jsonReply(this.state.messagePayload(record));
  }

  private editMessage({ params, body, files }: RouteContext): RouteReply {
    const [channelId = ''] = params;
    const { config } = this.state;
    let headers: Record<string, string> | undefined;
    if (config.enforceRateLimit) {
      const verdict = this.editLimiter.take(channelId);
      const limit = config.advertiseEditLimit ? config.editLimit.count : GENERIC_LIMIT;
      const remaining = config.advertiseEditLimit ? verdict.remaining : GENERIC_LIMIT - 1;
      headers = rateLimitHeaders('fake-message-edit', limit, remaining, verdict.resetAfterMs);
      if (!verdict.isAllowed) return this.rateLimited(channelId, verdict.resetAfterMs);
    }
    const reply = this.withMessage(params, (record) => {
      if (record.authorId !== config.bot.id) return errorReply('cannotEditOthersMessage');
      if (record.isOld) return errorReply('oldMessageEditCap');
      const problem = checkMessage(body, files, false);
      if (problem) return problem;
      this.state.editMessage(record, body, files, 'channel');
      dispatchMessage(this.state, this.gateway, 'MESSAGE_UPDATE', record);
      return jsonReply(this.state.messagePayload(record));
    });
    return headers ? { ...reply, headers: { ...reply.headers, ...headers } } : reply;
  }

  private rateLimited(channelId: string, retryAfterMs: number): RouteReply {
    this.state.rateLimitHits += 1;
    this.state.events.emit('rateLimited', { channelId, retryAfterMs });
    const { count } = this.state.config.editLimit;
    return {
      status: 429,
      body: { message: 'You are being rate limited.', retry_after: Number((retryAfterMs / 1000).toFixed(3)), global: false },
      headers: {
        ...rateLimitHeaders('fake-message-edit', count, 0, retryAfterMs),
        'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))),
        'x-ratelimit-scope': 'user',
      },
    };
  }
}

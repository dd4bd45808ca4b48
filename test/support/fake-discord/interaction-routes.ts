import type { FakeGateway } from './gateway.js';
import { dispatchMessage } from './dispatch.js';
import { validateChoices } from './errors.js';
import {
  NO_CONTENT, checkMessage, errorReply, isPayload, jsonReply,
  type Payload, type RouteContext, type RouteReply, type RouteTable, type UploadedFile,
} from './http.js';
import { userPayload } from './payloads.js';
import {
  EPHEMERAL_FLAG, LOADING_FLAG,
  type DiscordState, type InteractionRecord, type InteractionResponseKind, type MessageRecord,
} from './state.js';

/** Interaction callbacks and the interaction webhook (follow-ups, `@original`); every call is recorded. */
export class InteractionRoutes {
  constructor(private readonly state: DiscordState, private readonly gateway: FakeGateway) {}

  register(open: RouteTable): void {
    open('POST', '/interactions/:id/:token/callback', (context) => this.recorded(context, 'callback', () => this.callback(context)));
    open('POST', '/webhooks/:app/:token', (context) => this.recorded(context, 'followup', () => this.followUp(context)));
    open('GET', '/webhooks/:app/:token/messages/:message', (context) => this.recorded(context, 'get-original', () => this.webhookMessage(context, 'get')));
    open('PATCH', '/webhooks/:app/:token/messages/:message', (context) => this.recorded(context, context.params[2] === '@original' ? 'edit-original' : 'edit-followup', () => this.webhookMessage(context, 'patch')));
    open('DELETE', '/webhooks/:app/:token/messages/:message', (context) => this.recorded(context, context.params[2] === '@original' ? 'delete-original' : 'delete-followup', () => this.webhookMessage(context, 'delete')));
  }

  private recorded(context: RouteContext, kind: InteractionResponseKind, answer: () => RouteReply): RouteReply {
    const interaction = kind === 'callback'
      ? this.state.interactions.get(context.params[0] ?? '')
      : this.state.interactionByToken(context.params[1] ?? '');
    const reply = answer();
    if (interaction) {
      const body = isPayload(reply.body) ? reply.body : {};
      const isError = reply.status >= 400;
      const record = {
        interactionId: interaction.id,
        kind,
        callbackType: kind === 'callback' && typeof context.body.type === 'number' ? context.body.type : null,
        body: context.body,
        files: context.files,
        status: reply.status,
        error: isError ? { code: typeof body.code === 'number' ? body.code : 0, message: String(body.message ?? '') } : null,
        at: Date.now(),
      };
      interaction.responses.push(record);
      this.state.events.emit('interactionResponse', record);
    }
    return reply;
  }

  private interactionMetadata(interaction: InteractionRecord): Payload {
    const data = isPayload(interaction.payload.data) ? interaction.payload.data : {};
    return {
      id: interaction.id,
      type: interaction.payload.type,
      user: userPayload(interaction.user),
      authorizing_integration_owners: interaction.payload.authorizing_integration_owners ?? {},
      ...(typeof data.name === 'string' ? { name: data.name } : {}),
    };
  }

  private createInteractionMessage(interaction: InteractionRecord, body: Payload, files: UploadedFile[], extraFlags = 0): MessageRecord {
    const record = this.state.createMessage({
      channelId: interaction.channelId,
      author: this.state.config.bot,
      body,
      files,
      source: 'interaction',
      type: interaction.kind === 'command' ? 20 : 0,
      interactionId: interaction.id,
      interactionMetadata: this.interactionMetadata(interaction),
      webhookId: this.state.config.applicationId,
      extraFlags,
    });
    dispatchMessage(this.state, this.gateway, 'MESSAGE_CREATE', record);
    return record;
  }

  private callback({ params, query, body, files }: RouteContext): RouteReply {
    const interaction = this.state.interactions.get(params[0] ?? '');
    if (!interaction || interaction.token !== params[1] || interaction.isExpired) return errorReply('unknownInteraction');
    if (interaction.callbackType !== null) return errorReply('alreadyAcknowledged');
    const type = typeof body.type === 'number' ? body.type : -1;
    const data = isPayload(body.data) ? body.data : {};
    const componentMessage = interaction.componentMessageId ? this.state.liveMessage(interaction.componentMessageId) : undefined;
    let resourceMessage: MessageRecord | undefined;
    switch (type) {
      case 4: {
        const problem = checkMessage(data, files, true);
        if (problem) return problem;
        resourceMessage = this.createInteractionMessage(interaction, data, files);
        interaction.replyMessageId = resourceMessage.id;
        break;
      }
      case 5: {
        const flags = typeof data.flags === 'number' ? data.flags & EPHEMERAL_FLAG : 0;
        resourceMessage = this.createInteractionMessage(interaction, {}, [], LOADING_FLAG | flags);
        interaction.replyMessageId = resourceMessage.id;
        break;
      }
      case 6:
      case 7: {
        if (interaction.payload.type !== 3) {
          return errorReply('invalidFormBody', [{ path: 'type', code: 'INTERACTION_CALLBACK_TYPE_INVALID', message: 'Interaction callback type is not valid for this interaction' }]);
        }
        if (type === 7) {
          const problem = checkMessage(data, files, false);
          if (problem) return problem;
          if (componentMessage) {
            this.state.editMessage(componentMessage, data, files, 'interaction');
            dispatchMessage(this.state, this.gateway, 'MESSAGE_UPDATE', componentMessage);
          }
        }
        resourceMessage = componentMessage;
        break;
      }
      case 8: {
        const problems = validateChoices(data.choices);
        if (problems.length > 0) return errorReply('invalidFormBody', problems);
        interaction.choices = Array.isArray(data.choices) ? data.choices.filter(isPayload) : [];
        break;
      }
      case 9:
        interaction.modal = data;
        break;
      default:
        return errorReply('invalidFormBody', [{ path: 'type', code: 'BASE_TYPE_CHOICES', message: 'Value must be one of {1, 4, 5, 6, 7, 8, 9, 10, 12}.' }]);
    }
    interaction.callbackType = type;
    if (query.get('with_response') !== 'true') return NO_CONTENT;
    return jsonReply({
      interaction: {
        id: interaction.id,
        type: interaction.payload.type,
        response_message_id: resourceMessage?.id,
        response_message_loading: resourceMessage ? (resourceMessage.flags & LOADING_FLAG) !== 0 : undefined,
        response_message_ephemeral: resourceMessage?.isEphemeral,
      },
      resource: { type, ...(resourceMessage ? { message: this.state.messagePayload(resourceMessage) } : {}) },
    });
  }

  private webhookInteraction(params: string[]): InteractionRecord | RouteReply {
    if (params[0] !== this.state.config.applicationId) return errorReply('unknownWebhook');
    const interaction = this.state.interactionByToken(params[1] ?? '');
    if (!interaction) return errorReply('unknownWebhook');
    if (interaction.isExpired) return errorReply('invalidWebhookToken');
    if (interaction.callbackType === null) return errorReply('unknownWebhook');
    return interaction;
  }

  private followUp({ params, query, body, files }: RouteContext): RouteReply {
    const interaction = this.webhookInteraction(params);
    if (!('id' in interaction)) return interaction;
    const original = this.state.originalMessageOf(interaction);
    const problem = checkMessage(body, files, true);
    if (problem) return problem;
    let record: MessageRecord;
    if (interaction.callbackType === 5 && original && (original.flags & LOADING_FLAG) !== 0) {
      // The first follow-up after a deferred reply replaces the "thinking…" message, as on Discord.
      this.state.editMessage(original, body, files, 'interaction');
      dispatchMessage(this.state, this.gateway, 'MESSAGE_UPDATE', original);
      record = original;
    } else {
      const flags = typeof body.flags === 'number' ? body.flags & EPHEMERAL_FLAG : 0;
      record = this.createInteractionMessage(interaction, { ...body, flags: 0 }, files, flags);
      interaction.followUpIds.push(record.id);
    }
    return query.get('wait') === 'false' ? NO_CONTENT : jsonReply(this.state.messagePayload(record));
  }

  private webhookMessage({ params, body, files }: RouteContext, action: 'get' | 'patch' | 'delete'): RouteReply {
    const interaction = this.webhookInteraction(params);
    if (!('id' in interaction)) return interaction;
    const messageId = params[2] ?? '';
    const record = messageId === '@original'
      ? this.state.originalMessageOf(interaction)
      : interaction.followUpIds.includes(messageId) ? this.state.messagesById.get(messageId) : undefined;
    if (!record || record.isDeleted) return errorReply('unknownMessage');
    if (action === 'get') return jsonReply(this.state.messagePayload(record));
    if (action === 'delete') {
      this.state.deleteMessage(record);
      dispatchMessage(this.state, this.gateway, 'MESSAGE_DELETE', record);
      return NO_CONTENT;
    }
    const problem = checkMessage(body, files, false);
    if (problem) return problem;
    this.state.editMessage(record, body, files, 'interaction');
    if (messageId === '@original' && interaction.callbackType === 6) interaction.isOriginalEditedAfterAck = true;
    dispatchMessage(this.state, this.gateway, 'MESSAGE_UPDATE', record);
    return jsonReply(this.state.messagePayload(record));
  }
}

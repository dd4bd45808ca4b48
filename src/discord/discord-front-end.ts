import { Routes, type APIMessage, type REST } from 'discord.js';
import type { AgentConfig } from '../agents/agent-config.js';
import type { FrontEnd, ProcessStatusView } from '../agents/front-end.js';
import type { Logger } from '../logger.js';
import { logPath, readLastLines } from '../process/log-reader.js';
import type { ProcessManager } from '../process/process-manager.js';
import type { TailLine } from '../process/tail.js';
import type { ProcessRecord } from '../store/process-repo.js';
import { EditScheduler, type EditSchedulerOptions, type StatusTransport } from './edit-scheduler.js';
import { splitMessage } from './message-split.js';
import { renderStatus, type StatusBody } from './status-embed.js';

const NO_MENTIONS_API = { parse: [] };
const ALIASES_REMEMBERED = 5_000;
export const TYPING_INTERVAL_MS = 8_000;
const FINAL_TAIL_LINES = 15;

export type SchedulerTuning = Partial<Omit<EditSchedulerOptions, 'channelId' | 'transport' | 'log' | 'onPosted'>>;

export interface DiscordFrontEndOptions {
  /** The bot's REST client (`client.rest`): status messages go by channel and message id, with no cache. */
  rest: REST;
  manager: ProcessManager;
  log: Logger;
  scheduler?: SchedulerTuning;
  typingIntervalMs?: number;
}

/** The process core forgets the tail of an ended process before announcing the end: read the end of its logs. */
function tailFromFiles(record: ProcessRecord): TailLine[] {
  const stdout = readLastLines(logPath(record, 'stdout'), FINAL_TAIL_LINES, 64 * 1024).map((text) => ({ stream: 'stdout' as const, text }));
  const stderr = readLastLines(logPath(record, 'stderr'), 5, 64 * 1024).map((text) => ({ stream: 'stderr' as const, text }));
  return [...stdout, ...stderr];
}

/** Status messages are normal channel messages edited with the bot token, never interaction replies. */
export function restTransport(rest: REST): StatusTransport {
  return {
    async post(channelId: string, body: StatusBody): Promise<string> {
      const message = await rest.post(Routes.channelMessages(channelId), { body: { ...body, allowed_mentions: NO_MENTIONS_API } }) as APIMessage;
      return message.id;
    },
    async edit(channelId: string, messageId: string, body: StatusBody): Promise<void> {
      await rest.patch(Routes.channelMessage(channelId, messageId), { body: { ...body, allowed_mentions: NO_MENTIONS_API } });
    },
  };
}

interface Place {
  channelId: string;
  messageId: string | null;
}

/** The Discord side of the agents' FrontEnd: answers in the agent's channel, live status messages, typing. */
export class DiscordFrontEnd implements FrontEnd {
  private readonly schedulers = new Map<string, EditScheduler>();
  /** Keyed by the logical process (its first run's row id): every run of a policy-restarted process edits one message. */
  private readonly places = new Map<number, Place>();
  private readonly keys = new Map<number, number>();
  private readonly currentRun = new Map<number, number>();
  private readonly aliases = new Map<string, string>();
  private readonly typing = new Map<string, { count: number; timer: NodeJS.Timeout }>();
  private readonly transport: StatusTransport;
  private readonly log: Logger;
  private isClosed = false;

  constructor(private readonly options: DiscordFrontEndOptions) {
    this.transport = restTransport(options.rest);
    this.log = options.log.child({ module: 'discord' });
  }

  /** Long answers go out in parts split on lines and code fences; the id of the last part is returned. */
  async postMessage(agent: AgentConfig, text: string, options: { replyToMessageId?: string } = {}): Promise<string | null> {
    if (this.isClosed || !agent.channelId) return null;
    const parts = splitMessage(text);
    if (!parts.length) return null;
    const ids: string[] = [];
    try {
      for (const [index, content] of parts.entries()) {
        const body: Record<string, unknown> = { content, allowed_mentions: NO_MENTIONS_API };
        if (index === 0 && options.replyToMessageId) body.message_reference = { message_id: options.replyToMessageId, fail_if_not_exists: false };
        const message = await this.options.rest.post(Routes.channelMessages(agent.channelId), { body }) as APIMessage;
        ids.push(message.id);
      }
    } catch (error) {
      this.log.error({ err: error, agent: agent.name, channelId: agent.channelId, parts: parts.length, sent: ids.length }, 'could not post an answer');
      if (!ids.length) return null;
    }
    const last = ids[ids.length - 1]!;
    for (const id of ids.slice(0, -1)) this.remember(id, last);
    return last;
  }

  /** A reply to any part of a split answer continues the branch that posted the whole answer. */
  replyTarget(messageId: string): string {
    return this.aliases.get(messageId) ?? messageId;
  }

  private logicalKey(record: ProcessRecord): number {
    let key = this.keys.get(record.id);
    if (key === undefined) {
      key = record.restartedFrom === null ? record.id : this.options.manager.repo.firstRun(record).id;
      this.keys.set(record.id, key);
      if (this.keys.size > ALIASES_REMEMBERED) this.keys.delete(this.keys.keys().next().value!);
    }
    return key;
  }

  showProcessStatus(agent: AgentConfig, view: ProcessStatusView): void {
    if (this.isClosed) return;
    const id = this.logicalKey(view.record);
    this.currentRun.set(id, view.record.id);
    let place = this.places.get(id);
    if (!place) {
      // The row, not the view, is the truth about an existing message: the view may predate the stored id.
      const stored = this.options.manager.repo.get(view.record.id) ?? view.record;
      const channelId = stored.statusChannelId ?? agent.channelId;
      if (!channelId) return;
      place = { channelId, messageId: stored.statusChannelId ? stored.discordMessageId : null };
      this.places.set(id, place);
    }
    let body: StatusBody;
    try {
      body = renderStatus(view.isFinal && !view.tail.length ? { ...view, tail: tailFromFiles(view.record) } : view);
    } catch (error) {
      this.log.error({ err: error, id }, 'could not render a status message');
      return;
    }
    this.scheduler(place.channelId).update(id, body, { isFinal: view.isFinal, messageId: place.messageId });
    if (view.isFinal) {
      this.places.delete(id);
      this.currentRun.delete(id);
    }
  }

  setWorking(agent: AgentConfig, isWorking: boolean): void {
    const channelId = agent.channelId;
    if (!channelId || this.isClosed) return;
    const entry = this.typing.get(channelId);
    if (isWorking) {
      if (entry) {
        entry.count += 1;
        return;
      }
      const timer = setInterval(() => this.sendTyping(channelId), this.options.typingIntervalMs ?? TYPING_INTERVAL_MS);
      timer.unref();
      this.typing.set(channelId, { count: 1, timer });
      this.sendTyping(channelId);
      return;
    }
    if (!entry) return;
    entry.count -= 1;
    if (entry.count <= 0) {
      clearInterval(entry.timer);
      this.typing.delete(channelId);
    }
  }

  /** Delivers what is waiting (final states first) within `timeoutMs`, then stops. */
  async close(timeoutMs = 5_000): Promise<void> {
    if (this.isClosed) return;
    for (const entry of this.typing.values()) clearInterval(entry.timer);
    this.typing.clear();
    const delivered = await Promise.all([...this.schedulers.values()].map((scheduler) => scheduler.flush(timeoutMs)));
    if (delivered.includes(false)) this.log.warn('some status updates were not delivered before shutdown');
    this.isClosed = true;
    for (const scheduler of this.schedulers.values()) scheduler.close();
  }

  /** Why a process's status message is no longer updated (given up on for good), if it is not. */
  statusMessageProblem(processId: number): string | undefined {
    for (const scheduler of this.schedulers.values()) {
      const reason = scheduler.abandonedReason(processId);
      if (reason) return reason;
    }
    return undefined;
  }

  /** Updates not yet delivered, across channels. */
  get pendingUpdates(): number {
    let count = 0;
    for (const scheduler of this.schedulers.values()) count += scheduler.pendingCount;
    return count;
  }

  private scheduler(channelId: string): EditScheduler {
    let scheduler = this.schedulers.get(channelId);
    if (!scheduler) {
      scheduler = new EditScheduler({
        ...this.options.scheduler,
        channelId,
        transport: this.transport,
        log: this.log,
        onPosted: (key, messageId) => {
          const place = this.places.get(key);
          if (place) place.messageId = messageId;
          this.options.manager.repo.setStatusMessage(key, channelId, messageId);
          // The run being shown stores it too, so a bot restart finds the message from the current run's row.
          const current = this.currentRun.get(key);
          if (current !== undefined && current !== key) this.options.manager.repo.setStatusMessage(current, channelId, messageId);
        },
      });
      this.schedulers.set(channelId, scheduler);
    }
    return scheduler;
  }

  private sendTyping(channelId: string): void {
    this.options.rest.post(Routes.channelTyping(channelId)).catch((error: unknown) => {
      this.log.debug({ err: error, channelId }, 'typing indicator failed');
    });
  }

  private remember(id: string, target: string): void {
    this.aliases.set(id, target);
    if (this.aliases.size > ALIASES_REMEMBERED) this.aliases.delete(this.aliases.keys().next().value!);
  }
}

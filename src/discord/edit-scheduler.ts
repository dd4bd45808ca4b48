import { RESTJSONErrorCodes } from 'discord.js';
import type { Logger } from '../logger.js';
import type { StatusBody } from './status-embed.js';

/** Where status messages go: a post returns the new message id; failures throw errors with Discord's `code`. */
export interface StatusTransport {
  post(channelId: string, body: StatusBody): Promise<string>;
  edit(channelId: string, messageId: string, body: StatusBody): Promise<void>;
}

export interface EditBudget {
  count: number;
  windowMs: number;
}

/** Discord allows about 5 message edits per 5 s in a channel. */
export const DEFAULT_EDIT_BUDGET: EditBudget = { count: 5, windowMs: 5_000 };
const DISCORD_EPOCH_MS = 1_420_070_400_000n;
const MAX_FAILURES = 5;
const FINISHED_REMEMBERED = 2_000;

export interface EditSchedulerOptions {
  channelId: string;
  transport: StatusTransport;
  log: Logger;
  /** Every message posted for a key (the first post and re-posts), so its id can be stored. */
  onPosted: (key: number, messageId: string) => void;
  budget?: EditBudget;
  /** Added to the window, so latency never lets one edit too many land inside it. */
  marginMs?: number;
  /** Messages older than this (Discord: an hour) get few edits: at most one non-final edit per `oldMessageIntervalMs`. */
  oldMessageAgeMs?: number;
  oldMessageIntervalMs?: number;
  /** The first pause after a 30046 (edit cap of an old message); doubles up to `maxBackoffMs`. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Pause after another failure, times the number of failures in a row. */
  retryMs?: number;
  now?: () => number;
}

export interface StatusUpdate {
  isFinal: boolean;
  /** The message this key already has (from the store, after a restart); used when the key is new here. */
  messageId?: string | null;
}

interface Pending {
  body: StatusBody;
  json: string;
  isFinal: boolean;
}

interface Slot {
  key: number;
  messageId: string | null;
  sentJson: string | null;
  pending: Pending | null;
  pendingSince: number;
  isFinalSeen: boolean;
  notBefore: number;
  backoffMs: number;
  lastEditAt: number;
  failures: number;
  /** Discord refused an edit with 30046: this message takes no more edits for a while. */
  isCapped: boolean;
  /** Edits of an earlier message of this key were given up on, and this key got its one fresh post. */
  isFreshPost: boolean;
}

function errorCode(error: unknown): unknown {
  return typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
}

/** When a message was created, from its snowflake. */
export function messageCreatedAt(messageId: string): number {
  try {
    return Number((BigInt(messageId) >> 22n) + DISCORD_EPOCH_MS);
  } catch {
    return 0;
  }
}

/**
 * One per channel: keeps the live status messages of a channel under Discord's edit limit. One request at a time;
 * the latest state of a key replaces what was waiting; a render equal to what is shown is skipped; final states go
 * first and are always delivered (re-posted when the message is gone or too old to edit); a deleted message is
 * re-posted and its new id reported.
 */
export class EditScheduler {
  readonly channelId: string;
  private readonly slots = new Map<number, Slot>();
  private readonly finished = new Map<number, string>();
  /** Giving up is final: message ids no edit goes to again, and keys that no update reaches any more. */
  private readonly deadMessageIds = new Set<string>();
  private readonly abandoned = new Map<number, string>();
  private readonly editTimes: number[] = [];
  private readonly idleWaiters = new Set<() => void>();
  private readonly budget: EditBudget;
  private readonly marginMs: number;
  private readonly oldMessageAgeMs: number;
  private readonly oldMessageIntervalMs: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly retryMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private isBusy = false;
  private inFlight: Slot | undefined;
  private isClosed = false;

  constructor(private readonly options: EditSchedulerOptions) {
    this.channelId = options.channelId;
    this.budget = options.budget ?? DEFAULT_EDIT_BUDGET;
    this.marginMs = options.marginMs ?? 250;
    this.oldMessageAgeMs = options.oldMessageAgeMs ?? 3_600_000;
    this.oldMessageIntervalMs = options.oldMessageIntervalMs ?? 60_000;
    this.backoffMs = options.backoffMs ?? 60_000;
    this.maxBackoffMs = options.maxBackoffMs ?? 15 * 60_000;
    this.retryMs = options.retryMs ?? 2_000;
    this.now = options.now ?? Date.now;
  }

  update(key: number, body: StatusBody, update: StatusUpdate): void {
    if (this.isClosed) return;
    const json = JSON.stringify(body);
    if (this.finished.get(key) === json || this.abandoned.has(key)) return;
    let slot = this.slots.get(key);
    if (!slot) {
      const known = update.messageId ?? null;
      slot = {
        key, messageId: known !== null && this.deadMessageIds.has(known) ? null : known, sentJson: null, pending: null,
        pendingSince: 0, isFinalSeen: false, notBefore: 0, backoffMs: this.backoffMs, lastEditAt: 0, failures: 0,
        isCapped: false, isFreshPost: false,
      };
      this.slots.set(key, slot);
    }
    // A stale update that arrives after the final one must not replace it.
    if (slot.isFinalSeen && !update.isFinal) return;
    slot.isFinalSeen ||= update.isFinal;
    if (json === slot.sentJson) {
      slot.pending = null;
      if (update.isFinal) this.finish(slot, json);
      this.notifyIfIdle();
      return;
    }
    if (!slot.pending) slot.pendingSince = this.now();
    slot.pending = { body, json, isFinal: update.isFinal };
    if (update.isFinal && slot.isCapped && !this.isInFlight(slot)) this.repost(slot);
    this.pump();
  }

  /** Why a key's status message is no longer updated, once given up on for good. */
  abandonedReason(key: number): string | undefined {
    return this.abandoned.get(key);
  }

  /** Keys with an update not yet delivered. */
  get pendingCount(): number {
    let count = 0;
    for (const slot of this.slots.values()) if (slot.pending) count += 1;
    return count;
  }

  /** Resolves true once everything waiting is delivered, false after `timeoutMs`. */
  flush(timeoutMs: number): Promise<boolean> {
    if (this.isIdle()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.idleWaiters.delete(done);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.idleWaiters.delete(done);
        resolve(false);
      }, timeoutMs);
      this.idleWaiters.add(done);
    });
  }

  close(): void {
    this.isClosed = true;
    clearTimeout(this.timer);
    for (const waiter of [...this.idleWaiters]) waiter();
  }

  private isIdle(): boolean {
    return !this.isBusy && this.pendingCount === 0;
  }

  private notifyIfIdle(): void {
    if (this.isIdle()) for (const waiter of [...this.idleWaiters]) waiter();
  }

  private finish(slot: Slot, json: string): void {
    this.slots.delete(slot.key);
    this.finished.set(slot.key, json);
    if (this.finished.size > FINISHED_REMEMBERED) this.finished.delete(this.finished.keys().next().value!);
  }

  /** The earliest time the next edit keeps `count` edits per window, counted from when earlier ones completed. */
  private budgetFreeAt(now: number): number {
    const { count, windowMs } = this.budget;
    if (this.editTimes.length < count) return now;
    return this.editTimes[this.editTimes.length - count]! + windowMs + this.marginMs;
  }

  private earliestEdit(slot: Slot, pending: Pending): number {
    let at = slot.notBefore;
    const isOld = slot.messageId !== null && this.now() - messageCreatedAt(slot.messageId) > this.oldMessageAgeMs;
    if (isOld && !pending.isFinal) at = Math.max(at, slot.lastEditAt + this.oldMessageIntervalMs);
    return at;
  }

  private pump(): void {
    if (this.isBusy || this.isClosed) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    const now = this.now();
    let wakeAt = Infinity;
    let post: Slot | undefined;
    const edits: Slot[] = [];
    for (const slot of this.slots.values()) {
      if (!slot.pending) continue;
      const at = slot.messageId === null ? slot.notBefore : this.earliestEdit(slot, slot.pending);
      if (at > now) {
        wakeAt = Math.min(wakeAt, at);
        continue;
      }
      // Posts do not count against the edit budget; a new process shows up at once.
      if (slot.messageId === null) {
        if (!post || slot.pendingSince < post.pendingSince) post = slot;
      } else {
        edits.push(slot);
      }
    }
    if (post) {
      void this.send(post, 'post');
      return;
    }
    if (edits.length) {
      const freeAt = this.budgetFreeAt(now);
      if (freeAt <= now) {
        edits.sort((a, b) => Number(b.pending!.isFinal) - Number(a.pending!.isFinal) || a.pendingSince - b.pendingSince);
        void this.send(edits[0]!, 'edit');
        return;
      }
      wakeAt = Math.min(wakeAt, freeAt);
    }
    if (wakeAt !== Infinity) {
      this.timer = setTimeout(() => this.pump(), Math.max(1, wakeAt - now));
      this.timer.unref();
    }
    this.notifyIfIdle();
  }

  private async send(slot: Slot, kind: 'post' | 'edit'): Promise<void> {
    this.isBusy = true;
    this.inFlight = slot;
    const update = slot.pending!;
    slot.pending = null;
    try {
      if (kind === 'post') {
        const messageId = await this.options.transport.post(this.channelId, update.body);
        slot.messageId = messageId;
        this.report(slot.key, messageId);
      } else {
        await this.options.transport.edit(this.channelId, slot.messageId!, update.body);
        slot.lastEditAt = this.now();
      }
      slot.sentJson = update.json;
      // Updates may have arrived while the request was in flight.
      const waiting = slot.pending as Pending | null;
      const isSame = waiting?.json === update.json;
      const isFinal = update.isFinal || (isSame && waiting!.isFinal);
      if (isSame) slot.pending = null;
      slot.failures = 0;
      slot.backoffMs = this.backoffMs;
      slot.isCapped = false;
      if (isFinal && !slot.pending) this.finish(slot, update.json);
    } catch (error) {
      this.handleFailure(slot, update, kind, error);
    } finally {
      if (kind === 'edit') {
        this.editTimes.push(this.now());
        if (this.editTimes.length > this.budget.count) this.editTimes.splice(0, this.editTimes.length - this.budget.count);
      }
      this.isBusy = false;
      this.inFlight = undefined;
      this.pump();
    }
  }

  private handleFailure(slot: Slot, update: Pending, kind: 'post' | 'edit', error: unknown): void {
    const code = errorCode(error);
    const log = this.options.log;
    const context = { channelId: this.channelId, key: slot.key, messageId: slot.messageId, kind, code };
    slot.pending ??= update;
    if (kind === 'edit' && code === RESTJSONErrorCodes.UnknownMessage) {
      log.info(context, 'status message was deleted; posting it again');
      this.repost(slot);
      return;
    }
    if (kind === 'edit' && code === RESTJSONErrorCodes.MaximumNumberOfEditsToMessagesOlderThanOneHourReached) {
      if (slot.pending.isFinal) {
        log.info(context, 'status message is too old to edit; posting the final state as a new message');
        this.repost(slot);
        return;
      }
      slot.isCapped = true;
      slot.notBefore = this.now() + slot.backoffMs;
      log.warn({ ...context, backoffMs: slot.backoffMs }, 'edit cap of an old status message reached; backing off');
      slot.backoffMs = Math.min(slot.backoffMs * 2, this.maxBackoffMs);
      return;
    }
    slot.failures += 1;
    // A post that fails, after edits were given up on, means the channel takes no posts either: stop at once.
    if (slot.failures >= MAX_FAILURES || (kind === 'post' && slot.isFreshPost)) {
      this.giveUp(slot, { ...context, err: error, failures: slot.failures });
      return;
    }
    slot.notBefore = this.now() + this.retryMs * slot.failures;
    log.warn({ ...context, err: error }, 'status message update failed; will retry');
  }

  /**
   * Final for the message: no edit goes to it again. Its key gets one fresh post (if the channel still takes posts);
   * when that fails too, or edits failed on a fresh post already, the key is dropped for good. Logged once.
   */
  private giveUp(slot: Slot, context: Record<string, unknown>): void {
    if (slot.messageId !== null) this.deadMessageIds.add(slot.messageId);
    if (slot.messageId !== null && !slot.isFreshPost) {
      this.options.log.error(context, 'giving up on editing a status message; posting a fresh one');
      this.repost(slot);
      slot.isFreshPost = true;
      slot.failures = 0;
      return;
    }
    this.options.log.error(context, 'giving up on the status of this process: Discord refuses its edits and posts');
    this.slots.delete(slot.key);
    const code = context.code === undefined ? '' : ` (Discord error ${String(context.code)})`;
    this.abandoned.set(slot.key, `not updated any more: Discord refused its edits and a fresh post${code}`);
  }

  /** The next delivery of this key is a new message (the old one is gone, or too old to edit). */
  private repost(slot: Slot): void {
    slot.messageId = null;
    slot.sentJson = null;
    slot.notBefore = 0;
    slot.isCapped = false;
    slot.backoffMs = this.backoffMs;
  }

  private isInFlight(slot: Slot): boolean {
    return this.inFlight === slot;
  }

  private report(key: number, messageId: string): void {
    try {
      this.options.onPosted(key, messageId);
    } catch (error) {
      this.options.log.error({ channelId: this.channelId, key, messageId, err: error }, 'failed to store a status message id');
    }
  }
}

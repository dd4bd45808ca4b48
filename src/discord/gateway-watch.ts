import type { EventEmitter } from 'node:events';
import { Events, type Client } from 'discord.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';

const INTENTS_FIX = 'turn on Message Content Intent under Bot → Privileged Gateway Intents in the Discord Developer Portal';

/** What each gateway close code means to an operator; `fix` marks the ones after which discord.js gives up. */
export const GATEWAY_CLOSE_CODES: Record<number, { meaning: string; fix?: string }> = {
  1000: { meaning: 'closed normally' },
  1001: { meaning: 'going away' },
  1006: { meaning: 'connection dropped' },
  4000: { meaning: 'unknown error on Discord\'s side' },
  4001: { meaning: 'unknown opcode sent' },
  4002: { meaning: 'Discord could not decode a payload' },
  4003: { meaning: 'payload sent before identifying' },
  4004: { meaning: 'authentication failed', fix: 'Discord rejected DISCORD_TOKEN; reset the token under Bot in the Discord Developer Portal and put it in .env' },
  4005: { meaning: 'identified twice' },
  4007: { meaning: 'invalid sequence on resume' },
  4008: { meaning: 'rate limited (too many gateway payloads)' },
  4009: { meaning: 'session timed out' },
  4010: { meaning: 'invalid shard', fix: 'the shard settings are invalid; run one shard (the default)' },
  4011: { meaning: 'sharding required', fix: 'the bot is in too many guilds for one connection; Chorus runs a single shard' },
  4012: { meaning: 'invalid API version', fix: 'upgrade Chorus (its discord.js speaks a gateway version Discord no longer accepts)' },
  4013: { meaning: 'invalid intents', fix: INTENTS_FIX },
  4014: { meaning: 'disallowed intents', fix: INTENTS_FIX },
};

export function describeCloseCode(code: number): string {
  return `${code} ${GATEWAY_CLOSE_CODES[code]?.meaning ?? 'unknown close code'}`;
}

/** The error a fatal close code ends the bot with, or undefined when discord.js reconnects by itself. */
export function fatalCloseError(code: number): AppError | undefined {
  const fix = GATEWAY_CLOSE_CODES[code]?.fix;
  return fix ? new AppError('DISCORD_GATEWAY', `the gateway closed with ${describeCloseCode(code)}: ${fix}`, { details: { code } }) : undefined;
}

/** Codes the client itself closes with while resuming or shutting down: not news to an operator. */
const OWN_CLOSE_CODES = new Set([1000, 4200]);

export interface GatewayWatchOptions {
  log: Logger;
  /** A fatal close code (discord.js will not reconnect). */
  onFatal: (error: AppError) => void;
  /** At most one close is logged per this many ms; the next log says how many were not. */
  logIntervalMs?: number;
  now?: () => number;
}

/**
 * Makes gateway trouble visible: every close is logged (rate-limited) with its code and meaning, reconnects are
 * logged, and the fatal codes end the bot with one line saying what to fix.
 */
export class GatewayWatch {
  private lastLogAt = -Infinity;
  private unlogged = 0;
  private closesSinceReady = 0;
  private lastCode: number | undefined;
  private readonly log: Logger;
  private readonly logIntervalMs: number;
  private readonly now: () => number;

  constructor(private readonly client: Client, private readonly options: GatewayWatchOptions) {
    this.log = options.log;
    this.logIntervalMs = options.logIntervalMs ?? 10_000;
    this.now = options.now ?? Date.now;
    client.on(Events.ShardDisconnect, (event) => this.onClose(event.code));
    client.on(Events.ShardReady, () => this.onConnected('ready'));
    client.on(Events.ShardResume, () => this.onConnected('resumed'));
  }

  /** The last close code seen, described, for a start that timed out. */
  get lastClose(): string | undefined {
    return this.lastCode === undefined ? undefined : describeCloseCode(this.lastCode);
  }

  /**
   * discord.js reports the code of a recoverable close only on its internal gateway manager, which exists once
   * `login()` was called; fatal codes also arrive as ShardDisconnect.
   */
  attachAfterLogin(): void {
    const manager = (this.client.ws as unknown as { _ws?: EventEmitter })._ws;
    manager?.on('closed', ({ code }: { code: number }) => {
      if (!fatalCloseError(code)) this.onClose(code);
    });
  }

  private onClose(code: number): void {
    if (OWN_CLOSE_CODES.has(code)) return;
    this.lastCode = code;
    this.closesSinceReady += 1;
    const fatal = fatalCloseError(code);
    if (fatal) {
      this.log.error({ code, meaning: GATEWAY_CLOSE_CODES[code]?.meaning }, 'discord gateway closed for good');
      this.options.onFatal(fatal);
      return;
    }
    const at = this.now();
    if (at - this.lastLogAt < this.logIntervalMs) {
      this.unlogged += 1;
      return;
    }
    this.log.warn({ code, meaning: GATEWAY_CLOSE_CODES[code]?.meaning ?? 'unknown close code', notLogged: this.unlogged }, 'discord gateway closed; reconnecting');
    this.lastLogAt = at;
    this.unlogged = 0;
  }

  private onConnected(how: 'ready' | 'resumed'): void {
    if (this.closesSinceReady === 0) return;
    this.log.info({ how, closes: this.closesSinceReady }, 'discord gateway connected again');
    this.closesSinceReady = 0;
  }
}

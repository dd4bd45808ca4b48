import { randomBytes } from 'node:crypto';
import { WebSocket, type RawData } from 'ws';
import type { Payload } from './http.js';

const OP = { dispatch: 0, heartbeat: 1, identify: 2, presenceUpdate: 3, resume: 6, reconnect: 7, requestMembers: 8, invalidSession: 9, hello: 10, heartbeatAck: 11 } as const;
const CLOSE = { unknownOpcode: 4001, decodeError: 4002, notAuthenticated: 4003, authenticationFailed: 4004, alreadyAuthenticated: 4005 } as const;
const REPLAY_BUFFER_SIZE = 1000;

export const INTENTS = { guildMessages: 1 << 9, directMessages: 1 << 12, messageContent: 1 << 15 } as const;

interface Dispatch {
  op: 0;
  t: string;
  s: number;
  d: Payload;
}

/** A gateway session: survives a dropped socket so that RESUME can replay what the bot missed. */
export interface GatewaySession {
  id: string;
  intents: number;
  sequence: number;
  socket: WebSocket | null;
  buffer: Dispatch[];
}

export interface GatewayHooks {
  token: string;
  heartbeatIntervalMs: number;
  /** Payloads for READY and the GUILD_CREATEs that follow it. */
  readyPayloads(session: GatewaySession): Array<{ t: string; d: Payload }>;
  memberChunk(guildId: string): Payload[];
  onChange(): void;
}

export interface GatewayCounters {
  connections: number;
  identifies: number;
  resumes: number;
}

/** The WebSocket side of the fake: hello, heartbeats, IDENTIFY/RESUME and dispatches with an increasing `s`. */
export class FakeGateway {
  readonly sessions = new Map<string, GatewaySession>();
  readonly sockets = new Set<WebSocket>();
  readonly counters: GatewayCounters = { connections: 0, identifies: 0, resumes: 0 };

  /** When set, every connection is closed with this code at its IDENTIFY or RESUME (a gateway that never gets ready). */
  private rejectCode: number | null = null;

  constructor(private readonly hooks: GatewayHooks) {}

  /** Closes every open socket with `code` and every later connection at its IDENTIFY/RESUME; null stops that. */
  rejectConnections(code: number | null): void {
    this.rejectCode = code;
    if (code !== null) this.drop(code);
  }

  accept(socket: WebSocket): void {
    this.counters.connections += 1;
    this.sockets.add(socket);
    let session: GatewaySession | null = null;
    socket.on('message', (data: RawData) => {
      if (this.rejectCode !== null) {
        socket.close(this.rejectCode, 'Rejected by the test');
        return;
      }
      let packet: { op?: unknown; d?: unknown };
      try {
        packet = JSON.parse(data.toString()) as { op?: unknown; d?: unknown };
      } catch {
        socket.close(CLOSE.decodeError, 'Error while decoding payload.');
        return;
      }
      const d = (typeof packet.d === 'object' && packet.d !== null ? packet.d : {}) as Payload;
      switch (packet.op) {
        case OP.heartbeat:
          this.send(socket, { op: OP.heartbeatAck });
          return;
        case OP.identify:
          if (session) {
            socket.close(CLOSE.alreadyAuthenticated, 'You sent more than one identify payload.');
            return;
          }
          if (d.token !== this.hooks.token) {
            socket.close(CLOSE.authenticationFailed, 'Authentication failed.');
            return;
          }
          session = this.identify(socket, typeof d.intents === 'number' ? d.intents : 0);
          return;
        case OP.resume:
          session = this.resume(socket, d);
          return;
        case OP.requestMembers:
          if (!session) break;
          this.dispatchTo(session, 'GUILD_MEMBERS_CHUNK', {
            guild_id: d.guild_id,
            members: this.hooks.memberChunk(String(d.guild_id)),
            chunk_index: 0,
            chunk_count: 1,
            not_found: [],
            nonce: d.nonce,
          });
          return;
        case OP.presenceUpdate:
          if (!session) break;
          return;
        default:
          if (session) socket.close(CLOSE.unknownOpcode, 'Unknown opcode.');
          return;
      }
      socket.close(CLOSE.notAuthenticated, 'Not authenticated.');
    });
    socket.on('close', (code: number) => {
      this.sockets.delete(socket);
      if (session && session.socket === socket) {
        session.socket = null;
        // A client that closes with 1000/1001 ends its session; other codes leave it resumable.
        if (code === 1000 || code === 1001) this.sessions.delete(session.id);
      }
      this.hooks.onChange();
    });
    socket.on('error', () => { /* the close handler does the bookkeeping */ });
    this.send(socket, { op: OP.hello, d: { heartbeat_interval: this.hooks.heartbeatIntervalMs } });
  }

  private identify(socket: WebSocket, intents: number): GatewaySession {
    this.counters.identifies += 1;
    const session: GatewaySession = { id: randomBytes(16).toString('hex'), intents, sequence: 0, socket, buffer: [] };
    this.sessions.set(session.id, session);
    for (const { t, d } of this.hooks.readyPayloads(session)) this.dispatchTo(session, t, d);
    this.hooks.onChange();
    return session;
  }

  private resume(socket: WebSocket, d: Payload): GatewaySession | null {
    const session = typeof d.session_id === 'string' ? this.sessions.get(d.session_id) : undefined;
    if (d.token !== this.hooks.token) {
      socket.close(CLOSE.authenticationFailed, 'Authentication failed.');
      return null;
    }
    if (!session) {
      this.send(socket, { op: OP.invalidSession, d: false });
      return null;
    }
    this.counters.resumes += 1;
    session.socket?.terminate();
    session.socket = socket;
    const seq = typeof d.seq === 'number' ? d.seq : 0;
    for (const packet of session.buffer) if (packet.s > seq) this.send(socket, packet);
    this.dispatchTo(session, 'RESUMED', {});
    this.hooks.onChange();
    return session;
  }

  /** Sessions the bot holds (connected, or dropped but resumable). */
  liveSessions(): GatewaySession[] {
    return [...this.sessions.values()];
  }

  connectedSessions(): GatewaySession[] {
    return this.liveSessions().filter((session) => session.socket?.readyState === WebSocket.OPEN);
  }

  dispatchTo(session: GatewaySession, t: string, d: Payload): void {
    session.sequence += 1;
    const packet: Dispatch = { op: 0, t, s: session.sequence, d };
    session.buffer.push(packet);
    if (session.buffer.length > REPLAY_BUFFER_SIZE) session.buffer.shift();
    if (session.socket) this.send(session.socket, packet);
  }

  /** Sends an event to every session that passes `accepts`; returns how many got it. */
  dispatch(t: string, d: Payload | ((session: GatewaySession) => Payload | null)): number {
    let count = 0;
    for (const session of this.liveSessions()) {
      const data = typeof d === 'function' ? d(session) : d;
      if (!data) continue;
      this.dispatchTo(session, t, data);
      count += 1;
    }
    return count;
  }

  /** Closes every socket with `code`; codes other than 1000/1001 keep the sessions resumable. */
  drop(code: number): void {
    for (const socket of this.sockets) socket.close(code, 'Dropped by the test');
  }

  /** Asks connected clients to reconnect and resume (op 7). */
  requestReconnect(): void {
    for (const socket of this.sockets) this.send(socket, { op: OP.reconnect, d: null });
  }

  closeAll(): void {
    for (const socket of this.sockets) socket.terminate();
    this.sockets.clear();
    this.sessions.clear();
  }

  private send(socket: WebSocket, packet: object): void {
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(packet));
  }
}

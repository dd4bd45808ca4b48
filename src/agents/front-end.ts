import type { ResourceSample } from '../process/events.js';
import type { TailLine } from '../process/tail.js';
import type { ProcessRecord } from '../store/process-repo.js';
import type { AgentConfig } from './agent-config.js';

/** What a background process's live status shows; the front end renders it (embed, text line) and coalesces. */
export interface ProcessStatusView {
  record: ProcessRecord;
  tail: TailLine[];
  usage: ResourceSample | undefined;
  /** Live hooks, described in one line each. */
  hooks: string[];
  /** The process has ended: this is the last update and must be delivered. */
  isFinal: boolean;
}

/** The seam between agents and the place people see them: the console now, Discord too. */
export interface FrontEnd {
  /** Posts in the agent's channel; returns the message id (a reply to it continues the branch), or null. */
  postMessage(agent: AgentConfig, text: string, options?: { replyToMessageId?: string }): Promise<string | null>;
  /** Called on every change of a background process; the front end decides how often to show it. */
  showProcessStatus(agent: AgentConfig, view: ProcessStatusView): void;
  /** A branch started or stopped working (typing indicator). */
  setWorking?(agent: AgentConfig, isWorking: boolean): void;
}

/** What a /process command (slash, console line) answers. */
export interface CommandReply {
  text: string;
  /** Output too long for one message: sent as a file instead (bounded, the tail kept). */
  attachment?: { name: string; content: string };
  /** A user-facing refusal or bad input: ephemeral in Discord. */
  isError?: boolean;
}

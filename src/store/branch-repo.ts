import type { Db } from './database.js';

export type BranchStatus = 'running' | 'idle' | 'stopped';
export type BranchOrigin = 'message' | 'hook';

export interface BranchRecord {
  id: string;
  agentName: string;
  status: BranchStatus;
  origin: BranchOrigin;
  model: string | null;
  depth: number;
  parentProcessId: number | null;
  startedBy: string | null;
  stoppedBy: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface NewBranch {
  id: string;
  agentName: string;
  origin: BranchOrigin;
  model: string | null;
  depth: number;
  parentProcessId: number | null;
  startedBy: string | null;
}

/** One stored message of a branch, in the Chat Completions shape's terms. */
export interface BranchMessageRow {
  id: number;
  seq: number | null;
  role: 'user' | 'assistant' | 'tool';
  content: string | null;
  toolCallsJson: string | null;
  toolCallId: string | null;
  /** Assistant messages: the other fields their endpoint put on them, as JSON. */
  extraJson?: string | null;
  /** Assistant messages: the endpoint (base URL and model) that wrote them. */
  endpoint?: string | null;
}

type Row = Record<string, unknown>;

function toBranch(row: Row): BranchRecord {
  return {
    id: row.id as string,
    agentName: row.agent_name as string,
    status: row.status as BranchStatus,
    origin: row.origin as BranchOrigin,
    model: row.model as string | null,
    depth: row.depth as number,
    parentProcessId: row.parent_process_id as number | null,
    startedBy: row.started_by as string | null,
    stoppedBy: row.stopped_by as string | null,
    createdAt: row.created_at as string,
    updatedAt: row.updated_at as string,
  };
}

function toMessage(row: Row): BranchMessageRow {
  return {
    id: row.id as number,
    seq: row.seq as number | null,
    role: row.role as BranchMessageRow['role'],
    content: row.content as string | null,
    toolCallsJson: row.tool_calls_json as string | null,
    toolCallId: row.tool_call_id as string | null,
    extraJson: row.extra_json as string | null,
    endpoint: row.endpoint as string | null,
  };
}

/** All SQL about branches, their messages, and the front-end messages they posted. */
export class BranchRepo {
  private readonly statements;

  constructor(private readonly db: Db) {
    this.statements = {
      insert: db.prepare(`INSERT INTO branches (id, agent_name, status, origin, model, depth, parent_process_id, started_by, created_at, updated_at)
        VALUES (@id, @agentName, 'idle', @origin, @model, @depth, @parentProcessId, @startedBy, @now, @now)`),
      byId: db.prepare('SELECT * FROM branches WHERE id = ?'),
      setStatus: db.prepare('UPDATE branches SET status = @status, stopped_by = @stoppedBy, updated_at = @now WHERE id = @id'),
      settleRunning: db.prepare(`UPDATE branches SET status = 'idle', updated_at = ? WHERE status = 'running'`),
      listAgent: db.prepare('SELECT * FROM branches WHERE agent_name = ? ORDER BY created_at DESC, id LIMIT ?'),
      nextSeq: db.prepare('SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM branch_messages WHERE branch_id = ?'),
      insertMessage: db.prepare(`INSERT INTO branch_messages (branch_id, seq, role, content, tool_calls_json, tool_call_id, extra_json, endpoint, created_at)
        VALUES (@branchId, @seq, @role, @content, @toolCallsJson, @toolCallId, @extraJson, @endpoint, @now)`),
      messages: db.prepare('SELECT * FROM branch_messages WHERE branch_id = ? AND seq IS NOT NULL ORDER BY seq'),
      pending: db.prepare('SELECT id FROM branch_messages WHERE branch_id = ? AND seq IS NULL ORDER BY id'),
      number: db.prepare('UPDATE branch_messages SET seq = ? WHERE id = ?'),
      insertPost: db.prepare(`INSERT OR REPLACE INTO branch_posts (message_id, branch_id, agent_name, created_at) VALUES (?, ?, ?, ?)`),
      postBranch: db.prepare('SELECT branch_id FROM branch_posts WHERE message_id = ?'),
    };
  }

  create(branch: NewBranch): BranchRecord {
    this.statements.insert.run({ ...branch, now: new Date().toISOString() });
    return this.get(branch.id)!;
  }

  get(id: string): BranchRecord | undefined {
    const row = this.statements.byId.get(id) as Row | undefined;
    return row && toBranch(row);
  }

  setStatus(id: string, status: BranchStatus, stoppedBy: string | null = null): void {
    this.statements.setStatus.run({ id, status, stoppedBy, now: new Date().toISOString() });
  }

  /** At start-up: a branch left `running` lost its loop with the previous bot; it waits for the next message. */
  settleInterrupted(): number {
    return this.statements.settleRunning.run(new Date().toISOString()).changes;
  }

  listForAgent(agentName: string, limit = 50): BranchRecord[] {
    return (this.statements.listAgent.all(agentName, limit) as Row[]).map(toBranch);
  }

  /** Appends to the history (numbered now), or queues it (numbered when the loop takes it) when `isQueued`. */
  appendMessage(branchId: string, message: Omit<BranchMessageRow, 'id' | 'seq'>, isQueued = false): number {
    return this.db.transaction(() => {
      const seq = isQueued ? null : (this.statements.nextSeq.get(branchId) as { n: number }).n;
      return Number(this.statements.insertMessage.run({
        branchId, seq, role: message.role, content: message.content, toolCallsJson: message.toolCallsJson,
        toolCallId: message.toolCallId, extraJson: message.extraJson ?? null, endpoint: message.endpoint ?? null, now: new Date().toISOString(),
      }).lastInsertRowid);
    }).immediate();
  }

  /** Moves queued messages into the history, in arrival order; returns how many. */
  takeQueued(branchId: string): number {
    return this.db.transaction(() => {
      const queued = this.statements.pending.all(branchId) as Array<{ id: number }>;
      let seq = (this.statements.nextSeq.get(branchId) as { n: number }).n;
      for (const { id } of queued) this.statements.number.run(seq++, id);
      return queued.length;
    }).immediate();
  }

  hasQueued(branchId: string): boolean {
    return this.statements.pending.get(branchId) !== undefined;
  }

  messages(branchId: string): BranchMessageRow[] {
    return (this.statements.messages.all(branchId) as Row[]).map(toMessage);
  }

  recordPost(messageId: string, branchId: string, agentName: string): void {
    this.statements.insertPost.run(messageId, branchId, agentName, new Date().toISOString());
  }

  /** The branch that posted a front-end message, if a branch did. */
  branchForPost(messageId: string): string | undefined {
    return (this.statements.postBranch.get(messageId) as { branch_id: string } | undefined)?.branch_id;
  }
}

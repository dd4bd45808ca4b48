import { randomBytes } from 'node:crypto';
import { AppError } from '../errors.js';
import type { HookEngine } from '../hooks/hook-engine.js';
import type { HookContext, HookPort, SpawnedBranch } from '../hooks/hook-port.js';
import type { Logger } from '../logger.js';
import type { OutputEvent, ResourceSample } from '../process/events.js';
import type { ProcessManager } from '../process/process-manager.js';
import { BranchRepo, type BranchRecord } from '../store/branch-repo.js';
import type { Db } from '../store/database.js';
import type { ProcessRecord } from '../store/process-repo.js';
import { checkAgentName, defaultAgentConfig, ensureWorkspace, listAgentConfigs, loadAgentConfig, type AgentConfig } from './agent-config.js';
import { BranchRunner, describeTurnError, type TurnOutcome } from './branch-runner.js';
import type { CommandReply, FrontEnd, ProcessStatusView } from './front-end.js';
import { runProcessCommand, type ProcessCommandOptions, type ProcessSubcommand } from './process-commands.js';
import type { LlmClient } from './llm-client.js';

export const NO_LLM_MESSAGE =
  'No LLM is configured: set LLM_BASE_URL (and LLM_API_KEY, LLM_MODEL if your endpoint needs them) in .env or the environment and restart Chorus; /process commands work without it.';
export const DEFAULT_STATUS_THROTTLE_MS = 1_000;
const STATUS_TAIL_LINES = 20;
/** A live status message is someone looking: its process's CPU and memory are sampled this often while it shows. */
const STATUS_SAMPLE_INTERVAL_MS = 10_000;

export interface AgentRuntimeOptions {
  home: string;
  db: Db;
  manager: ProcessManager;
  /** The hook engine, or a getter for it (the engine is built with this runtime as its port). */
  hooks: HookEngine | (() => HookEngine);
  frontEnd: FrontEnd;
  log: Logger;
  /** Absent: no LLM is configured; chat answers say how to configure one. */
  llm?: LlmClient | undefined;
  /** The agent used when no agent.json exists (console mode: `main`). */
  defaultAgent?: string | undefined;
  maxSteps?: number;
  /** At most one status update per background process this often; the final one always goes out at once. */
  statusThrottleMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface IncomingMessage {
  agentName: string;
  authorId: string;
  content: string;
  /** The front end's id of this message: the answer replies to it. */
  messageId?: string | undefined;
  /** When it replies to a message a branch posted, that branch continues. */
  replyToMessageId?: string | undefined;
}

export interface MessageOutcome {
  /** null when no branch was started (no LLM configured). */
  branchId: string | null;
  isNewBranch: boolean;
  /** Settles when the branch has answered and has nothing more queued. */
  finished: Promise<void>;
}

interface LiveBranch {
  record: BranchRecord;
  controller: AbortController;
  running: Promise<void> | null;
  /** The front-end message the next answer replies to. */
  replyTo: string | undefined;
  isStopped: boolean;
  idleWaiters: Array<() => void>;
}

interface StatusState {
  timer: NodeJS.Timeout | undefined;
  lastShownAt: number;
}

function newBranchId(): string {
  return `br-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/**
 * The agents layer: branches and their tool loops, the hook port, and the live status of background processes, all
 * shown through one FrontEnd (the console, Discord).
 */
export class AgentRuntime implements HookPort {
  readonly repo: BranchRepo;
  private readonly options: AgentRuntimeOptions;
  readonly manager: ProcessManager;
  private readonly log: Logger;
  private readonly runner: BranchRunner | undefined;
  private readonly live = new Map<string, LiveBranch>();
  private readonly status = new Map<number, StatusState>();
  /** Process id → whether it is a background process (the only kind with a live status). */
  private readonly isBackground = new Map<number, boolean>();
  /** Process id → the release of the resource interest its live status holds. */
  private readonly sampling = new Map<number, () => void>();
  private readonly statusThrottleMs: number;
  private readonly listeners: Array<() => void> = [];
  private isClosed = false;

  constructor(options: AgentRuntimeOptions) {
    this.options = options;
    this.log = options.log.child({ module: 'agents' });
    this.manager = options.manager;
    this.repo = new BranchRepo(options.db);
    this.statusThrottleMs = options.statusThrottleMs ?? DEFAULT_STATUS_THROTTLE_MS;
    const settled = this.repo.settleInterrupted();
    if (settled) this.log.info({ branches: settled }, 'branches interrupted by the last shutdown wait for their next message');
    this.runner = options.llm && new BranchRunner({
      llm: options.llm, repo: this.repo, manager: options.manager, hooks: () => this.hooks, log: this.log,
      ...(options.maxSteps !== undefined && { maxSteps: options.maxSteps }), ...(options.env && { env: options.env }),
    });
    this.listen('started', (p: ProcessRecord) => this.onWatched(p));
    this.listen('adopted', (p: ProcessRecord) => this.onWatched(p));
    // Paused, resumed, or a foreground command gone to the background (which gets its status message now).
    this.listen('changed', (p: ProcessRecord) => this.onWatched(p));
    this.listen('output', (o: OutputEvent) => this.onActivity(o.processId));
    this.listen('resources', (s: ResourceSample) => this.onActivity(s.processId));
    this.listen('exited', (p: ProcessRecord) => this.onEnded(p));
    this.listen('killed', (p: ProcessRecord) => this.onEnded(p));
    this.listen('lost', (p: ProcessRecord) => this.onEnded(p));
    // A run that ends into a pending restart gets its last picture; the next run reuses its status message.
    this.listen('restarting', (p: ProcessRecord) => this.onRestarting(p));
    this.listen('ready', (p: ProcessRecord) => this.onActivity(p.id));
    this.listen('readyFailed', (p: ProcessRecord) => this.onActivity(p.id));
  }

  get hooks(): HookEngine {
    const { hooks } = this.options;
    return typeof hooks === 'function' ? hooks() : hooks;
  }

  get isLlmConfigured(): boolean {
    return this.runner !== undefined;
  }

  /** The configured agents (agent.json files), or the default agent when there are none. */
  agents(): AgentConfig[] {
    const configured = listAgentConfigs(this.options.home);
    if (configured.length || !this.options.defaultAgent) return configured;
    return [loadAgentConfig(this.options.home, this.options.defaultAgent)];
  }

  agent(name: string): AgentConfig {
    checkAgentName(name);
    const agents = this.agents();
    const found = agents.find((a) => a.name === name);
    if (!found) throw new AppError('AGENT_NOT_FOUND', `${JSON.stringify(name)} (agents: ${agents.map((a) => a.name).join(', ') || 'none'})`);
    return found;
  }

  agentForChannel(channelId: string): AgentConfig | undefined {
    return this.agents().find((a) => a.channelId === channelId);
  }

  /** A message for an agent: a reply to a branch's message continues that branch, anything else starts one. */
  async handleMessage(message: IncomingMessage): Promise<MessageOutcome> {
    const agent = this.agent(message.agentName);
    ensureWorkspace(agent);
    if (!this.runner) {
      await this.post(agent, NO_LLM_MESSAGE, message.messageId, null);
      return { branchId: null, isNewBranch: false, finished: Promise.resolve() };
    }
    const repliedBranch = message.replyToMessageId === undefined ? undefined : this.repo.branchForPost(message.replyToMessageId);
    let live = repliedBranch === undefined ? undefined : this.liveBranch(repliedBranch);
    if (live && live.record.agentName !== agent.name) live = undefined;
    const isNewBranch = live === undefined;
    if (!live) {
      live = this.createBranch({
        agentName: agent.name, origin: 'message', model: null, depth: 0, parentProcessId: null, startedBy: message.authorId,
      });
    } else if (live.isStopped) {
      // A person replying to a stopped branch picks it up again (hooks do not: for them it is gone).
      live.isStopped = false;
      live.controller = new AbortController();
      this.repo.setStatus(live.record.id, 'idle');
    }
    this.repo.appendMessage(live.record.id, { role: 'user', content: message.content, toolCallsJson: null, toolCallId: null }, true);
    live.replyTo = message.messageId;
    return { branchId: live.record.id, isNewBranch, finished: this.wake(live) };
  }

  /** Stops a branch: its loop, and its concurrent processes (never its background ones); returns those it stopped. */
  async stopBranchById(branchId: string, by: string): Promise<ProcessRecord[]> {
    const live = this.liveBranch(branchId);
    if (!live) throw new AppError('INVALID_INPUT', `no branch ${branchId}`);
    live.isStopped = true;
    this.repo.setStatus(branchId, 'stopped', by);
    live.controller.abort(new AppError('INTERNAL', `branch stopped by ${by}`, { userFacing: false }));
    const stopped = await this.stopConcurrent(branchId, by);
    await live.running?.catch(() => undefined);
    // A start_process of the interrupted step may have finished after the first sweep.
    stopped.push(...await this.stopConcurrent(branchId, by));
    this.log.info({ branchId, by, processes: stopped.length }, 'branch stopped');
    return stopped;
  }

  private async stopConcurrent(branchId: string, by: string): Promise<ProcessRecord[]> {
    const concurrent = this.manager.repo.listRunningForBranch(branchId).filter((p) => p.processType === 'concurrent' || p.processType === 'foreground');
    const results = await Promise.allSettled(concurrent.map((p) => this.manager.kill({ id: p.id }, { by })));
    for (const result of results) {
      if (result.status === 'rejected') this.log.warn({ branchId, err: result.reason }, 'a concurrent process of a stopped branch could not be stopped');
    }
    return results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  }

  /** The shared /process handlers, scoped to `agent` (what the console and the slash commands call). */
  runProcessCommand(agent: AgentConfig, actorId: string, subcommand: ProcessSubcommand | string, options: ProcessCommandOptions = {}): Promise<CommandReply> {
    return runProcessCommand({ manager: this.manager, hooks: this.hooks, agent, actorId, log: this.log }, subcommand, options);
  }

  branch(branchId: string): BranchRecord | undefined {
    return this.repo.get(branchId);
  }

  // HookPort

  async injectContext(context: HookContext): Promise<boolean> {
    if (!context.branchId) return false;
    const live = this.liveBranch(context.branchId);
    if (!live || live.isStopped || live.record.agentName !== context.agentName) return false;
    if (!this.runner) {
      await this.post(this.agentOf(context.agentName), `${context.text}\n\n${NO_LLM_MESSAGE}`, undefined, live.record.id);
      return true;
    }
    this.repo.appendMessage(live.record.id, { role: 'user', content: context.text, toolCallsJson: null, toolCallId: null }, true);
    void this.wake(live);
    return true;
  }

  async spawnBranch(context: HookContext): Promise<SpawnedBranch> {
    const agent = this.agentOf(context.agentName);
    const live = this.createBranch({
      agentName: agent.name, origin: 'hook', model: context.modelForHooks, depth: context.depth, parentProcessId: context.processId,
      startedBy: `hook:${context.hookId}`,
    });
    if (!this.runner) {
      await this.post(agent, `${context.text}\n\n${NO_LLM_MESSAGE}`, undefined, live.record.id);
      return { branchId: live.record.id, finished: Promise.resolve() };
    }
    this.repo.appendMessage(live.record.id, { role: 'user', content: context.text, toolCallsJson: null, toolCallId: null }, true);
    return { branchId: live.record.id, finished: this.wake(live) };
  }

  async stopBranch(context: HookContext): Promise<void> {
    if (context.branchId && this.repo.get(context.branchId)) await this.stopBranchById(context.branchId, `hook:${context.hookId}`);
  }

  async notifyChannel(context: HookContext, text: string): Promise<void> {
    const branchId = context.branchId && this.repo.get(context.branchId) ? context.branchId : null;
    await this.post(this.agentOf(context.agentName), text, undefined, branchId);
  }

  /** Waits until no branch loop runs (tests, a console at end of input). */
  async idle(): Promise<void> {
    for (;;) {
      const running = [...this.live.values()].flatMap((l) => (l.running ? [l.running] : []));
      if (!running.length) return;
      await Promise.allSettled(running);
    }
  }

  /** Interrupts running branches (they resume on their next message) and stops showing statuses. */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const off of this.listeners) off();
    for (const state of this.status.values()) clearTimeout(state.timer);
    this.status.clear();
    for (const release of this.sampling.values()) release();
    this.sampling.clear();
    for (const live of this.live.values()) {
      if (live.running) live.controller.abort(new AppError('INTERNAL', 'Chorus is shutting down', { userFacing: false }));
    }
    await this.idle();
  }

  private listen(event: 'started' | 'adopted' | 'changed' | 'exited' | 'killed' | 'lost' | 'restarting' | 'ready' | 'readyFailed', fn: (p: ProcessRecord) => void): void;
  private listen(event: 'output', fn: (o: OutputEvent) => void): void;
  private listen(event: 'resources', fn: (s: ResourceSample) => void): void;
  private listen(event: string, fn: (arg: never) => void): void {
    const manager = this.manager as unknown as { on(e: string, f: unknown): void; off(e: string, f: unknown): void };
    const safe = (arg: never) => {
      try {
        fn(arg);
      } catch (error) {
        this.log.error({ err: error, event }, 'agents: a process event handler failed');
      }
    };
    manager.on(event, safe);
    this.listeners.push(() => manager.off(event, safe));
  }

  /** The agent of a row: its agent.json, or the defaults when it has none (a process spawned from the CLI). */
  private agentOf(name: string): AgentConfig {
    try {
      return loadAgentConfig(this.options.home, name);
    } catch (error) {
      this.log.warn({ agent: name, err: error }, 'agent.json is invalid; using defaults for this event');
      return defaultAgentConfig(this.options.home, name);
    }
  }

  private createBranch(fields: Omit<BranchRecord, 'id' | 'status' | 'stoppedBy' | 'createdAt' | 'updatedAt'>): LiveBranch {
    const record = this.repo.create({ id: newBranchId(), ...fields });
    const live: LiveBranch = { record, controller: new AbortController(), running: null, replyTo: undefined, isStopped: false, idleWaiters: [] };
    this.live.set(record.id, live);
    this.log.info({ branchId: record.id, agent: record.agentName, origin: record.origin, depth: record.depth }, 'branch started');
    return live;
  }

  /** The in-memory state of a stored branch, loaded on first use (after a restart, history comes from the store). */
  private liveBranch(branchId: string): LiveBranch | undefined {
    let live = this.live.get(branchId);
    if (live) return live;
    const record = this.repo.get(branchId);
    if (!record) return undefined;
    live = { record, controller: new AbortController(), running: null, replyTo: undefined, isStopped: record.status === 'stopped', idleWaiters: [] };
    this.live.set(branchId, live);
    return live;
  }

  /** Runs the branch's loop if it is idle; a running loop takes queued messages at its next step. */
  private wake(live: LiveBranch): Promise<void> {
    const finished = new Promise<void>((resolve) => live.idleWaiters.push(resolve));
    if (!live.running && !this.isClosed) {
      live.running = this.runLoop(live).finally(() => {
        live.running = null;
        if (!live.isStopped && !this.isClosed && this.repo.hasQueued(live.record.id)) {
          void this.wake(live);
          return;
        }
        for (const resolve of live.idleWaiters.splice(0)) resolve();
      });
    }
    return finished;
  }

  private async runLoop(live: LiveBranch): Promise<void> {
    const { record } = live;
    const agent = this.agentOf(record.agentName);
    const log = this.log.child({ branchId: record.id, agent: agent.name });
    this.repo.setStatus(record.id, 'running');
    this.options.frontEnd.setWorking?.(agent, true);
    try {
      while (!live.isStopped && !this.isClosed && this.repo.hasQueued(record.id)) {
        const replyTo = live.replyTo;
        let outcome: TurnOutcome;
        try {
          outcome = await this.runner!.run({ id: record.id, agent, depth: record.depth, model: record.model }, live.controller.signal);
        } catch (error) {
          if (live.controller.signal.aborted) return;
          throw error;
        }
        if (live.isStopped || this.isClosed) return;
        if (outcome.kind === 'error') log.warn({ err: outcome.error, steps: outcome.steps }, 'branch turn failed');
        await this.post(agent, renderOutcome(outcome, this.runner!.maxSteps), replyTo, record.id);
      }
    } catch (error) {
      log.error({ err: error }, 'branch loop failed');
    } finally {
      this.options.frontEnd.setWorking?.(agent, false);
      if (!live.isStopped) this.repo.setStatus(record.id, 'idle');
    }
  }

  /** Posts in the agent's channel; a post by a branch is remembered, so a reply to it continues the branch. */
  private async post(agent: AgentConfig, text: string, replyTo: string | undefined, branchId: string | null): Promise<void> {
    try {
      const messageId = await this.options.frontEnd.postMessage(agent, text, replyTo === undefined ? undefined : { replyToMessageId: replyTo });
      if (messageId !== null && branchId !== null) this.repo.recordPost(messageId, branchId, agent.name);
    } catch (error) {
      this.log.error({ err: error, agent: agent.name, branchId }, 'could not post a message');
    }
  }

  // Live status of background processes.

  private backgroundOf(processId: number): boolean {
    let is = this.isBackground.get(processId);
    if (is === undefined) {
      is = this.manager.repo.get(processId)?.processType === 'background';
      this.isBackground.set(processId, is);
    }
    return is;
  }

  private onWatched(record: ProcessRecord): void {
    this.isBackground.set(record.id, record.processType === 'background');
    if (record.processType !== 'background' || this.isClosed) return;
    if (!this.sampling.has(record.id)) this.sampling.set(record.id, this.manager.resources.interest(record.id, { intervalMs: STATUS_SAMPLE_INTERVAL_MS }));
    this.showStatus(record.id, false);
  }

  private onActivity(processId: number): void {
    if (this.isClosed || !this.backgroundOf(processId)) return;
    let state = this.status.get(processId);
    if (!state) {
      state = { timer: undefined, lastShownAt: 0 };
      this.status.set(processId, state);
    }
    if (state.timer) return;
    const delay = Math.max(0, state.lastShownAt + this.statusThrottleMs - Date.now());
    state.timer = setTimeout(() => {
      state.timer = undefined;
      this.showStatus(processId, false);
    }, delay);
    state.timer.unref();
  }

  private onEnded(record: ProcessRecord): void {
    const isBackground = record.processType === 'background';
    const state = this.status.get(record.id);
    clearTimeout(state?.timer);
    this.status.delete(record.id);
    this.isBackground.delete(record.id);
    this.sampling.get(record.id)?.();
    this.sampling.delete(record.id);
    if (isBackground && !this.isClosed) this.showStatus(record.id, true, record);
  }

  /** Not the end: the logical process's status message shows the pending restart, and its next run edits it on. */
  private onRestarting(record: ProcessRecord): void {
    clearTimeout(this.status.get(record.id)?.timer);
    this.status.delete(record.id);
    this.isBackground.delete(record.id);
    if (record.processType === 'background' && !this.isClosed) this.showStatus(record.id, false, record);
    this.status.delete(record.id);
  }

  private showStatus(processId: number, isFinal: boolean, known?: ProcessRecord): void {
    const record = known ?? this.manager.repo.get(processId);
    if (!record) return;
    if (!isFinal && record.status !== 'running' && record.status !== 'restarting') return;
    const state = this.status.get(processId) ?? { timer: undefined, lastShownAt: 0 };
    state.lastShownAt = Date.now();
    if (!isFinal) this.status.set(processId, state);
    const view: ProcessStatusView = {
      record,
      tail: this.manager.tail(processId, STATUS_TAIL_LINES) ?? [],
      usage: this.manager.usage(processId),
      hooks: this.hooks.hooksFor(processId).filter((h) => h.row.fireCount < h.row.maxFires).map((h) => h.description),
      isFinal,
    };
    try {
      this.options.frontEnd.showProcessStatus(this.agentOf(record.agentName), view);
    } catch (error) {
      this.log.error({ err: error, processId }, 'the front end failed to show a process status');
    }
  }
}

function renderOutcome(outcome: TurnOutcome, maxSteps: number): string {
  switch (outcome.kind) {
    case 'answer':
      return outcome.text;
    case 'step_limit':
      return `I stopped after ${maxSteps} steps without reaching an answer (the step limit). Reply to this message to let me continue.`;
    case 'error':
      return describeTurnError(outcome.error);
  }
}

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach } from 'vitest';
import { makeTempHome } from '../support/temp-home.js';
import { trackPid } from '../support/child-cleanup.js';
import { FakeLlmServer, type FakeLlmRequest, type FakeLlmServerOptions } from '../support/fake-llm-server.js';
import { AgentRuntime } from '../../src/agents/agent-runtime.js';
import { agentOwnerLoader, type AgentConfig } from '../../src/agents/agent-config.js';
import type { FrontEnd, ProcessStatusView } from '../../src/agents/front-end.js';
import { LlmClient, type LlmClientOptions } from '../../src/agents/llm-client.js';
import { HookEngine } from '../../src/hooks/hook-engine.js';
import { silentLogger } from '../../src/logger.js';
import { ProcessManager } from '../../src/process/process-manager.js';
import { openDatabase, type Db } from '../../src/store/database.js';

export interface Post {
  id: string;
  agent: string;
  text: string;
  replyTo: string | undefined;
}

/** A FrontEnd that records what the agents layer shows. */
export class RecordingFrontEnd implements FrontEnd {
  readonly posts: Post[] = [];
  readonly statuses: Array<{ agent: string; view: ProcessStatusView }> = [];
  private next = 1;

  constructor(private readonly prefix = 'm') {}

  async postMessage(agent: AgentConfig, text: string, options?: { replyToMessageId?: string }): Promise<string | null> {
    const id = `${this.prefix}${this.next++}`;
    this.posts.push({ id, agent: agent.name, text, replyTo: options?.replyToMessageId });
    return id;
  }

  showProcessStatus(agent: AgentConfig, view: ProcessStatusView): void {
    this.statuses.push({ agent: agent.name, view });
  }
}

export interface Harness {
  home: string;
  db: Db;
  manager: ProcessManager;
  hooks: HookEngine;
  agents: AgentRuntime;
  frontEnd: RecordingFrontEnd;
  llm: FakeLlmServer | undefined;
  /** Closes agents, hooks, manager and db (processes keep running), as a bot shutdown does. */
  stop: () => Promise<void>;
}

export interface HarnessOptions {
  home?: string;
  /** false: no LLM configured. */
  llm?: FakeLlmServer | false;
  llmServerOptions?: FakeLlmServerOptions;
  llmClient?: Partial<LlmClientOptions>;
  maxSteps?: number;
  statusThrottleMs?: number;
  logCapBytes?: number;
  frontEndPrefix?: string;
  env?: NodeJS.ProcessEnv;
  /** 'file': started in beforeAll and shared by the file's tests (a table of cases); closed, and its processes killed, after the last. */
  lifetime?: 'test' | 'file';
}

const cleanups: Array<() => Promise<void>> = [];
const fileCleanups: Array<() => Promise<void>> = [];
const servers: FakeLlmServer[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

afterAll(async () => {
  for (const cleanup of fileCleanups.splice(0).reverse()) await cleanup();
});

export async function startLlm(options: FakeLlmServerOptions = {}): Promise<FakeLlmServer> {
  const server = await FakeLlmServer.start(options);
  servers.push(server);
  return server;
}

/** The real AgentRuntime, HookEngine and ProcessManager on a fresh home, with a recording front end. */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const isFileScoped = options.lifetime === 'file';
  const home = options.home ?? makeTempHome('chorus-test-', { untilEndOfFile: isFileScoped });
  const db = openDatabase(join(home, 'chorus.db'));
  const log = silentLogger();
  const manager = new ProcessManager({
    home, db, log, pollIntervalMs: 100, resourceIntervalMs: 200, graceMs: 2_000, loadOwner: agentOwnerLoader(home),
    ...(options.logCapBytes !== undefined && { logCapBytes: options.logCapBytes }),
  });
  const track = (pid: number | null) => { if (pid) trackPid(pid, { group: true, untilEndOfFile: isFileScoped }); };
  manager.on('started', (p) => track(p.pid));
  manager.on('adopted', (p) => track(p.pid));
  let llm = options.llm === false ? undefined : options.llm;
  if (options.llm === undefined) {
    llm = isFileScoped ? await FakeLlmServer.start(options.llmServerOptions) : await startLlm(options.llmServerOptions);
    const started = llm;
    if (isFileScoped) fileCleanups.push(() => started.close());
  }
  const frontEnd = new RecordingFrontEnd(options.frontEndPrefix);
  let hooks: HookEngine | undefined;
  const agents = new AgentRuntime({
    home, db, manager, hooks: () => hooks!, frontEnd, log, defaultAgent: 'main',
    llm: llm && new LlmClient({ baseUrl: llm.baseUrl, model: 'test-model', log, retryBaseMs: 5, ...options.llmClient }),
    statusThrottleMs: options.statusThrottleMs ?? 100,
    ...(options.maxSteps !== undefined && { maxSteps: options.maxSteps }),
    ...(options.env && { env: options.env }),
  });
  hooks = new HookEngine({ manager, port: agents, log, cooldownMs: 100 });
  await manager.startSupervising();
  let isStopped = false;
  const stop = async () => {
    if (isStopped) return;
    isStopped = true;
    await agents.close();
    await hooks.close();
    await manager.close();
    db.close();
  };
  (isFileScoped ? fileCleanups : cleanups).push(stop);
  return { home, db, manager, hooks, agents, frontEnd, llm, stop };
}

export function writeAgent(home: string, name: string, json: Record<string, unknown>): void {
  mkdirSync(join(home, 'agents', name), { recursive: true });
  writeFileSync(join(home, 'agents', name, 'agent.json'), JSON.stringify({ name, ...json }));
}

export const node = JSON.stringify(process.execPath);
/** A shell command that runs a tiny node program (kept on one line: the shell would pass `\n` escapes through). */
export const script = (code: string) => `${node} -e ${JSON.stringify(code.replace(/\n\s*/g, ' '))}`;

type Message = { role: string; content: string | null; tool_calls?: Array<{ id: string; function: { name: string; arguments: string } }>; tool_call_id?: string };

export function messagesOf(request: FakeLlmRequest): Message[] {
  return request.body.messages as Message[];
}

/** The tool results of a request, by the name of the tool that was called. */
export function toolResults(request: FakeLlmRequest): Array<{ name: string; content: any; raw: string }> {
  const messages = messagesOf(request);
  const names = new Map<string, string>();
  for (const m of messages) for (const call of m.tool_calls ?? []) names.set(call.id, call.function.name);
  return messages.filter((m) => m.role === 'tool').map((m) => ({
    name: names.get(m.tool_call_id!) ?? '?', raw: m.content ?? '', content: JSON.parse(m.content ?? 'null'),
  }));
}

export function systemOf(request: FakeLlmRequest): string {
  return messagesOf(request)[0]!.content ?? '';
}

export function userTexts(request: FakeLlmRequest): string[] {
  return messagesOf(request).filter((m) => m.role === 'user').map((m) => m.content ?? '');
}

import { join } from 'node:path';
import { afterAll, afterEach } from 'vitest';
import { agentOwnerLoader, defaultAgentConfig, writeAgentConfig, type AgentConfig } from '../../src/agents/agent-config.js';
import { AgentRuntime } from '../../src/agents/agent-runtime.js';
import { LlmClient } from '../../src/agents/llm-client.js';
import { DiscordBot } from '../../src/discord/discord-bot.js';
import type { SchedulerTuning } from '../../src/discord/discord-front-end.js';
import { HookEngine } from '../../src/hooks/hook-engine.js';
import type { AgentDirectory } from '../../commands/command.js';
import { FileAgentDirectory } from '../../src/discord/agent-directory.js';
import { silentLogger, type Logger } from '../../src/logger.js';
import { ProcessManager } from '../../src/process/process-manager.js';
import { openDatabase, type Db } from '../../src/store/database.js';
import type { ProcessRecord, ProcessType } from '../../src/store/process-repo.js';
import { trackPid } from '../support/child-cleanup.js';
import { FakeDiscord, type FakeDiscordOptions } from '../support/fake-discord.js';
import { FakeLlmServer } from '../support/fake-llm-server.js';
import { makeTempHome } from '../support/temp-home.js';

export const GENERAL = '210000000000000001';
export const ALPHA_CHANNEL = '210000000000000002';
export const BETA_CHANNEL = '210000000000000003';
export const OPERATORS_ROLE = '220000000000000001';
export const DEVS_ROLE = '220000000000000002';
/** In alpha's allowed_user_ids. */
export const ALLOWED_USER = '230000000000000001';
/** Has the Devs role, which alpha allows. */
export const DEV_USER = '230000000000000002';
/** No allow-list, no role, no Manage Server. */
export const OUTSIDER = '230000000000000099';
/** The guild owner, listed in CHORUS_OWNER_IDS as whoever installs the bot would be. */
export const OWNER_ID = '230000000000000007';
export const TIMEOUT_MS = 10_000;

const node = JSON.stringify(process.execPath);

/** A command that prints `tick <i>` every `intervalMs`, `count` times, then exits with `code` (count 0: forever). */
export function ticker(count: number, intervalMs: number, code = 0): string {
  const script = `let i=0;const t=setInterval(()=>{console.log('tick '+i);i++;if(${count}>0&&i>=${count}){clearInterval(t);process.exit(${code});}},${intervalMs});`;
  return `${node} -e ${JSON.stringify(script)}`;
}

export interface HarnessOptions {
  fake?: FakeDiscordOptions;
  /** Reuse a running fake (a bot restart) and a home. */
  server?: FakeDiscord;
  home?: string;
  withLlm?: boolean;
  scheduler?: SchedulerTuning;
  statusThrottleMs?: number;
  log?: Logger;
  /** Wraps the bot's agent directory (to make it fail). */
  wrapDirectory?: (directory: AgentDirectory) => AgentDirectory;
  /** 'file': started in beforeAll and shared by the file's tests (a table of cases); stopped, and its processes killed, after the last. */
  lifetime?: 'test' | 'file';
}

export interface Harness {
  server: FakeDiscord;
  home: string;
  db: Db;
  manager: ProcessManager;
  hooks: HookEngine;
  agents: AgentRuntime;
  bot: DiscordBot;
  llm: FakeLlmServer | undefined;
  alpha: AgentConfig;
  beta: AgentConfig;
  /** Stops bot, agents, hooks and manager (processes keep running), as a shutdown does. */
  stop(): Promise<void>;
}

const cleanups: Array<() => Promise<void>> = [];
const fileCleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

afterAll(async () => {
  for (const cleanup of fileCleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

export function writeAgents(home: string): { alpha: AgentConfig; beta: AgentConfig } {
  const alpha = { ...defaultAgentConfig(home, 'alpha'), channelId: ALPHA_CHANNEL, allowedUserIds: [ALLOWED_USER], allowedRoleIds: [DEVS_ROLE], maxProcesses: 100 };
  const beta = { ...defaultAgentConfig(home, 'beta'), channelId: BETA_CHANNEL };
  writeAgentConfig(home, alpha);
  writeAgentConfig(home, beta);
  return { alpha, beta };
}

/** FakeDiscord + the real stack (process manager, hooks, AgentRuntime) + the Discord bot, logged in. */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const isFileScoped = options.lifetime === 'file';
  const scope = isFileScoped ? fileCleanups : cleanups;
  let server = options.server;
  if (!server) {
    server = await FakeDiscord.start({
      channels: [{ id: GENERAL, name: 'general' }, { id: ALPHA_CHANNEL, name: 'agent-alpha' }, { id: BETA_CHANNEL, name: 'agent-beta' }],
      roles: [{ id: OPERATORS_ROLE, name: 'Operators', permissions: '32' }, { id: DEVS_ROLE, name: 'Devs', permissions: '0' }],
      ownerUserId: OWNER_ID,
      ...options.fake,
    });
    const fake = server;
    scope.push(() => fake.close());
  }
  const home = options.home ?? makeTempHome('chorus-discord-', { untilEndOfFile: isFileScoped });
  const { alpha, beta } = writeAgents(home);
  let llm: FakeLlmServer | undefined;
  if (options.withLlm) {
    const started = await FakeLlmServer.start();
    llm = started;
    scope.push(() => started.close());
  }
  const log = options.log ?? silentLogger();
  const db = openDatabase(join(home, 'chorus.db'));
  const manager = new ProcessManager({ home, db, log, loadOwner: agentOwnerLoader(home), pollIntervalMs: 100, resourceIntervalMs: 300, graceMs: 1_000 });
  const track = (pid: number | null) => { if (pid) trackPid(pid, { group: true, untilEndOfFile: isFileScoped }); };
  manager.on('started', (p) => track(p.pid));
  manager.on('adopted', (p) => track(p.pid));
  const bot = new DiscordBot({
    config: {
      discordToken: server.token, discordApiUrl: server.apiUrl, discordGuildId: server.guildId, ownerIds: [OWNER_ID],
      registerCommandsOnStart: true, chorusHome: home,
    },
    log, manager, ...(options.scheduler && { scheduler: options.scheduler }),
    ...(options.wrapDirectory && { directory: options.wrapDirectory(new FileAgentDirectory({ home, log })) }),
  });
  let hooks: HookEngine | undefined;
  const agents = new AgentRuntime({
    home, db, manager, hooks: () => hooks!, frontEnd: bot.frontEnd, log,
    llm: llm && new LlmClient({ baseUrl: llm.baseUrl, model: 'test-model', log, maxRetries: 0 }),
    statusThrottleMs: options.statusThrottleMs ?? 200,
  });
  hooks = new HookEngine({ manager, port: agents, log });
  await hooks.startSupervising();
  bot.attach(agents);
  let isStopped = false;
  const stop = async (): Promise<void> => {
    if (isStopped) return;
    isStopped = true;
    await bot.close();
    await agents.close();
    await hooks!.close();
    await manager.close();
    db.close();
  };
  scope.push(stop);
  await bot.start();
  return { server, home, db, manager, hooks, agents, bot, llm, alpha, beta, stop };
}

export async function spawnBackground(h: Harness, agent: AgentConfig, command: string, type: ProcessType = 'background'): Promise<ProcessRecord> {
  return h.manager.spawn({ agent, command, processType: type });
}

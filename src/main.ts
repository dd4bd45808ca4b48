import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { protectedPaths, type Config } from './config.js';
import { createLogger, type Logger } from './logger.js';
import type { Db } from './store/database.js';
import { openDatabase } from './store/database.js';
import { ProcessManager } from './process/process-manager.js';
import { HookEngine } from './hooks/hook-engine.js';
import type { HookPort } from './hooks/hook-port.js';
import { JournalPort } from './hooks/journal-port.js';
import { agentOwnerLoader, listAgentConfigs } from './agents/agent-config.js';
import { AgentRuntime } from './agents/agent-runtime.js';
import type { FrontEnd } from './agents/front-end.js';
import { LlmClient } from './agents/llm-client.js';
import { ConsoleFrontEnd } from './console/console-front-end.js';
import { runConsole } from './console/console-mode.js';

export interface RunOptions {
  /** Watch processes and run hooks only, with no chat front end. */
  headless: boolean;
}

export interface Runtime {
  config: Config;
  log: Logger;
  db: Db;
  manager: ProcessManager;
  hooks: HookEngine;
  close: () => Promise<void>;
}

/** What a hook port is built from; `hooks` is a getter because the engine is built with the port. */
export type PortDeps = Omit<Runtime, 'hooks' | 'close'> & { hooks: () => HookEngine };

/**
 * Opens the home and wires the process core and the hook engine. The port is where hook actions go (the agents
 * layer, or a journal); `supervise` recovers and starts watching.
 */
export async function startRuntime(config: Config, log: Logger, port: (deps: PortDeps) => HookPort): Promise<Runtime> {
  mkdirSync(config.chorusHome, { recursive: true, mode: 0o700 });
  chmodSync(config.chorusHome, 0o700);
  const db = openDatabase(join(config.chorusHome, 'chorus.db'));
  const manager = new ProcessManager({
    home: config.chorusHome, db, log, graceMs: config.killGraceMs, logCapBytes: config.logCapBytes,
    loadOwner: agentOwnerLoader(config.chorusHome),
    sandbox: { mode: config.sandboxMode, protectedDirs: protectedPaths(config) },
  });
  let hooks: HookEngine | undefined;
  const getHooks = () => {
    if (!hooks) throw new Error('the hook engine is not built yet');
    return hooks;
  };
  hooks = new HookEngine({ manager, log, port: port({ config, log, db, manager, hooks: getHooks }) });
  await hooks.startSupervising();
  const engine = hooks;
  return {
    config, log, db, manager, hooks: engine,
    close: async () => {
      await engine.close();
      await manager.close();
      db.close();
    },
  };
}

export function createLlmClient(config: Config, log: Logger): LlmClient | undefined {
  if (!config.llmBaseUrl) return undefined;
  return new LlmClient({
    baseUrl: config.llmBaseUrl, model: config.llmModel, timeoutMs: config.llmTimeoutMs, log: log.child({ module: 'llm' }),
    ...(config.llmApiKey && { apiKey: config.llmApiKey }),
  });
}

/** The process core, the hooks and the agents layer, with hook actions going to the agents and out through `frontEnd`. */
export async function startAgents(
  config: Config,
  log: Logger,
  frontEnd: (deps: PortDeps) => FrontEnd,
  defaultAgent?: string,
): Promise<{ runtime: Runtime; agents: AgentRuntime }> {
  let agents: AgentRuntime | undefined;
  const runtime = await startRuntime(config, log, (deps) => {
    agents = new AgentRuntime({
      home: config.chorusHome, db: deps.db, manager: deps.manager, hooks: deps.hooks, frontEnd: frontEnd(deps), log,
      llm: createLlmClient(config, log), defaultAgent,
    });
    return agents;
  });
  return { runtime, agents: agents! };
}

/** Resolves on the first SIGINT or SIGTERM (and aborts `controller`); `dispose` stops waiting (console end of input). */
function untilSignal(log: Logger, controller?: AbortController): { signalled: Promise<NodeJS.Signals>; dispose: () => void } {
  let dispose = () => {};
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    // Signal listeners hold nothing and the manager's timers are unref'd: without this the process exits at once (code 13).
    const keepAlive = setInterval(() => {}, 1 << 30);
    dispose = () => {
      clearInterval(keepAlive);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    };
    const stop = (signal: NodeJS.Signals) => {
      dispose();
      log.info({ signal }, 'shutting down');
      controller?.abort();
      resolve(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  return { signalled, dispose };
}

/** `chorus bot` / `chorus supervise`: runs until SIGINT or SIGTERM (or, on the console, end of input); processes keep running. */
export async function runBot(config: Config, options: RunOptions): Promise<number> {
  if (options.headless) return runHeadless(config, createLogger({ level: config.logLevel }));
  if (config.discordToken) return runDiscordBot(config, createLogger({ level: config.logLevel }));
  // The terminal is the chat: routine logs would drown it, so the console logs warnings unless LOG_LEVEL asks for more.
  return runConsoleBot(config, createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel }));
}

/** `chorus supervise`: watches processes and runs hooks; conversational actions go to a journal. */
async function runHeadless(config: Config, log: Logger): Promise<number> {
  const runtime = await startRuntime(config, log, () => new JournalPort(join(config.chorusHome, 'hook-journal.jsonl')));
  log.info({ home: config.chorusHome, headless: true }, 'chorus started');
  // Handlers first: whoever reads the ready line may send SIGTERM at once, which must stop it cleanly.
  const stopped = untilSignal(log);
  process.stdout.write(`chorus: supervising ${config.chorusHome} (pid ${process.pid})\n`);
  await stopped.signalled;
  await runtime.close();
  return 0;
}

/** Console mode: no DISCORD_TOKEN, so the agents talk on the terminal. */
async function runConsoleBot(config: Config, log: Logger): Promise<number> {
  const write = (text: string) => process.stdout.write(`${text}\n`);
  // A bad agent.json stops start-up with its one-line error before anything runs.
  listAgentConfigs(config.chorusHome);
  const frontEnd = new ConsoleFrontEnd(write);
  const { runtime, agents } = await startAgents(config, log, () => frontEnd, 'main');
  const controller = new AbortController();
  const signals = untilSignal(log, controller);
  try {
    write(`chorus: supervising ${config.chorusHome} (pid ${process.pid})`);
    const names = agents.agents().map((a) => a.name);
    write(`chorus: console mode (no DISCORD_TOKEN); agents: ${names.join(', ')}. Type a message, or /help.`);
    if (!agents.isLlmConfigured) write('chorus: no LLM is configured (LLM_BASE_URL); chat will say how to set one up, /process commands work.');
    const end = await runConsole({ agents, frontEnd, input: process.stdin, write, log, signal: controller.signal });
    log.info({ end }, 'console closed');
  } finally {
    signals.dispose();
    await agents.close();
    await runtime.close();
  }
  write('chorus: stopped (processes keep running)');
  return 0;
}

/**
 * Discord hook point (the Discord engineer's side lives in src/discord/): the same runtime and agents as the console,
 * with the Discord bot as the front end.
 */
async function runDiscordBot(config: Config, log: Logger): Promise<number> {
  const { DiscordBot } = await import('./discord/discord-bot.js');
  let bot: InstanceType<typeof DiscordBot> | undefined;
  const { runtime, agents } = await startAgents(config, log, (deps) => {
    bot = new DiscordBot({ config, log, manager: deps.manager });
    return bot.frontEnd;
  });
  // Handlers before login: a SIGTERM while connecting must still stop cleanly.
  const signals = untilSignal(log);
  try {
    bot!.attach(agents);
    await bot!.start();
    log.info({ home: config.chorusHome }, 'chorus started');
    process.stdout.write(`chorus: supervising ${config.chorusHome} (pid ${process.pid})\n`);
    await signals.signalled;
  } finally {
    signals.dispose();
    await bot!.close();
    await agents.close();
    await runtime.close();
  }
  return 0;
}

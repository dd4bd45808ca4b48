import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { protectedPaths, type Config } from './config.js';
import { AppError, errorMessage } from './errors.js';
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

export type StopReason =
  | { kind: 'signal'; signal: NodeJS.Signals }
  | { kind: 'failed'; error: unknown }
  | { kind: 'crash'; error: unknown; origin: 'uncaughtException' | 'unhandledRejection' };

/**
 * Resolves on the first SIGINT or SIGTERM, the first uncaught exception or unhandled rejection anywhere (a crash
 * runs the same shutdown as a signal, then exits non-zero so a service manager starts the bot again), or `failed`
 * rejecting; aborts `controller`. `dispose` stops waiting for signals; crashes stay caught (and only logged) until
 * `release`, so one during the shutdown cannot cut it short.
 */
export function untilStop(log: Logger, options: { controller?: AbortController; failed?: Promise<never> } = {}): {
  stopped: Promise<StopReason>;
  dispose: () => void;
  release: () => void;
} {
  let dispose = () => {};
  let isStopping = false;
  let settle: (reason: StopReason) => void = () => {};
  const stopped = new Promise<StopReason>((resolve) => { settle = resolve; });
  const stop = (reason: StopReason) => {
    if (isStopping) return;
    isStopping = true;
    dispose();
    options.controller?.abort();
    settle(reason);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    log.info({ signal }, 'shutting down');
    stop({ kind: 'signal', signal });
  };
  const onCrash = (origin: 'uncaughtException' | 'unhandledRejection') => (error: unknown) => {
    if (isStopping) {
      log.error({ err: error, origin }, 'another error while shutting down');
      return;
    }
    log.fatal({ err: error, origin }, 'internal error; shutting down (processes keep running)');
    stop({ kind: 'crash', error, origin });
  };
  const onException = onCrash('uncaughtException');
  const onRejection = onCrash('unhandledRejection');
  // Signal listeners hold nothing and the manager's timers are unref'd: without this the process exits at once (code 13).
  const keepAlive = setInterval(() => {}, 1 << 30);
  dispose = () => {
    clearInterval(keepAlive);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  options.failed?.catch((error: unknown) => {
    log.error({ err: error }, 'shutting down');
    stop({ kind: 'failed', error });
  });
  const release = () => {
    dispose();
    process.off('uncaughtException', onException);
    process.off('unhandledRejection', onRejection);
  };
  return { stopped, dispose, release };
}

/** After the shutdown: a crash or a failure becomes the one-line error of the command (and a non-zero exit). */
function throwIfFailed(reason: StopReason | undefined): void {
  if (!reason || reason.kind === 'signal') return;
  if (reason.kind === 'failed') throw reason.error;
  throw new AppError('INTERNAL', `${reason.origin}: ${errorMessage(reason.error)}; shut down cleanly (processes keep running)`, { cause: reason.error });
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
  const stop = untilStop(log);
  let reason: StopReason | undefined;
  try {
    process.stdout.write(`chorus: supervising ${config.chorusHome} (pid ${process.pid})\n`);
    reason = await stop.stopped;
    await runtime.close();
  } finally {
    stop.release();
  }
  throwIfFailed(reason);
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
  const stop = untilStop(log, { controller });
  let reason: StopReason | undefined;
  void stop.stopped.then((r) => { reason = r; });
  try {
    write(`chorus: supervising ${config.chorusHome} (pid ${process.pid})`);
    const names = agents.agents().map((a) => a.name);
    write(`chorus: console mode (no DISCORD_TOKEN); agents: ${names.join(', ')}. Type a message, or /help.`);
    if (!agents.isLlmConfigured) write('chorus: no LLM is configured (LLM_BASE_URL); chat will say how to set one up, /process commands work.');
    const end = await runConsole({ agents, frontEnd, input: process.stdin, write, log, signal: controller.signal });
    log.info({ end }, 'console closed');
  } finally {
    stop.dispose();
    try {
      await agents.close();
      await runtime.close();
    } finally {
      stop.release();
    }
  }
  throwIfFailed(reason);
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
    bot = new DiscordBot({ config, log, manager: deps.manager, readyTimeoutMs: config.discordReadyTimeoutMs });
    return bot.frontEnd;
  });
  // Handlers before login: a SIGTERM, a crash or a fatal gateway close while connecting must still stop cleanly.
  const stop = untilStop(log, { failed: bot!.failed });
  let reason: StopReason | undefined;
  try {
    bot!.attach(agents);
    const started = await Promise.race([bot!.start().then(() => undefined), stop.stopped]);
    reason = started ?? await (async () => {
      log.info({ home: config.chorusHome }, 'chorus started');
      process.stdout.write(`chorus: supervising ${config.chorusHome} (pid ${process.pid})\n`);
      return stop.stopped;
    })();
  } finally {
    stop.dispose();
    try {
      await bot!.close();
      await agents.close();
      await runtime.close();
    } finally {
      stop.release();
    }
  }
  throwIfFailed(reason);
  return 0;
}

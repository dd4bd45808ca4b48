import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './config.js';
import { createLogger, type Logger } from './logger.js';
import type { Db } from './store/database.js';
import { openDatabase } from './store/database.js';
import { ProcessManager } from './process/process-manager.js';
import { HookEngine } from './hooks/hook-engine.js';
import type { HookPort } from './hooks/hook-port.js';
import { JournalPort } from './hooks/journal-port.js';

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

/**
 * Opens the home and wires the process core and the hook engine. The port is where hook actions go (the agents
 * layer, or a journal); `supervise` recovers and starts watching.
 */
export async function startRuntime(config: Config, log: Logger, port: (runtime: Omit<Runtime, 'hooks' | 'close'>) => HookPort): Promise<Runtime> {
  mkdirSync(config.chorusHome, { recursive: true, mode: 0o700 });
  chmodSync(config.chorusHome, 0o700);
  const db = openDatabase(join(config.chorusHome, 'chorus.db'));
  const manager = new ProcessManager({
    home: config.chorusHome, db, log, graceMs: config.killGraceMs, logCapBytes: config.logCapBytes,
  });
  const hooks = new HookEngine({ manager, log, port: port({ config, log, db, manager }) });
  // Open firings first, so that output and exits found by recovery reach hooks in the state they had.
  hooks.resumeOpenFirings();
  await manager.startSupervising();
  hooks.settleMissedExits();
  return {
    config, log, db, manager, hooks,
    close: async () => {
      await hooks.close();
      await manager.close();
      db.close();
    },
  };
}

/** `chorus bot` / `chorus supervise`: runs until SIGINT or SIGTERM; processes keep running after it stops. */
export async function runBot(config: Config, options: RunOptions): Promise<number> {
  const log = createLogger({ level: config.logLevel });
  const runtime = await startRuntime(config, log, () => new JournalPort(join(config.chorusHome, 'hook-journal.jsonl')));
  log.info({ home: config.chorusHome, headless: options.headless }, 'chorus started');
  process.stdout.write(`chorus: supervising ${config.chorusHome} (pid ${process.pid})\n`);
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      log.info({ signal }, 'shutting down');
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await runtime.close();
  return 0;
}

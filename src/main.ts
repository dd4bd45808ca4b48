import { mkdirSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './config.js';
import { createLogger, type Logger } from './logger.js';
import { openDatabase } from './store/database.js';
import { ProcessManager } from './process/process-manager.js';

export interface RunOptions {
  /** Watch processes and run hooks only, with no chat front end. */
  headless: boolean;
}

export interface Runtime {
  config: Config;
  log: Logger;
  manager: ProcessManager;
  close: () => Promise<void>;
}

/** Wires the supervisor on CHORUS_HOME; front ends attach to what this returns. */
export async function startRuntime(config: Config, log: Logger): Promise<Runtime> {
  mkdirSync(config.chorusHome, { recursive: true, mode: 0o700 });
  chmodSync(config.chorusHome, 0o700);
  const db = openDatabase(join(config.chorusHome, 'chorus.db'));
  const manager = new ProcessManager({
    home: config.chorusHome, db, log, graceMs: config.killGraceMs, logCapBytes: config.logCapBytes,
  });
  await manager.startSupervising();
  return {
    config,
    log,
    manager,
    close: async () => {
      await manager.close();
      db.close();
    },
  };
}

/** `chorus bot` / `chorus supervise`: runs until SIGINT or SIGTERM; processes keep running after it stops. */
export async function runBot(config: Config, options: RunOptions): Promise<number> {
  const log = createLogger({ level: config.logLevel });
  const runtime = await startRuntime(config, log);
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

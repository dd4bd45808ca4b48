// pm2 for comparison only: installed into bench/pm2 on first use, run with its home (PM2_HOME) in a temp directory.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ROOT } from './chorus.js';

export const PM2_DIR = join(ROOT, 'bench', 'pm2');
const PM2_BIN = join(PM2_DIR, 'node_modules', 'pm2', 'bin', 'pm2');

/** Installs pm2 if needed; returns null when it is available, else why it is not. */
export function ensurePm2() {
  if (existsSync(PM2_BIN)) return null;
  try {
    process.stderr.write('bench: installing pm2 into bench/pm2 (first run only)\n');
    execFileSync('npm', ['install', '--prefix', PM2_DIR, '--no-audit', '--no-fund'], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 180_000 });
  } catch (error) {
    return `pm2 could not be installed: ${error.message.split('\n')[0]}`;
  }
  return existsSync(PM2_BIN) ? null : 'pm2 could not be installed (bench/pm2/node_modules/pm2 missing after npm install)';
}

/** Stops the daemon of `pm2Home` and everything it runs. */
export function killPm2(pm2Home) {
  if (!existsSync(PM2_BIN)) return;
  try {
    execFileSync(process.execPath, [PM2_BIN, 'kill'], { env: { ...process.env, PM2_HOME: pm2Home }, stdio: 'ignore', timeout: 60_000 });
  } catch { /* no daemon */ }
}

/**
 * The pm2 API, promisified; PM2_HOME must be set in the environment before this is called. `inFlight`: how many apps
 * of one `start` pm2 starts at a time (PM2_CONCURRENT_ACTIONS, read when pm2 is loaded; pm2's default is 2).
 */
export async function connectPm2({ inFlight } = {}) {
  if (!process.env.PM2_HOME) throw new Error('PM2_HOME is not set');
  if (inFlight !== undefined) process.env.PM2_CONCURRENT_ACTIONS = String(inFlight);
  const pm2 = createRequire(join(PM2_DIR, 'package.json'))('pm2');
  const call = (name, ...args) => new Promise((resolve, reject) => pm2[name](...args, (error, value) => (error ? reject(error) : resolve(value))));
  await call('connect');
  return {
    start: (config) => call('start', config),
    list: () => call('list'),
    delete: (what) => call('delete', what).catch(() => undefined),
    disconnect: () => pm2.disconnect(),
    daemonPid: () => Number(readFileSync(join(process.env.PM2_HOME, 'pm2.pid'), 'utf8').trim()),
  };
}

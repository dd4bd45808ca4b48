import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AppError } from '../errors.js';
import { parseVerbArgs } from './args.js';

export const UNIT_NAME = 'chorus.service';
const RESTART_DELAY_SECONDS = 5;

/** The checkout this CLI runs from (dist/src/cli/ → the repository root). */
export function checkoutDir(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

export interface UnitOptions {
  checkout: string;
  nodePath: string;
  isSystem: boolean;
  /** The account a system unit runs as. */
  user: string;
}

/**
 * A systemd unit that runs `chorus bot` from the checkout, whose .env the bot reads from its working directory.
 * KillMode=process: a stop signals the bot alone, so agents' processes (in the same cgroup) keep running and the
 * next start adopts them; the default (control-group) would kill every one of them.
 */
export function renderUnit(options: UnitOptions): string {
  return [
    '[Unit]',
    'Description=Chorus: a Discord bot that hosts LLM agents and their processes',
    'Documentation=file://' + join(options.checkout, 'README.md'),
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    ...(options.isSystem ? [`User=${options.user}`] : []),
    `WorkingDirectory=${escapePercent(options.checkout)}`,
    `ExecStart=${[options.nodePath, join(options.checkout, 'bin', 'chorus.js'), 'bot'].map(quoteWord).join(' ')}`,
    // A crash (or a fatal error) exits non-zero and is restarted; a stop (SIGTERM) exits 0 and stays stopped.
    'Restart=on-failure',
    `RestartSec=${RESTART_DELAY_SECONDS}`,
    '# Stopping the bot must never stop the agents\' processes: only the bot itself is signalled.',
    'KillMode=process',
    'KillSignal=SIGTERM',
    'TimeoutStopSec=30',
    '',
    '[Install]',
    `WantedBy=${options.isSystem ? 'multi-user.target' : 'default.target'}`,
    '',
  ].join('\n');
}

/** systemd expands %-specifiers everywhere in a unit. */
function escapePercent(text: string): string {
  return text.replace(/%/g, '%%');
}

/** One ExecStart word: quoted when it holds spaces, quotes or backslashes. */
function quoteWord(word: string): string {
  const escaped = escapePercent(word);
  return /[\s"'\\]/.test(escaped) ? `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"` : escaped;
}

export function unitPath(isSystem: boolean, env: NodeJS.ProcessEnv): string {
  if (isSystem) return join('/etc/systemd/system', UNIT_NAME);
  const config = env.XDG_CONFIG_HOME?.trim() || join(env.HOME?.trim() || homedir(), '.config');
  return join(config, 'systemd', 'user', UNIT_NAME);
}

/** systemd runs as the init system (the check sd_booted() makes). */
export function isSystemdRunning(): boolean {
  return existsSync('/run/systemd/system');
}

function systemctl(isSystem: boolean): string {
  return isSystem ? 'systemctl' : 'systemctl --user';
}

export interface ServiceIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

/** `chorus service install [--system] [--print]` and `chorus service uninstall [--system]`. */
export async function service(args: string[], io: ServiceIo, options: { hasDiscordToken: boolean }): Promise<number> {
  const [action, ...rest] = args;
  if (action !== 'install' && action !== 'uninstall') {
    throw new AppError('INVALID_INPUT', `service: the action must be install or uninstall (got ${action === undefined ? 'nothing' : JSON.stringify(action)})`);
  }
  const { values } = parseVerbArgs(`service ${action}`, rest, {
    system: { type: 'boolean' }, ...(action === 'install' && { print: { type: 'boolean' } }),
  }, false);
  const isSystem = values.system ?? false;
  const path = unitPath(isSystem, io.env);
  const ctl = systemctl(isSystem);
  if (action === 'uninstall') {
    if (!existsSync(path)) throw new AppError('INVALID_INPUT', `service uninstall: no unit at ${path}${isSystem ? '' : ' (a system unit needs --system)'}`);
    rmSync(path);
    io.out(`removed ${path}`);
    io.out(`then: ${ctl} disable --now chorus; ${ctl} daemon-reload   (the agents' processes keep running)`);
    return 0;
  }
  const unit = renderUnit({ checkout: checkoutDir(), nodePath: process.execPath, isSystem, user: userInfo().username });
  const isPrintOnly = (values as { print?: boolean }).print ?? false;
  if (isPrintOnly) {
    io.out(unit);
    return 0;
  }
  if (!isSystemdRunning()) {
    io.out(unit);
    io.err(`chorus: systemd is not running on this machine (no /run/systemd/system), so nothing was written; the unit above is what ${path} would hold. Without systemd, see README "Running as a service" for a while loop.`);
    return 1;
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, unit, { mode: 0o644 });
  io.out(`wrote ${path}`);
  if (!options.hasDiscordToken) io.err('chorus: warning: DISCORD_TOKEN is not set in .env; as a service the bot has no terminal for console mode and would stop at once');
  io.out(`enable and start it: ${ctl} daemon-reload && ${ctl} enable --now chorus`);
  if (!isSystem) io.out('to keep it running after you log out: loginctl enable-linger ' + userInfo().username);
  io.out(`logs: journalctl ${isSystem ? '' : '--user '}-u chorus -f`);
  return 0;
}

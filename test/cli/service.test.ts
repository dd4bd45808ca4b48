import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isSystemdRunning } from '../../src/cli/service.js';
import { isAlive, trackPid } from '../support/child-cleanup.js';
import { homeWithRunningProcess } from '../support/agent-home.js';
import { CHORUS_BIN, runCli } from '../support/cli.js';
import { FakeDiscord } from '../support/fake-discord.js';
import { makeTempHome } from '../support/temp-home.js';
import { waitFor } from '../support/wait-for.js';

const CHECKOUT = join(CHORUS_BIN, '..', '..');

function hasSystemdAnalyze(): boolean {
  try {
    execFileSync('systemd-analyze', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** `Key=value` lines of a unit's [Service] section. */
function serviceKeys(unit: string): Map<string, string> {
  const section = unit.split('[Service]')[1]!.split('[Install]')[0]!;
  return new Map(section.split('\n').filter((l) => /^\w+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

let server: FakeDiscord | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('chorus service', () => {
  it('prints a user unit that runs chorus bot from this checkout, restarts on failure and stops only the bot', async () => {
    const home = makeTempHome();
    const result = await runCli(home, ['service', 'install', '--print']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const keys = serviceKeys(result.stdout);
    expect(keys.get('ExecStart')).toBe(`${process.execPath} ${join(CHECKOUT, 'bin', 'chorus.js')} bot`);
    expect(keys.get('WorkingDirectory')).toBe(CHECKOUT);
    expect(keys.get('Restart')).toBe('on-failure');
    expect(Number(keys.get('RestartSec'))).toBeGreaterThan(0);
    expect(keys.get('KillMode')).toBe('process');
    expect(keys.has('User')).toBe(false);
    expect(result.stdout).toMatch(/^WantedBy=default\.target$/m);
    if (hasSystemdAnalyze()) {
      const path = join(home, 'chorus.service');
      writeFileSync(path, result.stdout);
      // Throws (with systemd's words) when the unit does not parse.
      execFileSync('systemd-analyze', ['verify', path], { stdio: 'pipe' });
    }
  });

  it('prints a system unit with --system: runs as this user, wanted by multi-user.target', async () => {
    const result = await runCli(makeTempHome(), ['service', 'install', '--system', '--print']);
    expect(result.code).toBe(0);
    expect(serviceKeys(result.stdout).get('User')).toMatch(/^\S+$/);
    expect(result.stdout).toMatch(/^WantedBy=multi-user\.target$/m);
  });

  it.skipIf(isSystemdRunning())('where systemd is absent, install prints the unit, says so, writes nothing and exits 1', async () => {
    const home = makeTempHome();
    const result = await runCli(home, ['service', 'install'], { env: { XDG_CONFIG_HOME: join(home, 'config') } });
    expect(result.code).toBe(1);
    expect(serviceKeys(result.stdout).get('KillMode')).toBe('process');
    expect(result.stderr.trimEnd().split('\n')).toEqual([expect.stringMatching(/^chorus: systemd is not running on this machine .*nothing was written.*while loop/)]);
    expect(existsSync(join(home, 'config', 'systemd', 'user', 'chorus.service'))).toBe(false);
  });

  it('uninstall removes the unit and says how to disable it', async () => {
    const home = makeTempHome();
    const unit = join(home, 'config', 'systemd', 'user', 'chorus.service');
    mkdirSync(join(unit, '..'), { recursive: true });
    writeFileSync(unit, '[Unit]\n');
    const result = await runCli(home, ['service', 'uninstall'], { env: { XDG_CONFIG_HOME: join(home, 'config') } });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`removed ${unit}`);
    expect(result.stdout).toContain('systemctl --user disable --now chorus');
    expect(existsSync(unit)).toBe(false);
  });

  it('the unit\'s ExecStart, stopped the way KillMode=process stops it (SIGTERM to the bot alone), exits 0 and leaves agents\' processes running', async () => {
    server = await FakeDiscord.start();
    const { home, pid } = await homeWithRunningProcess(server.channels[1]!.id);
    const keys = serviceKeys((await runCli(home, ['service', 'install', '--print'])).stdout);
    const [command, ...args] = keys.get('ExecStart')!.split(' ');
    // As systemd starts it: from WorkingDirectory, with its own environment (here the test Discord's).
    const bot = spawn(command!, args, {
      cwd: keys.get('WorkingDirectory'),
      env: { PATH: process.env.PATH, HOME: process.env.HOME, CHORUS_HOME: home, DISCORD_TOKEN: server.token, DISCORD_API_URL: server.apiUrl, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    trackPid(bot.pid!);
    let out = '';
    bot.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    const exited = new Promise<number | null>((resolve) => bot.once('exit', (code) => resolve(code)));
    await waitFor(() => out.includes('chorus: supervising'), { timeoutMs: 20_000, what: 'the bot to be ready' });
    process.kill(bot.pid!, 'SIGTERM');
    // Exit 0 on a stop: Restart=on-failure leaves a stopped bot stopped.
    expect(await exited).toBe(0);
    expect(isAlive(pid)).toBe(true);
  });
});

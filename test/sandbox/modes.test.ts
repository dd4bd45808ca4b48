import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runForeground } from '../../src/agents/run-command.js';
import { agentOwnerLoader } from '../../src/agents/agent-config.js';
import { isAppError } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import { listRunDirs } from '../support/cli.js';
import { trackPid } from '../support/child-cleanup.js';
import { startManager } from '../support/manager.js';
import { makeTempHome } from '../support/temp-home.js';

/** A logger whose lines are kept, to count warnings. */
function capturedLogger(): { log: ReturnType<typeof createLogger>; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const destination = new Writable({ write(chunk, _encoding, done) { chunks.push(String(chunk)); done(); } });
  return { log: createLogger({ level: 'warn', destination }), lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l)) };
}

/** A bwrap that exists but fails the way it does under Ubuntu 24.04's AppArmor restriction. */
function brokenBwrap(): string {
  const path = join(makeTempHome(), 'bwrap');
  writeFileSync(path, '#!/bin/sh\necho "bwrap: setting up uid map: Permission denied" >&2\nexit 1\n');
  chmodSync(path, 0o755);
  return path;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(() => undefined, (error: unknown) => error);
}

describe('CHORUS_SANDBOX modes', () => {
  it('auto without bwrap warns once at start-up, naming the fix, and runs processes unconfined', async () => {
    const { log, lines } = capturedLogger();
    const { manager } = await startManager({ log, sandbox: { mode: 'auto', bwrapPath: null } });
    const record = await manager.spawn({ agent: 'demo', command: 'sleep 30' });
    trackPid(record.pid!, { group: true });
    await manager.spawn({ agent: 'demo', command: 'true' });
    expect(record.sandbox).toBe('none');
    const warnings = lines().filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toMatch(/processes run unconfined \(CHORUS_SANDBOX=auto\): bwrap was not found on PATH: install bubblewrap \(apt-get install bubblewrap\)/);
  });

  it('auto with a bwrap that fails its probe says what to do about user namespaces', async () => {
    const { log, lines } = capturedLogger();
    await startManager({ log, sandbox: { mode: 'auto', bwrapPath: brokenBwrap() } });
    const warning = String(lines().find((l) => l.level === 40)?.msg);
    expect(warning).toContain('failed a probe run (bwrap: setting up uid map: Permission denied)');
    expect(warning).toContain('kernel.apparmor_restrict_unprivileged_userns=0');
    expect(warning).toContain('AppArmor profile');
  });

  it('required without a working bwrap refuses every start, with nothing written; run_command too', async () => {
    const { manager, home } = await startManager({ sandbox: { mode: 'required', bwrapPath: null } });
    const error = await rejection(manager.spawn({ agent: 'demo', command: 'true' }));
    expect(isAppError(error, 'SANDBOX_UNAVAILABLE'), String(error)).toBe(true);
    expect(String((error as Error).message)).toMatch(/CHORUS_SANDBOX=required and bwrap was not found on PATH: install bubblewrap.*; nothing was started/);
    expect(manager.list()).toEqual([]);
    expect(listRunDirs(home)).toEqual([]);
    const foreground = await rejection(runForeground(manager, { agent: agentOwnerLoader(home)('demo'), command: 'touch ran' }));
    expect(isAppError(foreground, 'SANDBOX_UNAVAILABLE')).toBe(true);
    expect(existsSync(join(home, 'agents', 'demo', 'workspace', 'ran'))).toBe(false);
  });

  it('off confines nothing, probes nothing and warns about nothing', async () => {
    const { log, lines } = capturedLogger();
    const { manager } = await startManager({ log, sandbox: { mode: 'off', bwrapPath: brokenBwrap() } });
    const record = await manager.spawn({ agent: 'demo', command: 'true' });
    expect(record.sandbox).toBe('none');
    expect(manager.sandbox.check()).toBeUndefined();
    expect(lines()).toEqual([]);
  });
});

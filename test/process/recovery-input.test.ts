import { describe, expect, it } from 'vitest';
import { trackPid } from '../support/child-cleanup.js';
import { parseJson, runCli } from '../support/cli.js';
import { RecoveryHome } from '../support/recovery-home.js';
import { startSupervisor } from '../support/supervisor-process.js';

describe('input across a crash of the bot', () => {
  it('a read loop answered before, while and after its supervisor is SIGKILLed; the new one records its exit code', async () => {
    const h = new RecoveryHome();
    const first = await startSupervisor(h.home);
    const spawned = await runCli(h.home, ['spawn', '--agent', 'demo', '--interactive', '--json', '--', 'while IFS= read -r l; do echo "got: $l"; done; exit 6']);
    expect(spawned, spawned.stderr).toMatchObject({ code: 0 });
    const row = parseJson<{ id: number; pid: number }>(spawned);
    trackPid(row.pid, { group: true });
    const pid = String(row.pid);
    const waitMatch = async (line: string) => parseJson(await runCli(h.home, ['wait', pid, '--until', 'match', '--pattern', `^${line}$`, '--cursor', '0:0', '--timeout', '20', '--json'], { timeoutMs: 30_000 }));

    expect(await runCli(h.home, ['input', pid, '--', 'before'])).toMatchObject({ code: 0 });
    expect(await waitMatch('got: before')).toMatchObject({ held: true });
    await first.sigkill();

    expect(await runCli(h.home, ['input', pid, '--', 'while down'])).toMatchObject({ code: 0 });
    expect(await waitMatch('got: while down')).toMatchObject({ held: true });

    await startSupervisor(h.home);
    expect(await runCli(h.home, ['input', pid, '--eof', '--', 'after'])).toMatchObject({ code: 0 });
    const ended = await h.waitForEnd(row.id);
    expect(ended).toMatchObject({ status: 'exited', exitCode: 6 });
    const logs = await runCli(h.home, ['logs', pid]);
    expect(logs.stdout).toBe('got: before\ngot: while down\ngot: after\n');
  });
});

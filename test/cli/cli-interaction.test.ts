import { describe, expect, it } from 'vitest';
import { trackPid } from '../support/child-cleanup.js';
import { parseJson, runCli } from '../support/cli.js';
import { makeTempHome } from '../support/temp-home.js';

type Row = Record<string, unknown> & { pid: number; status: string };

async function spawnRow(home: string, command: string, extra: string[] = []): Promise<Row> {
  const result = await runCli(home, ['spawn', '--agent', 'demo', '--json', ...extra, '--', command]);
  expect(result, result.stderr).toMatchObject({ code: 0, stderr: '' });
  const row = parseJson<Row>(result);
  trackPid(row.pid, { group: true });
  return row;
}

describe('chorus input, signal and wait', () => {
  it('types into an interactive process (args and stdin), waits on a match and on exit, without a supervisor', async () => {
    const home = makeTempHome();
    const row = await spawnRow(home, 'while IFS= read -r l; do echo "got: $l"; done; echo bye; exit 5', ['--interactive']);
    expect(row).toMatchObject({ interactive: true, tty: false });
    expect(await runCli(home, ['input', String(row.pid), '--', 'hello', 'world'])).toMatchObject({ code: 0, stdout: `sent 12 bytes to pid ${row.pid}\n` });
    const matched = await runCli(home, ['wait', String(row.pid), '--until', 'match', '--pattern', '^got: hello world$', '--timeout', '20', '--cursor', '0:0', '--json']);
    expect(parseJson(matched)).toMatchObject({ held: true, matched_line: 'got: hello world', status: 'running', last_output_at: null });
    const piped = await runCli(home, ['input', String(row.pid), '--eof'], { input: 'from stdin\n' });
    expect(piped, piped.stderr).toMatchObject({ code: 0 });
    const exited = await runCli(home, ['wait', String(row.pid), '--until', 'exit', '--timeout', '20', '--cursor', parseJson(matched).next_cursor]);
    expect(exited.stdout).toContain('got: from stdin\nbye\n');
    expect(exited.stdout).toMatch(/held: pid \d+ exited with code 5/);
    expect(exited.code).toBe(0);
  });

  it('signals a process (STOP shows paused, CONT resumes, USR1 reaches its trap); a wait that times out exits 124', async () => {
    const home = makeTempHome();
    const row = await spawnRow(home, `trap 'echo usr1; exit 8' USR1; while :; do sleep 0.1; done`);
    expect(await runCli(home, ['signal', String(row.pid), 'STOP'])).toMatchObject({ code: 0, stdout: `sent SIGSTOP to pid ${row.pid} (paused)\n` });
    const paused = parseJson(await runCli(home, ['status', String(row.pid), '--json']));
    expect(paused).toMatchObject({ status: 'running', last_signal: 'STOP', last_signal_by: 'cli' });
    expect(paused.paused_at).toEqual(expect.any(String));
    expect((await runCli(home, ['ps'])).stdout).toMatch(/paused/);
    const timedOut = await runCli(home, ['wait', String(row.pid), '--until', 'output', '--timeout', '1']);
    expect(timedOut.code).toBe(124);
    expect(await runCli(home, ['signal', String(row.pid), 'cont'])).toMatchObject({ code: 0 });
    expect(parseJson(await runCli(home, ['status', String(row.pid), '--json']))).toMatchObject({ paused_at: null, last_signal: 'CONT' });
    expect(await runCli(home, ['signal', String(row.pid), 'USR1'])).toMatchObject({ code: 0 });
    const exited = await runCli(home, ['wait', String(row.pid), '--until', 'exit', '--timeout', '20', '--cursor', '0:0', '--json']);
    expect(parseJson(exited), exited.stdout).toMatchObject({ held: true, status: 'exited', exit_code: 8, output: expect.arrayContaining(['usr1']) });
  });

  it('refuses input to a process that is not interactive, and a signal to an ended one', async () => {
    const home = makeTempHome();
    const row = await spawnRow(home, 'exit 0');
    const input = await runCli(home, ['input', String(row.pid), '--', 'x']);
    expect(input.code).toBe(1);
    expect(input.stderr).toMatch(/not started interactive|already ended/);
  });

  it('spawn --tty runs the command under a terminal; input reaches it and the log keeps what it printed', async () => {
    const home = makeTempHome();
    const row = await spawnRow(home, `[ -t 0 ] && [ -t 1 ] && echo "is a tty"; IFS= read -r l; echo "read: $l"`, ['--tty']);
    expect(row).toMatchObject({ interactive: true, tty: true });
    expect(await runCli(home, ['input', String(row.pid), '--', 'typed'])).toMatchObject({ code: 0 });
    const exited = await runCli(home, ['wait', String(row.pid), '--until', 'exit', '--timeout', '20', '--cursor', '0:0', '--json'], { timeoutMs: 30_000 });
    expect(parseJson(exited), exited.stdout).toMatchObject({ held: true, status: 'exited', exit_code: 0, output: expect.arrayContaining(['is a tty', 'read: typed']) });
  });
});

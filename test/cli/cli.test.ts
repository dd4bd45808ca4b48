import { describe, expect, it } from 'vitest';
import { readAllStats } from '../../src/process/proc-fs.js';
import { isAlive, trackPid } from '../support/child-cleanup.js';
import { parseJson, runCli } from '../support/cli.js';
import { makeTempHome } from '../support/temp-home.js';
import { waitFor } from '../support/wait-for.js';

type Row = Record<string, unknown> & { id: number; pid: number; status: string };

const ROW_KEYS = [
  'pid', 'agent_name', 'command', 'working_directory', 'process_type', 'status', 'exit_code', 'signal', 'started_at',
  'ended_at', 'stdout_log', 'stderr_log',
];

/** `chorus spawn --json`; the process group is SIGKILLed after the test whatever happens. */
async function spawnRow(home: string, command: string[], extra: string[] = []): Promise<Row> {
  const result = await runCli(home, ['spawn', '--agent', 'demo', '--json', ...extra, '--', ...command]);
  expect(result, result.stderr).toMatchObject({ code: 0, stderr: '' });
  const row = parseJson<Row>(result);
  trackPid(row.pid, { group: true });
  return row;
}

async function statusOf(home: string, pid: number): Promise<Row> {
  return parseJson<Row>(await runCli(home, ['status', String(pid), '--json']));
}

describe('chorus CLI, as a new user runs it', () => {
  it('spawn prints one row; status follows it to its exit code; logs prints its output; ps --all keeps it', async () => {
    const home = makeTempHome();
    const row = await spawnRow(home, ['sh', '-c', 'echo hello; sleep 1; exit 3']);
    for (const key of ROW_KEYS) expect(row).toHaveProperty(key);
    expect(row).toMatchObject({
      agent_name: 'demo', command: "sh -c 'echo hello; sleep 1; exit 3'", process_type: 'background', status: 'running',
      exit_code: null, signal: null, ended_at: null, working_directory: `${home}/agents/demo/workspace`,
    });
    expect(row.pid).toBeGreaterThan(1);

    const ended = await waitFor(async () => {
      const status = await statusOf(home, row.pid);
      return status.status !== 'running' && status;
    }, { timeoutMs: 10_000, intervalMs: 100, what: 'status to show the end' });
    expect(ended).toMatchObject({ status: 'exited', exit_code: 3, signal: null });
    expect(ended.ended_at).toEqual(expect.any(String));

    const logs = await runCli(home, ['logs', String(row.pid)]);
    expect(logs).toMatchObject({ code: 0, stdout: 'hello\n', stderr: '' });
    const text = await runCli(home, ['status', String(row.pid)]);
    expect(text.stdout).toContain('exited with code 3');

    expect(parseJson<Row[]>(await runCli(home, ['ps', '--json']))).toEqual([]);
    const all = parseJson<Row[]>(await runCli(home, ['ps', '--all', '--json']));
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ pid: row.pid, status: 'exited', exit_code: 3 });
    expect((await runCli(home, ['ps'])).stdout).toContain('no running processes');
  });

  it('ps lists a running command; kill stops its whole tree', async () => {
    const home = makeTempHome();
    const row = await spawnRow(home, ['sh', '-c', 'sleep 1000 & sleep 1000; wait']);
    const tree = await waitFor(() => {
      const members = readAllStats().filter((s) => s.pgrp === row.pid);
      const live = members.filter((s) => s.state !== 'Z');
      return live.length >= 4 && live.map((s) => s.pid);
    }, { what: 'the shim, the shell and both sleeps' });
    for (const pid of tree) trackPid(pid);
    const running = parseJson<Row[]>(await runCli(home, ['ps', '--json']));
    expect(running.map((r) => [r.pid, r.status])).toEqual([[row.pid, 'running']]);
    const table = await runCli(home, ['ps']);
    expect(table.code).toBe(0);
    const [header, line, more] = table.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^PID\s+AGENT\s+STATUS\s+TIME\s+TYPE\s+COMMAND$/);
    expect(line).toMatch(new RegExp(`^${row.pid}\\s+demo\\s+running\\s+\\d+s\\s+background\\s+sh -c 'sleep 1000 & sleep 1000; wait'$`));
    expect(more).toBeUndefined();
    // Piped, ps prints the whole command however long: two commands that differ only at the end stay apart.
    const long = `sleep 1000 # ${'x'.repeat(90)} variant-a`;
    await spawnRow(home, ['sh', '-c', long]);
    expect((await runCli(home, ['ps'])).stdout).toContain(`sh -c '${long}'`);

    const result = await runCli(home, ['kill', String(row.pid)]);

    expect(result).toMatchObject({ code: 0, stdout: `stopped pid ${row.pid} (SIGTERM)\n`, stderr: '' });
    expect(tree.filter(isAlive)).toEqual([]);
    expect(await statusOf(home, row.pid)).toMatchObject({ status: 'killed', signal: 'SIGTERM', stopped_by: 'cli' });
  });

  it('restart --json prints the new row, linked to the old one', async () => {
    const home = makeTempHome();
    const row = await spawnRow(home, ['sleep', '1000']);

    const result = await runCli(home, ['restart', String(row.pid), '--json']);
    expect(result, result.stderr).toMatchObject({ code: 0, stderr: '' });
    const fresh = parseJson<Row>(result);
    trackPid(fresh.pid, { group: true });

    expect(fresh).toMatchObject({ status: 'running', restarted_from: row.id, command: 'sleep 1000', working_directory: row.working_directory });
    expect(fresh.pid).not.toBe(row.pid);
    expect(isAlive(row.pid)).toBe(false);
    expect(isAlive(fresh.pid)).toBe(true);
    expect(await statusOf(home, row.pid)).toMatchObject({ status: 'killed' });
  });

  it('logs --follow prints lines as they come and returns when the process has ended', async () => {
    const home = makeTempHome();
    const row = await spawnRow(home, ['sh', '-c', 'echo one; sleep 0.3; echo two; sleep 0.3; echo three >&2; sleep 0.3; echo four']);

    const result = await runCli(home, ['logs', String(row.pid), '--follow'], { timeoutMs: 10_000 });

    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    const lines = result.stdout.split('\n').filter((l) => l && l !== '--- stderr ---');
    expect(lines).toEqual(['one', 'two', '[stderr] three', 'four']);
    expect((await statusOf(home, row.pid)).status).toBe('exited');
  });

  it('--help prints the usage and exits 0', async () => {
    const home = makeTempHome();
    const result = await runCli(home, ['--help']);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^usage: chorus <verb>/);
    for (const verb of ['ps', 'status', 'logs', 'kill', 'restart', 'spawn']) expect(result.stdout).toContain(`  ${verb} `);
  });
});

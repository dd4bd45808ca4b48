import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadAgentConfig } from '../../src/agents/agent-config.js';
import { buildPreamble } from '../../src/agents/preamble.js';
import { runToolCall, TOOL_DEFINITIONS, type ToolContext } from '../../src/agents/tools.js';
import { silentLogger } from '../../src/logger.js';
import { isAlive } from '../support/child-cleanup.js';
import { pidsRunning } from '../support/host-pid.js';
import { waitFor } from '../support/wait-for.js';
import { script, startHarness, toolResults, type Harness } from './harness.js';

function toolContext(h: Harness, env?: NodeJS.ProcessEnv): ToolContext {
  return {
    agent: loadAgentConfig(h.home, 'main'), branchId: 'br-test', depth: 0, manager: h.manager, hooks: h.hooks, log: silentLogger(),
    ...(env && { env }),
  };
}

async function call(ctx: ToolContext, name: string, args: unknown) {
  const result = await runToolCall(ctx, { id: 'c1', type: 'function', function: { name, arguments: typeof args === 'string' ? args : JSON.stringify(args) } });
  return { ...result, json: JSON.parse(result.content) as any };
}

describe('tools', () => {
  it('are the public contract: names and parameters', () => {
    const shapes = Object.fromEntries(TOOL_DEFINITIONS.map((t) => [t.function.name, Object.keys((t.function.parameters as any).properties ?? {})]));
    expect(shapes).toEqual({
      start_process: ['command', 'working_directory', 'process_type', 'name', 'category', 'timeout_seconds', 'model_for_hooks', 'hooks', 'interactive', 'tty', 'ready', 'restart'],
      add_process_hooks: ['pid', 'hooks'],
      get_process_status: ['pid'],
      get_process_output: ['pid', 'stream', 'lines', 'cursor', 'grep'],
      stop_process: ['pid', 'force'],
      list_processes: ['filter'],
      run_command: ['command', 'working_directory', 'timeout_seconds', 'background_after_seconds'],
      send_input: ['pid', 'text', 'eof'],
      send_signal: ['pid', 'signal'],
      wait_for_process: ['pid', 'until', 'pattern', 'timeout_seconds', 'cursor'],
    });
  });

  it('malformed calls return errors that say what to fix; the loop goes on and another agent is never touched', async () => {
    const h = await startHarness();
    const other = await h.manager.spawn({ agent: 'other', command: script('setInterval(() => {}, 1000)') });
    const bad: Array<{ name: string; arguments: string | object }> = [
      { name: 'get_process_status', arguments: '{pid: 12' },
      { name: 'get_process_output', arguments: { pid: 'twelve' } },
      { name: 'list_processes', arguments: { filter: 'zombie' } },
      { name: 'start_process', arguments: { command: 'echo hi', process_type: 'forever' } },
      { name: 'delete_everything', arguments: {} },
      { name: 'stop_process', arguments: { pid: other.pid, force: true } },
      { name: 'run_command', arguments: { command: 'rm -rf /' } },
      { name: 'start_process', arguments: { command: 'echo hi', hooks: [{ trigger: { type: 'on_output_match' }, action: 'spawn_branch' }] } },
      { name: 'start_process', arguments: { command: 'echo hi', colour: 'red' } },
    ];
    h.llm!.enqueue({ toolCalls: bad }, { content: 'I will fix my calls.' });
    const outcome = await h.agents.handleMessage({ agentName: 'main', authorId: 'u-1', content: 'go', messageId: 'in-1' });
    await outcome.finished;

    expect(h.frontEnd.posts.map((p) => p.text)).toEqual(['I will fix my calls.']);
    const results = toolResults(h.llm!.requests[1]!);
    expect(results).toHaveLength(bad.length);
    for (const r of results) expect(r.content.ok).toBe(false);
    const [notJson, wrongType, badFilter, badType, unknownTool, foreignPid, blocked, badHook, unknownKey] = results.map((r) => r.content);
    expect(notJson.error).toMatch(/not valid JSON/);
    expect(notJson.error).toContain('{"pid": 1234}');
    expect(wrongType.error).toMatch(/pid must be an integer .*\(got "twelve"\)/);
    expect(badFilter.error).toMatch(/filter must be one of all, running, exited, killed, lost, restarting, crash_loop \(got "zombie"\)/);
    expect(badType.error).toMatch(/process_type must be one of background, concurrent/);
    expect(unknownTool).toMatchObject({ code: 'UNKNOWN_TOOL' });
    expect(unknownTool.hint).toContain('start_process');
    expect(foreignPid).toMatchObject({ code: 'PROCESS_NOT_FOUND' });
    expect(foreignPid.hint).toMatch(/list_processes/);
    expect(blocked).toMatchObject({ code: 'COMMAND_BLOCKED' });
    expect(blocked.hint).toMatch(/do not retry/);
    expect(badHook).toMatchObject({ code: 'HOOK_INVALID' });
    expect(badHook.error).toContain('hooks[0].trigger.pattern');
    expect(unknownKey.error).toMatch(/colour is not a parameter of start_process/);

    expect(h.manager.find({ id: other.id })!.status).toBe('running');
    expect(isAlive(other.pid!)).toBe(true);
    expect(h.manager.list({ agentName: 'main' })).toEqual([]);
  });

  it('start_process records the branch and its depth; list, status, add hooks and stop work on own pids', async () => {
    const h = await startHarness();
    const ctx = { ...toolContext(h), branchId: 'br-x', depth: 2 };
    const started = await call(ctx, 'start_process', { command: script(`console.log('hello'); setInterval(() => {}, 1000)`), process_type: 'concurrent', name: 'svc', model_for_hooks: 'small' });
    expect(started.json).toMatchObject({ ok: true, type: 'concurrent' });
    const record = h.manager.find({ pid: started.json.pid, agentName: 'main' })!;
    expect(record).toMatchObject({ spawnedByBranch: 'br-x', hookRecursionDepth: 2, modelForHooks: 'small', name: 'svc' });

    const added = await call(ctx, 'add_process_hooks', { pid: record.pid, hooks: [{ trigger: { type: 'on_exit', exit_filter: 'failure' }, action: 'notify_channel' }] });
    expect(added.json).toMatchObject({ ok: true, added: 1 });
    await waitFor(() => h.manager.tail(record.id)?.length);
    const status = await call(ctx, 'get_process_status', { pid: record.pid });
    expect(status.json).toMatchObject({ ok: true, status: 'running', name: 'svc', last_lines: ['hello'] });
    expect(status.json.hooks[0]).toMatch(/on exit \(failure\) → notify_channel/);
    const listed = await call(ctx, 'list_processes', { filter: 'running' });
    expect(listed.json.processes.map((p: any) => p.pid)).toEqual([record.pid]);
    const stopped = await call(ctx, 'stop_process', { pid: record.pid });
    expect(stopped.json).toMatchObject({ ok: true, status: 'killed', signal: 'SIGTERM' });
    const again = await call(ctx, 'stop_process', { pid: record.pid });
    expect(again.json).toMatchObject({ ok: false, code: 'PROCESS_NOT_RUNNING' });
  });

  it('start_process takes ready and restart; status, list and the preamble show starting → ready, restarts and the pending restart', async () => {
    const h = await startHarness();
    const ctx = toolContext(h);
    const started = await call(ctx, 'start_process', {
      command: script(`console.log('booting'); setTimeout(() => console.log('Listening now'), 400); setTimeout(() => process.exit(1), 1500)`),
      ready: { pattern: '(?i)listening', timeout_seconds: 20 },
      restart: { on: 'failure', backoff_seconds: 30, max_backoff_seconds: 30 },
      hooks: [{ trigger: { type: 'on_ready' }, action: 'notify_channel' }],
    });
    expect(started.json).toMatchObject({
      ok: true,
      readiness: 'starting; ready when line /(?i)listening/ within 20s; on_ready / on_ready_timeout hooks tell you',
      restart: 'on failure, at most 5 in a row, backoff 30s doubling to 30s, reset after 30s up',
    });
    const pid = started.json.pid as number;
    const first = h.manager.find({ pid, agentName: 'main' })!;
    expect((await call(ctx, 'get_process_status', { pid })).json).toMatchObject({ readiness: expect.stringMatching(/^starting \(not ready yet\); probe: line/) });
    expect(buildPreamble({ manager: h.manager, hooks: h.hooks }, 'main')).toMatch(new RegExp(`- pid ${pid} background: .* \\(starting, up \\d+s\\)`));
    const waited = await call(ctx, 'wait_for_process', { pid, until: 'ready', timeout_seconds: 20 });
    expect(waited.json).toMatchObject({ ok: true, until: 'ready', held: true, status: 'running' });
    expect(h.manager.find({ id: first.id })!.readyAt).toEqual(expect.any(String));
    const ready = (await call(ctx, 'list_processes', {})).json.processes[0];
    expect(ready).toMatchObject({ pid, status: 'running', readiness: 'ready' });
    // It crashes: the restart waits 30 s, stored; the pid still answers, as restarting.
    await waitFor(() => h.manager.find({ id: first.id })!.status === 'restarting', { timeoutMs: 10_000 });
    const pending = (await call(ctx, 'get_process_status', { pid })).json;
    expect(pending).toMatchObject({ status: 'restarting', exit_code: 1, next_run: expect.stringMatching(/^due .* \(in \d+s\)$/) });
    expect(buildPreamble({ manager: h.manager, hooks: h.hooks }, 'main')).toMatch(new RegExp(`- pid ${pid} background: .* \\(restarting in \\d+s after exit 1\\)`));
    expect((await call(ctx, 'list_processes', { filter: 'restarting' })).json.processes.map((p: any) => p.pid)).toEqual([pid]);
    // Stopping it cancels the pending restart.
    const stopped = await call(ctx, 'stop_process', { pid });
    expect(stopped.json).toMatchObject({ ok: true, status: 'killed' });
    expect(h.manager.find({ id: first.id })).toMatchObject({ status: 'killed', restartDueAt: null });
  });

  it('get_process_output reads only what is new since a cursor, and grep filters without consuming', async () => {
    const h = await startHarness();
    const ctx = toolContext(h);
    const program = `const fs = require('fs');
      for (let i = 1; i <= 3; i++) console.log('line ' + i);
      console.error('warning: slow disk');
      const t = setInterval(() => { if (fs.existsSync('next')) { clearInterval(t); console.log('line 4'); console.log('ERROR: boom'); console.log('line 5'); process.stdout.write('partial'); setTimeout(() => {}, 20000); } }, 20);`;
    const started = await call(ctx, 'start_process', { command: script(program) });
    const pid = started.json.pid;
    const record = h.manager.find({ pid, agentName: 'main' })!;
    await waitFor(() => readFileSync(record.stderrLog, 'utf8').includes('slow disk') && readFileSync(record.stdoutLog, 'utf8').includes('line 3'));

    const firstRead = await call(ctx, 'get_process_output', { pid });
    expect(firstRead.json.output).toEqual({ stdout: ['line 1', 'line 2', 'line 3'], stderr: ['warning: slow disk'] });
    const cursor = firstRead.json.next_cursor.stdout;
    expect(cursor).toBe('line 1\nline 2\nline 3\n'.length);
    expect(firstRead.json.next_cursor.stderr).toBe('warning: slow disk\n'.length);

    writeFileSync(join(record.workingDirectory, 'next'), '');
    await waitFor(() => readFileSync(record.stdoutLog, 'utf8').endsWith('partial'));
    const newer = await call(ctx, 'get_process_output', { pid, cursor });
    // The unfinished last line waits for its end; the cursor stops before it.
    expect(newer.json).toMatchObject({ stream: 'stdout', lines: ['line 4', 'ERROR: boom', 'line 5'] });
    expect(newer.json.more).toMatch(/7 more bytes/);
    const grepped = await call(ctx, 'get_process_output', { pid, cursor, grep: '^ERROR' });
    expect(grepped.json.lines).toEqual(['ERROR: boom']);
    expect(grepped.json.next_cursor).toEqual(newer.json.next_cursor);
    const nothingNew = await call(ctx, 'get_process_output', { pid, cursor: newer.json.next_cursor.stdout });
    expect(nothingNew.json.lines).toEqual([]);
    const grepAll = await call(ctx, 'get_process_output', { pid, grep: 'line [24]', stream: 'stdout' });
    expect(grepAll.json.output).toEqual({ stdout: ['line 2', 'line 4'] });
    // Nothing was consumed or changed.
    expect(readFileSync(record.stdoutLog, 'utf8')).toBe('line 1\nline 2\nline 3\nline 4\nERROR: boom\nline 5\npartial');

    const bothWithCursor = await call(ctx, 'get_process_output', { pid, cursor, stream: 'both' });
    expect(bothWithCursor.json.error).toMatch(/cursor belongs to one stream/);
    const badGrep = await call(ctx, 'get_process_output', { pid, grep: '(unclosed' });
    expect(badGrep.json).toMatchObject({ ok: false, code: 'INVALID_INPUT' });
    const pastEnd = await call(ctx, 'get_process_output', { pid, cursor: 10_000 });
    expect(pastEnd.json.error).toMatch(/past the end of stdout/);
  });

  it('a cursor reads on across log rotations, from the .1 file into the new one, and says what was rotated away', async () => {
    const h = await startHarness({ logCapBytes: 4096 });
    const ctx = toolContext(h);
    const line = (word: string, i: number) => `${word} ${String(i).padStart(4, '0')} ${'x'.repeat(28)}`;
    const program = `const fs = require('fs');
      const burst = (word, from, to) => { let out = ''; for (let i = from; i <= to; i++) out += word + ' ' + String(i).padStart(4, '0') + ' ' + 'x'.repeat(28) + '\\n'; process.stdout.write(out); };
      for (let i = 1; i <= 50; i++) console.log('first ' + i);
      const steps = [['go', () => burst('second', 1, 100)], ['more', () => console.log('after rotation')], ['flood', () => burst('third', 1, 250)], ['flood2', () => burst('fourth', 1, 250)]];
      const t = setInterval(() => { const step = steps[0]; if (step && fs.existsSync(step[0])) { steps.shift(); step[1](); } }, 20);`;
    const started = await call(ctx, 'start_process', { command: script(program) });
    const record = h.manager.find({ pid: started.json.pid, agentName: 'main' })!;
    const rotated = () => h.manager.find({ id: record.id })!.stdoutRotated;
    const touch = (name: string) => writeFileSync(join(record.workingDirectory, name), '');
    await waitFor(() => readFileSync(record.stdoutLog, 'utf8').includes('first 50'));
    const first = await call(ctx, 'get_process_output', { pid: record.pid, stream: 'stdout', lines: 500 });
    expect(first.json.output.stdout).toHaveLength(50);

    touch('go');
    await waitFor(() => existsSync(`${record.stdoutLog}.1`) && rotated() > 0, { what: 'a rotation' });
    touch('more');
    await waitFor(() => readFileSync(record.stdoutLog, 'utf8').includes('after rotation'));
    const readAll = async (from: number) => {
      const seen: string[] = [];
      let next = from;
      let skipped: string | undefined;
      for (let page = 0; page < 10; page++) {
        const read = await call(ctx, 'get_process_output', { pid: record.pid, cursor: next, lines: 40 });
        expect(read.json.ok).toBe(true);
        skipped ??= read.json.note_skipped;
        seen.push(...read.json.lines);
        next = read.json.next_cursor.stdout;
        if (!read.json.more) break;
      }
      return { seen, next, skipped };
    };
    const afterFirst = await readAll(first.json.next_cursor.stdout);
    expect(afterFirst.skipped).toBeUndefined();
    expect(afterFirst.seen).toEqual([...Array.from({ length: 100 }, (_, i) => line('second', i + 1)), 'after rotation']);

    // Two rotations before the next read: the first burst was in the `.1` that the second rotation replaced, so the
    // read says what was rotated away and goes on with what is still on disk.
    const before = rotated();
    touch('flood');
    await waitFor(() => rotated() > before, { what: 'a second rotation' });
    const afterOne = rotated();
    touch('flood2');
    await waitFor(() => rotated() > afterOne, { what: 'a third rotation' });
    const afterFlood = await readAll(afterFirst.next);
    expect(afterFlood.skipped).toMatch(/bytes after your cursor were rotated away/);
    const fourths = Array.from({ length: 250 }, (_, i) => line('fourth', i + 1));
    expect(afterFlood.seen.length).toBeGreaterThan(50);
    expect(afterFlood.seen).toEqual(fourths.slice(-afterFlood.seen.length));
  });

  it('run_command runs in the workspace with a clean environment, and a timeout stops its whole group', async () => {
    const h = await startHarness();
    const ctx = toolContext(h, { PATH: process.env.PATH, HOME: process.env.HOME, LLM_API_KEY: 'sk-must-not-leak', MY_SECRET: 'x' });
    const ok = await call(ctx, 'run_command', { command: 'pwd; env' });
    expect(ok.json).toMatchObject({ ok: true, exit_code: 0 });
    expect(ok.json.stdout.split('\n')[0]).toBe(join(h.home, 'agents', 'main', 'workspace'));
    expect(ok.json.stdout).not.toContain('sk-must-not-leak');
    expect(ok.json.stdout).not.toContain('MY_SECRET');

    const outside = await call(ctx, 'run_command', { command: 'ls', working_directory: '/etc' });
    expect(outside.json).toMatchObject({ ok: false, code: 'CWD_OUTSIDE_WORKSPACE' });

    const startedAt = Date.now();
    // A pid the command prints is its pid inside the sandbox; the host finds the sleep by its unique argument.
    const seconds = `30.${process.pid}${Date.now() % 1000}`;
    const slow = await call(ctx, 'run_command', { command: `sleep ${seconds} & echo "bg $!"; sleep 30`, timeout_seconds: 1 });
    expect(Date.now() - startedAt).toBeLessThan(6_000);
    expect(slow.json.ok).toBe(false);
    expect(slow.json.timed_out).toMatch(/stopped after 1s/);
    expect(slow.json.stdout).toMatch(/bg \d+/);
    await waitFor(() => pidsRunning(['sleep', seconds]).length === 0, { what: 'the background sleep of the group to be gone' });

    const failing = await call(ctx, 'run_command', { command: 'echo oops >&2; exit 3' });
    expect(failing.json).toMatchObject({ ok: false, exit_code: 3, stderr: 'oops\n' });
  });
});

import { describe, expect, it } from 'vitest';
import type { FakeLlmRequest } from '../support/fake-llm-server.js';
import { waitFor } from '../support/wait-for.js';
import { startHarness, toolResults, userTexts } from './harness.js';

/** The content of the last tool result of a request. */
function lastResult(request: FakeLlmRequest): any {
  return toolResults(request).at(-1)!.content;
}

describe('talking to processes through the tool loop', () => {
  it('start_process interactive → send_input → wait_for_process match; a signal; wait on exit', async () => {
    const h = await startHarness();
    const command = `trap 'echo usr1 seen' USR1; while IFS= read -r line; do echo "got: $line"; done; echo bye; exit 3`;
    let pid = 0;
    let cursor = '';
    h.llm!.enqueue(
      { toolCalls: [{ name: 'start_process', arguments: { command, interactive: true } }] },
      (request) => {
        pid = lastResult(request).pid;
        return { toolCalls: [
          { name: 'send_input', arguments: { pid, text: 'hello\n' } },
          { name: 'wait_for_process', arguments: { pid, until: 'match', pattern: '^got: hello$', timeout_seconds: 20 } },
        ] };
      },
      (request) => {
        const [input, wait] = toolResults(request).slice(-2).map((r) => r.content);
        expect(input).toMatchObject({ ok: true, bytes_written: 6 });
        expect(wait).toMatchObject({ ok: true, held: true, matched_line: 'got: hello', status: 'running' });
        cursor = wait.next_cursor;
        return { toolCalls: [{ name: 'send_signal', arguments: { pid, signal: 'USR1' } }] };
      },
      (request) => {
        expect(lastResult(request)).toMatchObject({ ok: true, signal: 'USR1', status: 'running' });
        return { toolCalls: [
          { name: 'send_input', arguments: { pid, text: 'last\n', eof: true } },
          { name: 'wait_for_process', arguments: { pid, until: 'exit', timeout_seconds: 20, cursor } },
        ] };
      },
      (request) => {
        const wait = lastResult(request);
        expect(wait).toMatchObject({ held: true, status: 'exited', ended: 'exited with code 3' });
        expect(wait.output).toEqual(expect.arrayContaining(['usr1 seen', 'got: last', 'bye']));
        return { content: 'done' };
      },
    );
    const outcome = await h.agents.handleMessage({ agentName: 'main', authorId: 'u-1', content: 'go', messageId: 'in-1' });
    await outcome.finished;
    expect(h.frontEnd.posts.map((p) => p.text), JSON.stringify(h.llm!.requests.map((r) => toolResults(r).map((t) => t.content)))).toEqual(["done"]);
    const row = h.manager.find({ pid, agentName: 'main' })!;
    expect(row.lastSignal).toBe('USR1');
    expect(row.lastSignalBy).toBe('agent:main');
  });

  it('wait_for_process times out without holding anything: another branch reads and writes the same process meanwhile', async () => {
    const h = await startHarness();
    const record = await h.manager.spawn({ agent: 'main', command: 'while IFS= read -r l; do echo "echo $l"; done', interactive: true });
    const pid = record.pid!;
    // Each branch gets its own script, whatever order their requests arrive in.
    h.llm!.setDefault((request) => {
      const done = toolResults(request).length;
      if (userTexts(request).includes('wait')) {
        return done === 0 ? { toolCalls: [{ name: 'wait_for_process', arguments: { pid, until: 'match', pattern: 'never printed', timeout_seconds: 4 } }] } : { content: 'waited' };
      }
      // The echo comes when the shell has read the line: this branch waits for it too, from the start of the output
      // (a second wait on the same process while the first one runs), then reads the output.
      if (done === 0) return { toolCalls: [{ name: 'send_input', arguments: { pid, text: 'ping\n' } }] };
      if (done === 1) return { toolCalls: [{ name: 'wait_for_process', arguments: { pid, until: 'match', pattern: '^echo ping$', timeout_seconds: 10, cursor: '0:0' } }] };
      if (done === 2) return { toolCalls: [{ name: 'get_process_output', arguments: { pid } }] };
      return { content: 'read' };
    });
    const waiting = await h.agents.handleMessage({ agentName: 'main', authorId: 'u-1', content: 'wait', messageId: 'in-1' });
    await waitFor(() => h.llm!.requests.length >= 1, { what: 'the first request' });
    const other = await h.agents.handleMessage({ agentName: 'main', authorId: 'u-1', content: 'poke', messageId: 'in-2' });
    await waitFor(async () => {
      const out = h.llm!.requests.flatMap((r) => toolResults(r)).find((r) => r.name === 'get_process_output');
      return out?.content.output?.stdout?.includes('echo ping');
    }, { what: 'the other branch to read the echo', timeoutMs: 15_000 });
    await Promise.all([waiting.finished, other.finished]);
    const waits = h.llm!.requests.flatMap((r) => toolResults(r)).filter((r) => r.name === 'wait_for_process').map((r) => r.content);
    expect(waits.find((w) => w.held)).toMatchObject({ ok: true, held: true, status: 'running' });
    const wait = waits.find((w) => !w.held)!;
    expect(wait).toMatchObject({ ok: true, held: false, status: 'running' });
    expect(wait.why).toMatch(/timed out/);
    expect(wait.output, JSON.stringify(h.llm!.requests.map((r) => [r.index, toolResults(r).map((t) => t.name)]))).toContain('echo ping');
    await h.manager.kill({ id: record.id }, { by: 'test', force: true });
  });

  it('run_command with background_after_seconds returns a pid, goes on in the background with a status message, and ends with its code', async () => {
    const h = await startHarness({ statusThrottleMs: 50 });
    h.llm!.enqueue(
      { toolCalls: [{ name: 'run_command', arguments: { command: 'echo started; sleep 4; echo done; exit 6', background_after_seconds: 2 } }] },
      { content: 'it runs on' },
    );
    const outcome = await h.agents.handleMessage({ agentName: 'main', authorId: 'u-1', content: 'go', messageId: 'in-1' });
    await outcome.finished;
    const result = toolResults(h.llm!.requests[1]!)[0]!.content;
    expect(result).toMatchObject({ ok: true, status: 'running', stdout: 'started\n' });
    expect(result.backgrounded).toMatch(/background/);
    const row = h.manager.find({ pid: result.pid, agentName: 'main' })!;
    expect(row.processType).toBe('background');
    await waitFor(() => h.frontEnd.statuses.some((s) => s.view.record.id === row.id && !s.view.isFinal), { what: 'a live status message' });
    await waitFor(() => h.frontEnd.statuses.some((s) => s.view.record.id === row.id && s.view.isFinal && s.view.record.exitCode === 6), { what: 'the final status with exit code 6', timeoutMs: 20_000 });
  });

  it('run_command is a tracked foreground process while it runs', async () => {
    const h = await startHarness();
    h.llm!.enqueue({ toolCalls: [{ name: 'run_command', arguments: { command: 'echo hi; sleep 1; echo bye' } }] }, { content: 'ok' });
    const outcome = await h.agents.handleMessage({ agentName: 'main', authorId: 'u-1', content: 'go', messageId: 'in-1' });
    const running = await waitFor(() => h.manager.list({ agentName: 'main', status: 'running' }).find((r) => r.processType === 'foreground'), { what: 'a foreground row' });
    await outcome.finished;
    const result = toolResults(h.llm!.requests[1]!)[0]!.content;
    expect(result).toMatchObject({ ok: true, exit_code: 0, stdout: 'hi\nbye\n', pid: running.pid });
    expect(h.manager.find({ id: running.id })!.status).toBe('exited');
  });
});

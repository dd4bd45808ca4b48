import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isAlive } from '../support/child-cleanup.js';
import { waitFor } from '../support/wait-for.js';
import type { FakeLlmRequest, FakeLlmResponse } from '../support/fake-llm-server.js';
import { BRIDGE_CONTENT } from '../../src/agents/history.js';
import { messagesOf, script, startHarness, systemOf, toolResults, userTexts } from './harness.js';

const lastMessage = (request: FakeLlmRequest) => messagesOf(request).at(-1)!;

describe('branches', () => {
  it('a message → start_process with an on_output_match spawn_branch hook → the match starts a branch whose answer is posted', async () => {
    const h = await startHarness();
    const command = script(`setTimeout(() => console.log('BUILD FAILED: missing semicolon in app.js'), 300); setTimeout(() => {}, 20000)`);
    h.llm!.setDefault((request): FakeLlmResponse => {
      const users = userTexts(request);
      if (users[0]!.startsWith('[hook')) return { content: 'The build failed because app.js misses a semicolon.' };
      if (lastMessage(request).role === 'tool') return { content: 'The build runs; I will look at it if it fails.' };
      return {
        toolCalls: [{
          name: 'start_process',
          arguments: {
            command, name: 'build', category: 'build', model_for_hooks: 'small-model',
            hooks: [{ trigger: { type: 'on_output_match', pattern: 'BUILD FAILED' }, action: 'spawn_branch', context_message: 'The build failed; find out why.' }],
          },
        }],
      };
    });

    const outcome = await h.agents.handleMessage({ agentName: 'main', authorId: 'u-1', content: 'Run the build please', messageId: 'in-1' });
    const hookAnswer = await waitFor(() => h.frontEnd.posts.find((p) => p.text.includes('misses a semicolon')), { what: 'the hook branch answer' });
    await outcome.finished;

    const first = h.frontEnd.posts.find((p) => p.text.startsWith('The build runs'))!;
    expect(first).toMatchObject({ agent: 'main', replyTo: 'in-1' });
    expect(hookAnswer.agent).toBe('main');
    expect(hookAnswer.replyTo).toBeUndefined();

    const [record] = h.manager.list({ agentName: 'main' });
    expect(record).toMatchObject({ name: 'build', spawnedByBranch: outcome.branchId, hookRecursionDepth: 0, processType: 'background' });

    const hookRequest = h.llm!.requests.find((r) => userTexts(r)[0]?.startsWith('[hook'))!;
    const context = userTexts(hookRequest)[0]!;
    expect(hookRequest.body.model).toBe('small-model');
    expect(h.llm!.requests[0]!.body.model).toBe('test-model');
    expect(context).toContain('The build failed; find out why.');
    expect(context).toContain('BUILD FAILED: missing semicolon in app.js');
    // The preamble is in every request: the hook branch sees the running build.
    expect(systemOf(hookRequest)).toContain(`pid ${record!.pid} background "build"`);
    expect(systemOf(hookRequest)).toContain('last: BUILD FAILED');

    const hookBranch = h.agents.repo.listForAgent('main').find((b) => b.origin === 'hook')!;
    expect(hookBranch).toMatchObject({ depth: 1, parentProcessId: record!.id, model: 'small-model' });
    // A reply to the hook branch's answer continues that branch.
    h.llm!.enqueue({ content: 'Fixed.' });
    const reply = await h.agents.handleMessage({ agentName: 'main', authorId: 'u-1', content: 'fix it', messageId: 'in-2', replyToMessageId: hookAnswer.id });
    await reply.finished;
    expect(reply).toMatchObject({ branchId: hookBranch.id, isNewBranch: false });
    expect(userTexts(h.llm!.requests.at(-1)!)).toEqual([context, 'fix it']);
  });

  it('inject_context wakes an idle branch', async () => {
    const h = await startHarness();
    const command = script(`const fs = require('fs'); const t = setInterval(() => { if (fs.existsSync('go')) { clearInterval(t); console.log('all 12 tests passed'); } }, 20)`);
    h.llm!.enqueue(
      { toolCalls: [{ name: 'start_process', arguments: { command, hooks: [{ trigger: { type: 'on_exit' }, action: 'inject_context', context_message: 'The tests finished.' }] } }] },
      { content: 'Tests are running.' },
      { content: 'All 12 tests passed.' },
    );
    const outcome = await h.agents.handleMessage({ agentName: 'main', authorId: 'u-1', content: 'run the tests', messageId: 'in-1' });
    await outcome.finished;
    expect(h.agents.branch(outcome.branchId!)!.status).toBe('idle');
    expect(h.frontEnd.posts.map((p) => p.text)).toEqual(['Tests are running.']);

    writeFileSync(join(h.home, 'agents', 'main', 'workspace', 'go'), '');
    await waitFor(() => h.frontEnd.posts.find((p) => p.text === 'All 12 tests passed.'), { what: 'the woken branch to answer' });
    const woken = h.llm!.requests[2]!;
    const injected = userTexts(woken).at(-1)!;
    expect(injected).toContain('The tests finished.');
    expect(injected).toContain('exited with code 0');
    expect(injected).toContain('all 12 tests passed');
    // Same branch: the earlier turn is in the history.
    expect(userTexts(woken)[0]).toBe('run the tests');
    await waitFor(() => h.agents.branch(outcome.branchId!)!.status === 'idle');
  });

  it('inject_context into a running branch lands in its next request', async () => {
    const h = await startHarness();
    let releaseStep: () => void = () => undefined;
    const stepReleased = new Promise<void>((resolve) => { releaseStep = resolve; });
    h.llm!.enqueue(
      {
        toolCalls: [{
          name: 'start_process',
          arguments: {
            command: script(`console.log('server READY on :8080'); setTimeout(() => {}, 20000)`), process_type: 'concurrent',
            hooks: [{ trigger: { type: 'on_output_match', pattern: 'READY' }, action: 'inject_context', context_message: 'The server is up.' }],
          },
        }],
      },
      // The branch is in the middle of a step (waiting for the model) when the hook fires.
      async () => {
        await stepReleased;
        return { toolCalls: [{ name: 'list_processes', arguments: {} }] };
      },
      { content: 'The server is up and I saw it.' },
    );
    const outcome = await h.agents.handleMessage({ agentName: 'main', authorId: 'u-1', content: 'start the server', messageId: 'in-1' });
    await h.llm!.waitForRequests(2);
    const record = h.manager.list({ agentName: 'main' })[0]!;
    await waitFor(() => h.hooks.repo.firingsForProcess(record.id).find((f) => f.status === 'done'), { what: 'the injection' });
    expect(h.agents.branch(outcome.branchId!)!.status).toBe('running');
    releaseStep();
    await outcome.finished;

    const [, during, next] = h.llm!.requests;
    expect(userTexts(during!).join('\n')).not.toContain('The server is up.');
    const nextMessages = messagesOf(next!);
    const last = nextMessages.at(-1)!;
    // After the step's tool results, never between a call and its result; and not right after a tool message either
    // (Mistral: "Unexpected role 'user' after role 'tool'"): an assistant message stands between.
    expect(nextMessages.at(-3)!.role).toBe('tool');
    expect(nextMessages.at(-2)).toEqual({ role: 'assistant', content: BRIDGE_CONTENT });
    expect(last.role).toBe('user');
    expect(last.content).toContain('The server is up.');
    expect(last.content).toContain('server READY on :8080');
    expect(h.frontEnd.posts.map((p) => p.text)).toEqual(['The server is up and I saw it.']);
  });

  it('inject_context for a branch that was stopped starts a new branch instead', async () => {
    const h = await startHarness();
    h.llm!.enqueue({ content: 'Hello.' });
    const outcome = await h.agents.handleMessage({ agentName: 'main', authorId: 'u-1', content: 'hi', messageId: 'in-1' });
    await outcome.finished;
    await h.agents.stopBranchById(outcome.branchId!, 'u-1');
    h.llm!.enqueue({ content: 'A new branch looked at it.' });
    const { store } = h.hooks.prepare([{ trigger: { type: 'on_exit' }, action: 'inject_context', context_message: 'It ended.' }]);
    await h.manager.spawn({ agent: 'main', command: 'echo done', spawnedByBranch: outcome.branchId!, withRow: store });
    await waitFor(() => h.frontEnd.posts.find((p) => p.text === 'A new branch looked at it.'), { what: 'the fallback branch' });
    const branches = h.agents.repo.listForAgent('main');
    expect(branches.find((b) => b.id === outcome.branchId)!.status).toBe('stopped');
    expect(branches.find((b) => b.origin === 'hook')).toMatchObject({ depth: 1 });
    expect(userTexts(h.llm!.requests.at(-1)!)).toEqual([expect.stringContaining('It ended.')]);
  });

  it('stop_branch stops the branch and its concurrent processes, not its background ones', async () => {
    const h = await startHarness();
    const forever = script('setInterval(() => {}, 1000)');
    h.llm!.enqueue(
      {
        toolCalls: [
          { name: 'start_process', arguments: { command: forever, process_type: 'concurrent', name: 'worker' } },
          { name: 'start_process', arguments: { command: forever, process_type: 'background', name: 'server' } },
          {
            name: 'start_process',
            arguments: {
              command: script(`setTimeout(() => console.log('FATAL: giving up'), 300); setInterval(() => {}, 1000)`), process_type: 'concurrent', name: 'watchdog',
              hooks: [{ trigger: { type: 'on_output_match', pattern: '^FATAL' }, action: 'stop_branch' }],
            },
          },
        ],
      },
      { hang: true },
    );
    const outcome = await h.agents.handleMessage({ agentName: 'main', authorId: 'u-1', content: 'start everything', messageId: 'in-1' });
    await waitFor(() => h.agents.branch(outcome.branchId!)!.status === 'stopped', { what: 'the branch to stop' });
    await outcome.finished;
    const byName = (name: string) => h.manager.list({ agentName: 'main' }).find((r) => r.name === name)!;
    await waitFor(() => byName('worker').status === 'killed' && byName('watchdog').status === 'killed', { what: 'the concurrent processes to stop' });
    expect(byName('server').status).toBe('running');
    expect(isAlive(byName('server').pid!)).toBe(true);
    expect(isAlive(byName('worker').pid!)).toBe(false);
    expect(byName('worker').stoppedBy).toMatch(/^hook:\d+$/);
    expect(h.agents.branch(outcome.branchId!)!.stoppedBy).toMatch(/^hook:\d+$/);
    // The hanging request was abandoned and nothing was posted for the stopped branch.
    expect(h.frontEnd.posts).toEqual([]);
    expect(h.llm!.requests).toHaveLength(2);
  });

  it('a reply after a restart continues the branch with its stored history', async () => {
    const first = await startHarness({ frontEndPrefix: 'a' });
    first.llm!.enqueue({ toolCalls: [{ name: 'run_command', arguments: { command: 'echo remembered-42' } }] }, { content: 'The number is 42.' });
    const outcome = await first.agents.handleMessage({ agentName: 'main', authorId: 'u-1', content: 'what number?', messageId: 'in-1' });
    await outcome.finished;
    const answer = first.frontEnd.posts[0]!;
    await first.stop();

    const second = await startHarness({ home: first.home, llm: first.llm!, frontEndPrefix: 'b' });
    first.llm!.enqueue({ content: 'Still 42.' });
    const reply = await second.agents.handleMessage({ agentName: 'main', authorId: 'u-1', content: 'and now?', messageId: 'in-2', replyToMessageId: answer.id });
    await reply.finished;
    expect(reply).toMatchObject({ branchId: outcome.branchId, isNewBranch: false });
    const request = first.llm!.requests.at(-1)!;
    const history = messagesOf(request).slice(1).map((m) => `${m.role}:${m.content ?? m.tool_calls?.[0]?.function.name}`);
    expect(history).toEqual(['user:what number?', 'assistant:run_command', expect.stringContaining('remembered-42'), 'assistant:The number is 42.', 'user:and now?']);
    expect(second.frontEnd.posts[0]).toMatchObject({ text: 'Still 42.', replyTo: 'in-2' });
  });

  it('a branch that hits the step limit says it stopped and why', async () => {
    const h = await startHarness({ maxSteps: 2 });
    h.llm!.setDefault(() => ({ toolCalls: [{ name: 'list_processes', arguments: {} }] }));
    const outcome = await h.agents.handleMessage({ agentName: 'main', authorId: 'u-1', content: 'loop forever', messageId: 'in-1' });
    await outcome.finished;
    expect(h.llm!.requests).toHaveLength(2);
    expect(h.frontEnd.posts[0]!.text).toMatch(/stopped after 2 steps .*step limit.*Reply/);
  });

  it('without an LLM, a message gets one line saying how to configure one', async () => {
    const h = await startHarness({ llm: false });
    const outcome = await h.agents.handleMessage({ agentName: 'main', authorId: 'u-1', content: 'hello', messageId: 'in-1' });
    await outcome.finished;
    expect(outcome.branchId).toBeNull();
    expect(h.frontEnd.posts).toHaveLength(1);
    expect(h.frontEnd.posts[0]!.text).toMatch(/^No LLM is configured: set LLM_BASE_URL/);
    expect(h.frontEnd.posts[0]!.text).not.toContain('\n');
  });

  it('shows background processes only, throttled, with a final update', async () => {
    const h = await startHarness({ statusThrottleMs: 300 });
    const chatty = script(`let i = 0; const t = setInterval(() => { console.log('tick ' + i++); if (i === 40) { clearInterval(t); } }, 10)`);
    const background = await h.manager.spawn({ agent: 'main', command: chatty, processType: 'background' });
    const concurrent = await h.manager.spawn({ agent: 'main', command: chatty, processType: 'concurrent' });
    await waitFor(() => h.frontEnd.statuses.find((s) => s.view.isFinal), { what: 'the final status' });
    await waitFor(() => h.manager.find({ id: concurrent.id })!.status === 'exited');
    const shown = h.frontEnd.statuses.map((s) => s.view);
    expect(shown.every((v) => v.record.id === background.id)).toBe(true);
    // 40 lines over ~400 ms: a handful of throttled updates, not one per line.
    expect(shown.length).toBeLessThan(8);
    expect(shown.at(-1)).toMatchObject({ isFinal: true, record: { status: 'exited', exitCode: 0 } });
    expect(shown.filter((v) => v.isFinal)).toHaveLength(1);
  });
});

import { describe, expect, it } from 'vitest';
import { buildPreamble, PREAMBLE_BUDGET } from '../../src/agents/preamble.js';
import { waitFor } from '../support/wait-for.js';
import { script, startHarness, systemOf, writeAgent } from './harness.js';

describe('process preamble', () => {
  it("lists the agent's running processes with type, uptime, last line and live hooks, and the last ended ones", async () => {
    const h = await startHarness();
    const { store } = h.hooks.prepare([{ trigger: { type: 'on_output_match', pattern: 'FAIL' }, action: 'spawn_branch' }]);
    const server = await h.manager.spawn({ agent: 'main', command: script(`console.log('listening on :3000'); setInterval(() => {}, 1000)`), name: 'api', withRow: store });
    const done = await h.manager.spawn({ agent: 'main', command: 'exit 3', processType: 'concurrent' });
    const foreign = await h.manager.spawn({ agent: 'other', command: script('setInterval(() => {}, 1000)') });
    await waitFor(() => h.manager.find({ id: done.id })!.status === 'exited' && h.manager.tail(server.id)?.length);

    const text = buildPreamble({ manager: h.manager, hooks: h.hooks }, 'main');
    expect(text).toContain('Your running processes (1):');
    expect(text).toMatch(new RegExp(`- pid ${server.pid} background "api": .* \\(up \\d+s\\)`));
    expect(text).toContain('last: listening on :3000');
    expect(text).toContain('hooks: on output /FAIL/ (both) → spawn_branch, max 1');
    expect(text).toContain('Recently ended:');
    expect(text).toContain(`- pid ${done.pid} concurrent: exit 3 → exit 3`);
    expect(text).not.toContain(`pid ${foreign.pid}`);
  });

  it('stays within its budget with 50 running processes, and says how many it left out', async () => {
    const h = await startHarness();
    writeAgent(h.home, 'main', { max_processes: 60 });
    const long = `sleep 30 # ${'a very long comment that makes this command line long '.repeat(4)}`;
    for (let i = 0; i < 50; i++) await h.manager.spawn({ agent: 'main', command: `${long}${i}`, name: `worker ${i}` });
    const text = buildPreamble({ manager: h.manager, hooks: h.hooks }, 'main');
    expect(text.length).toBeLessThanOrEqual(PREAMBLE_BUDGET);
    expect(text).toContain('Your running processes (50):');
    expect(text).toMatch(/… and \d+ more running \(list_processes shows all\)/);

    // And it is in every request the agent makes.
    h.llm!.enqueue({ content: 'ok' });
    await (await h.agents.handleMessage({ agentName: 'main', authorId: 'u-1', content: 'status?' })).finished;
    expect(systemOf(h.llm!.requests[0]!)).toContain(text.split('\n')[1]!);
  });

  it('shows whether a process takes input, has a terminal, is paused, and how long since its last output line', async () => {
    const h = await startHarness();
    const repl = await h.manager.spawn({ agent: 'main', command: 'echo hello; cat', tty: true });
    await waitFor(() => h.manager.find({ id: repl.id })!.lastOutputAt, { what: 'last_output_at stored with the offsets' });
    h.manager.signal({ id: repl.id }, 'STOP', { by: 'test' });
    const text = buildPreamble({ manager: h.manager, hooks: h.hooks }, 'main');
    expect(text).toMatch(new RegExp(`- pid ${repl.pid} background: .* \\(up \\d+s; tty \\(interactive\\), paused \\d+s \\(CONT resumes\\), last output \\d+s ago\\)`));
    h.manager.signal({ id: repl.id }, 'CONT', { by: 'test' });
    expect(buildPreamble({ manager: h.manager, hooks: h.hooks }, 'main')).not.toContain('paused');
  });
});

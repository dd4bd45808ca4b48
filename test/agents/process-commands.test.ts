import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadAgentConfig } from '../../src/agents/agent-config.js';
import { ATTACHMENT_LIMIT_BYTES, REPLY_LIMIT, runProcessCommand, type ProcessCommandContext } from '../../src/agents/process-commands.js';
import { isAlive } from '../support/child-cleanup.js';
import { waitFor } from '../support/wait-for.js';
import { script, startHarness, type Harness } from './harness.js';

function context(h: Harness): ProcessCommandContext {
  return { manager: h.manager, hooks: h.hooks, agent: loadAgentConfig(h.home, 'main'), actorId: '123456789012345678' };
}

const forever = script('setInterval(() => {}, 1000)');

describe('/process command handlers', () => {
  it('list shows whole commands when the reply has room, else their start and end with the middle elided', async () => {
    const h = await startHarness({ llm: false });
    const ctx = context(h);
    const prefix = `${forever} --suite integration/very/long/path/to/the/tests/that/share/a/prefix`;
    const a = await h.manager.spawn({ agent: 'main', command: `${prefix} --grep alpha-case` });
    const b = await h.manager.spawn({ agent: 'main', command: `${prefix} --grep beta-case` });
    const few = await runProcessCommand(ctx, 'list', {});
    expect(few.attachment).toBeUndefined();
    expect(few.text).toContain(a.command);
    expect(few.text).toContain(b.command);
    // Twenty such rows do not fit whole in one message: each keeps its start and its distinct end.
    for (let i = 0; i < 18; i += 1) await h.manager.spawn({ agent: 'main', command: `${prefix} --grep case-${i}` });
    const many = await runProcessCommand(ctx, 'list', {});
    expect(many.attachment).toBeUndefined();
    expect(many.text.length).toBeLessThanOrEqual(REPLY_LIMIT);
    const lines = many.text.split('\n');
    for (const end of ['alpha-case', 'beta-case', 'case-0', 'case-17']) {
      expect(lines.some((l) => l.includes('…') && l.endsWith(`--grep ${end}`) && l.includes(forever.slice(0, 20))), end).toBe(true);
    }
    await h.manager.killAllForAgent('main', { by: 'test' });
  });

  it('status says when the front end gave up on the live status message', async () => {
    const h = await startHarness({ llm: false });
    const record = await h.manager.spawn({ agent: 'main', command: forever });
    const ctx = { ...context(h), statusMessageProblem: (id: number) => (id === record.id ? 'not updated any more: Discord refused its edits and a fresh post' : undefined) };
    const reply = await runProcessCommand(ctx, 'status', { pid: record.pid });
    expect(reply.text).toContain('status message: not updated any more: Discord refused its edits and a fresh post');
    expect((await runProcessCommand(context(h), 'status', { pid: record.pid })).text).not.toContain('status message:');
    await h.manager.killAllForAgent('main', { by: 'test' });
  });

  it('list, status, kill and restart work on the agent’s own processes', async () => {
    const h = await startHarness({ llm: false });
    const ctx = context(h);
    const { store } = h.hooks.prepare([{ trigger: { type: 'on_exit', exit_filter: 'failure' }, action: 'notify_channel' }]);
    const server = await h.manager.spawn({ agent: 'main', command: forever, name: 'api', withRow: store });
    const finished = await h.manager.spawn({ agent: 'main', command: 'exit 0' });
    await waitFor(() => h.manager.find({ id: finished.id })!.status === 'exited');

    const all = await runProcessCommand(ctx, 'list', {});
    expect(all.isError).toBeUndefined();
    expect(all.text).toMatch(/^Processes of main \(all, 2\):/);
    expect(all.text).toMatch(new RegExp(`${server.pid}\\s+running\\s+\\S+\\s+background\\s+api: `));
    expect(all.text).toMatch(new RegExp(`${finished.pid}\\s+exit 0`));
    const running = await runProcessCommand(ctx, 'list', { filter: 'running' });
    expect(running.text).not.toContain(`${finished.pid} `);

    const status = await runProcessCommand(ctx, 'status', { pid: String(server.pid) });
    expect(status.text).toContain(`pid ${server.pid} (#${server.id}) of main, background "api"`);
    expect(status.text).toContain('hook:      on exit (failure) → notify_channel, max 1 (fired 0)');

    const restarted = await runProcessCommand(ctx, 'restart', { pid: server.pid });
    const newPid = Number(/as pid (\d+)/.exec(restarted.text)![1]);
    const fresh = h.manager.find({ pid: newPid, agentName: 'main' })!;
    expect(fresh).toMatchObject({ status: 'running', restartedFrom: server.id, name: 'api' });
    expect(h.hooks.hooksFor(fresh.id).map((x) => x.description)).toEqual(['on exit (failure) → notify_channel, max 1']);
    expect(h.manager.find({ id: server.id })!.stoppedBy).toBe(ctx.actorId);

    const killed = await runProcessCommand(ctx, 'kill', { pid: newPid, force: true });
    expect(killed.text).toMatch(new RegExp(`^Stopped pid ${newPid} .* with SIGKILL`));
    expect(isAlive(newPid)).toBe(false);
    const again = await runProcessCommand(ctx, 'kill', { pid: newPid });
    expect(again).toMatchObject({ isError: true });
    expect(again.text).toMatch(/is not running: it stopped with SIGKILL/);
  });

  it('checks every option and never touches another agent’s process', async () => {
    const h = await startHarness({ llm: false });
    const ctx = context(h);
    const mine = await h.manager.spawn({ agent: 'main', command: forever });
    const theirs = await h.manager.spawn({ agent: 'other', command: forever });
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ['kill', { pid: theirs.pid }, new RegExp(`No such process: pid ${theirs.pid} for agent main`)],
      ['restart', { pid: theirs.pid }, /No such process/],
      ['logs', { pid: theirs.pid }, /No such process/],
      ['status', {}, /pid is required/],
      ['status', { pid: 'abc' }, /pid must be a positive integer \(got "abc"\)/],
      ['logs', { pid: mine.pid, lines: 0 }, /lines must be an integer from 1 to 1000 \(got 0\)/],
      ['logs', { pid: mine.pid, lines: '1001' }, /lines must be an integer from 1 to 1000/],
      ['logs', { pid: mine.pid, stream: 'stdboth' }, /stream must be one of stdout, stderr, both \(got "stdboth"\)/],
      ['list', { filter: 'zombie' }, /filter must be one of all, running, exited, killed, lost, restarting, crash_loop/],
      ['kill', { pid: mine.pid, force: 'maybe' }, /force must be true or false/],
      ['explode', {}, /Unknown \/process subcommand "explode"/],
    ];
    for (const [subcommand, options, message] of cases) {
      const reply = await runProcessCommand(ctx, subcommand, options);
      expect(reply.isError, `${subcommand} ${JSON.stringify(options)}`).toBe(true);
      expect(reply.text).toMatch(message);
    }
    expect(h.manager.find({ id: theirs.id })!.status).toBe('running');
    expect(isAlive(theirs.pid!)).toBe(true);
    expect(h.manager.find({ id: mine.id })!.status).toBe('running');
  });

  it('logs longer than a message come back as a bounded .log attachment that keeps the end', async () => {
    const h = await startHarness({ llm: false });
    const ctx = context(h);
    const record = await h.manager.spawn({ agent: 'main', command: script(`for (let i = 1; i <= 3000; i++) console.log('line ' + i + ' ' + 'y'.repeat(400)); console.error('last words')`) });
    await waitFor(() => h.manager.find({ id: record.id })!.status === 'exited');

    const short = await runProcessCommand(ctx, 'logs', { pid: record.pid, lines: 2, stream: 'stderr' });
    expect(short.attachment).toBeUndefined();
    expect(short.text).toContain('last words');

    const long = await runProcessCommand(ctx, 'logs', { pid: record.pid, lines: 1000 });
    expect(long.text.length).toBeLessThanOrEqual(REPLY_LIMIT);
    expect(long.text).toContain(`pid-${record.pid}-both.log`);
    expect(long.attachment!.name).toBe(`pid-${record.pid}-both.log`);
    expect(Buffer.byteLength(long.attachment!.content)).toBeLessThanOrEqual(ATTACHMENT_LIMIT_BYTES + 200);
    expect(long.attachment!.content).toContain(`line 3000 ${'y'.repeat(400)}`);
    expect(long.attachment!.content).toContain('--- stderr ---\nlast words');
    expect(long.attachment!.content).not.toContain('line 1 y');
    expect(readFileSync(record.stdoutLog, 'utf8').split('\n')).toHaveLength(3001);
  });
});

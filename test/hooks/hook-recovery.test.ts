import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { agentOwnerLoader } from '../../src/agents/agent-config.js';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HookEngine } from '../../src/hooks/hook-engine.js';
import { JournalPort } from '../../src/hooks/journal-port.js';
import { silentLogger } from '../../src/logger.js';
import { ProcessManager } from '../../src/process/process-manager.js';
import { openDatabase } from '../../src/store/database.js';
import type { ProcessRecord } from '../../src/store/process-repo.js';
import { trackPid } from '../support/child-cleanup.js';
import { startSupervisor } from '../support/supervisor-process.js';
import { makeTempHome } from '../support/temp-home.js';
import { waitFor } from '../support/wait-for.js';
import { fixture } from '../support/fixtures.js';

const PRINTER = fixture('gated-printer.mjs');
const opened: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const close of opened.splice(0)) await close();
});

/** A home with a client (non-supervising) manager and hook engine in this process, as the CLI or a tool would use. */
function clientHome() {
  const home = makeTempHome();
  const db = openDatabase(join(home, 'chorus.db'));
  const manager = new ProcessManager({ home, db, log: silentLogger(), loadOwner: agentOwnerLoader(home) });
  const hooks = new HookEngine({ manager, log: silentLogger(), port: new JournalPort(join(home, 'unused.jsonl')) });
  opened.push(async () => { await manager.close(); db.close(); });
  const journal = () => {
    const path = join(home, 'hook-journal.jsonl');
    if (!existsSync(path)) return [];
    return readFileSync(path, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { journalAction: string; cause: string; matchedLines: string[]; processId: number; mergedCount: number });
  };
  let said = 0;
  // In the agent's workspace: a confined printer sees nothing else of the home.
  const gate = join(home, 'agents', 'demo', 'workspace', 'gate');
  mkdirSync(gate, { recursive: true });
  /** Makes the printer print `text` (atomically, so it never reads half a file). */
  const say = (text: string) => {
    said += 1;
    writeFileSync(join(gate, `tmp-${said}`), `${text}\n`);
    renameSync(join(gate, `tmp-${said}`), join(gate, `say-${said}`));
  };
  const exitWith = (code: number) => {
    writeFileSync(join(gate, 'exit.tmp'), String(code));
    renameSync(join(gate, 'exit.tmp'), join(gate, 'exit'));
  };
  const spawn = async (hookInput: unknown): Promise<ProcessRecord> => {
    const { store } = hooks.prepare(hookInput);
    const record = await manager.spawn({ agent: 'demo', command: `${JSON.stringify(process.execPath)} ${JSON.stringify(PRINTER)} ${JSON.stringify(gate)}`, withRow: store });
    trackPid(record.pid!, { group: true });
    return record;
  };
  const row = (id: number) => manager.repo.get(id)!;
  return { home, manager, hooks, journal, say, exitWith, spawn, row };
}

describe('hooks across supervisor crashes', () => {
  it('never repeats a firing whose output is read again after a crash', async () => {
    const h = clientHome();
    const record = await h.spawn([{ trigger: { type: 'on_output_match', pattern: '^MATCH' }, action: 'notify_channel', max_fires: 5 }]);
    const first = await startSupervisor(h.home);
    h.say('MATCH one');
    await waitFor(() => h.journal().length === 1, { what: 'the first firing' });
    // Killed at once: the stored offsets may still lie before the matched line, so it is read again.
    await first.sigkill();
    const second = await startSupervisor(h.home);
    h.say('something else');
    h.say('MATCH two');
    await waitFor(() => h.journal().length === 2, { timeoutMs: 15_000, what: 'the second firing' });
    h.exitWith(0);
    await waitFor(() => h.row(record.id).status === 'exited');
    await waitFor(() => h.hooks.repo.firingsForProcess(record.id).every((f) => f.status === 'done'));
    expect(h.journal().map((e) => e.matchedLines[0])).toEqual(['MATCH one', 'MATCH two']);
    expect(h.hooks.repo.firingsForProcess(record.id)).toHaveLength(2);
    await second.stop();
  });

  it('delivers a firing whose output delay was cut by a crash, once, with the lines that followed', async () => {
    const h = clientHome();
    const record = await h.spawn([{ trigger: { type: 'on_output_match', pattern: '^Traceback' }, action: 'notify_channel', output_delay_seconds: 2 }]);
    const first = await startSupervisor(h.home);
    h.say('Traceback (most recent call last):');
    await waitFor(() => h.hooks.repo.firingsForProcess(record.id)[0]?.status === 'gathering', { what: 'a gathering firing' });
    await first.sigkill();
    h.say('  File "x.py", line 1');
    const second = await startSupervisor(h.home);
    await waitFor(() => h.journal().length === 1, { what: 'the delayed firing' });
    h.exitWith(1);
    await waitFor(() => h.row(record.id).status === 'exited');
    await waitFor(() => h.hooks.repo.firingsForProcess(record.id).every((f) => f.status === 'done'));
    const [entry] = h.journal();
    expect(h.journal()).toHaveLength(1);
    expect(entry!.matchedLines).toEqual(['Traceback (most recent call last):', '  File "x.py", line 1']);
    await second.stop();
  });

  it('fires a timeout once, on time, when the supervisor was killed before its deadline', async () => {
    const h = clientHome();
    const record = await h.spawn([{ trigger: { type: 'on_timeout', timeout_seconds: 2 }, action: 'notify_channel' }]);
    const first = await startSupervisor(h.home);
    await first.sigkill();
    const second = await startSupervisor(h.home);
    await waitFor(() => h.journal().length === 1, { timeoutMs: 10_000, what: 'the timeout firing' });
    const firing = h.hooks.repo.firingsForProcess(record.id)[0]!;
    expect(firing.cause).toBe('timeout');
    expect(Date.parse(firing.createdAt) - Date.parse(record.startedAt)).toBeGreaterThanOrEqual(2_000);
    await second.stop();
    const third = await startSupervisor(h.home);
    h.exitWith(0);
    await waitFor(() => h.row(record.id).status === 'exited');
    expect(h.journal()).toHaveLength(1);
    await third.stop();
  });

  it('fires a timeout at once when its deadline passed while no supervisor ran', async () => {
    const h = clientHome();
    const record = await h.spawn([{ trigger: { type: 'on_timeout', timeout_seconds: 1 }, action: 'notify_channel' }]);
    await waitFor(() => Date.now() - Date.parse(record.startedAt) > 1_200, { what: 'the deadline to pass' });
    const supervisor = await startSupervisor(h.home);
    await waitFor(() => h.journal().length === 1, { what: 'the overdue timeout firing' });
    await supervisor.stop();
  });

  it('fires hooks for output and an exit that happened while no supervisor ran', async () => {
    const h = clientHome();
    const record = await h.spawn([
      { trigger: { type: 'on_output_match', pattern: 'FAILED' }, action: 'notify_channel' },
      { trigger: { type: 'on_exit', exit_filter: 'failure' }, action: 'notify_channel' },
    ]);
    h.say('1 test FAILED');
    h.exitWith(4);
    await waitFor(() => h.manager.observe(h.row(record.id)).status === 'exited', { what: 'the process to end unsupervised' });
    const supervisor = await startSupervisor(h.home);
    await waitFor(() => h.journal().length === 2, { what: 'both firings' });
    expect(h.row(record.id)).toMatchObject({ status: 'exited', exitCode: 4 });
    expect(h.journal().map((e) => e.cause).sort()).toEqual(['exit', 'output']);
    await supervisor.stop();
  });

  it('fires an exit hook whose process was recorded as ended just before a crash', async () => {
    const h = clientHome();
    const record = await h.spawn([{ trigger: { type: 'on_exit' }, action: 'notify_channel' }]);
    h.exitWith(0);
    await waitFor(() => h.manager.observe(h.row(record.id)).status === 'exited');
    // As if a supervisor recorded the end and died before deciding about the hook.
    h.manager.repo.finish(record.id, { status: 'exited', exitCode: 0, signal: null, stoppedBy: null, lostReason: null, endedAt: new Date().toISOString() });
    const supervisor = await startSupervisor(h.home);
    await waitFor(() => h.journal().length === 1, { what: 'the missed exit firing' });
    await supervisor.stop();
    const again = await startSupervisor(h.home);
    await again.stop();
    expect(h.journal()).toHaveLength(1);
  });
});

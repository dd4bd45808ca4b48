// `chorus status <pid>` shows a process's hooks with their fire counts, in text and --json, before and after a firing under `chorus supervise`.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { agentOwnerLoader } from '../../src/agents/agent-config.js';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HookEngine } from '../../src/hooks/hook-engine.js';
import { JournalPort } from '../../src/hooks/journal-port.js';
import { silentLogger } from '../../src/logger.js';
import { ProcessManager } from '../../src/process/process-manager.js';
import { openDatabase } from '../../src/store/database.js';
import { trackPid } from '../support/child-cleanup.js';
import { parseJson, runCli } from '../support/cli.js';
import { startSupervisor } from '../support/supervisor-process.js';
import { makeTempHome } from '../support/temp-home.js';
import { waitFor } from '../support/wait-for.js';
import { fixture } from '../support/fixtures.js';

const PRINTER = fixture('gated-printer.mjs');
const opened: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const close of opened.splice(0)) await close();
});

interface StatusJson {
  pid: number;
  status: string;
  hooks: Array<{ id: number; trigger: Record<string, unknown>; action: string; max_fires: number; fire_count: number }>;
}

/** A client (non-supervising) manager and hook engine in this process, as a tool call or `chorus spawn` would use. */
function clientHome() {
  const home = makeTempHome('chorus-cli-hooks-');
  const db = openDatabase(join(home, 'chorus.db'));
  const manager = new ProcessManager({ home, db, log: silentLogger(), loadOwner: agentOwnerLoader(home) });
  const hooks = new HookEngine({ manager, log: silentLogger(), port: new JournalPort(join(home, 'unused.jsonl')) });
  opened.push(async () => { await manager.close(); db.close(); });
  // In the agent's workspace: a confined printer sees nothing else of the home.
  const gate = join(home, 'agents', 'demo', 'workspace', 'gate');
  mkdirSync(gate, { recursive: true });
  const say = (text: string) => {
    writeFileSync(join(gate, 'tmp-1'), `${text}\n`);
    renameSync(join(gate, 'tmp-1'), join(gate, 'say-1'));
  };
  const exitWith = (code: number) => {
    writeFileSync(join(gate, 'exit.tmp'), String(code));
    renameSync(join(gate, 'exit.tmp'), join(gate, 'exit'));
  };
  const journal = () => {
    const path = join(home, 'hook-journal.jsonl');
    return existsSync(path) ? readFileSync(path, 'utf8').trim().split('\n') : [];
  };
  return { home, manager, hooks, gate, say, exitWith, journal };
}

describe('chorus status shows hooks', () => {
  it('with their fire counts, in text and --json, before and after a firing under chorus supervise', async () => {
    const h = clientHome();
    const { store } = h.hooks.prepare([
      { trigger: { type: 'on_output_match', pattern: '^MATCH' }, action: 'notify_channel', max_fires: 3 },
      { trigger: { type: 'on_exit', exit_filter: 'failure' }, action: 'spawn_branch' },
    ]);
    const record = await h.manager.spawn({ agent: 'demo', command: `${JSON.stringify(process.execPath)} ${JSON.stringify(PRINTER)} ${JSON.stringify(h.gate)}`, withRow: store });
    trackPid(record.pid!, { group: true });

    const textBefore = await runCli(h.home, ['status', String(record.pid)]);
    expect(textBefore.code, textBefore.stderr).toBe(0);
    expect(textBefore.stdout).toContain('hooks     on output /^MATCH/ (both) → notify_channel, max 3 (fired 0 of 3)\n');
    expect(textBefore.stdout).toContain('          on exit (failure) → spawn_branch, max 1 (fired 0 of 1)\n');
    const jsonBefore = parseJson<StatusJson>(await runCli(h.home, ['status', String(record.pid), '--json']));
    expect(jsonBefore).toMatchObject({ pid: record.pid, status: 'running' });
    expect(jsonBefore.hooks).toEqual([
      expect.objectContaining({ trigger: { type: 'on_output_match', pattern: '^MATCH', stream: 'both' }, action: 'notify_channel', max_fires: 3, fire_count: 0 }),
      expect.objectContaining({ trigger: { type: 'on_exit', exit_filter: 'failure' }, action: 'spawn_branch', max_fires: 1, fire_count: 0 }),
    ]);

    const supervisor = await startSupervisor(h.home);
    h.say('MATCH one');
    await waitFor(() => h.journal().length === 1, { what: 'the firing in the journal' });
    await waitFor(() => h.hooks.repo.firingsForProcess(record.id).every((f) => f.status === 'done'), { what: 'the firing to be done' });

    const textAfter = await runCli(h.home, ['status', String(record.pid)]);
    expect(textAfter.stdout).toContain('hooks     on output /^MATCH/ (both) → notify_channel, max 3 (fired 1 of 3)\n');
    expect(textAfter.stdout).toContain('          on exit (failure) → spawn_branch, max 1 (fired 0 of 1)\n');
    const jsonAfter = parseJson<StatusJson>(await runCli(h.home, ['status', String(record.pid), '--json']));
    expect(jsonAfter.hooks.map((hook) => [hook.id, hook.fire_count])).toEqual([[jsonBefore.hooks[0]!.id, 1], [jsonBefore.hooks[1]!.id, 0]]);

    h.exitWith(0);
    await waitFor(() => h.manager.repo.get(record.id)?.status === 'exited', { what: 'the process to end' });
    await supervisor.stop();
    // A clean exit is not a failure: the on_exit hook never fired.
    const jsonEnded = parseJson<StatusJson>(await runCli(h.home, ['status', String(record.pid), '--json']));
    expect(jsonEnded).toMatchObject({ status: 'exited' });
    expect(jsonEnded.hooks.map((hook) => hook.fire_count)).toEqual([1, 0]);
  });
});

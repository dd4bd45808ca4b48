// Bad operator CLI input, one row each: one line on stderr, a non-zero exit, and nothing spawned, killed or written.
import Database from 'better-sqlite3';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../support/child-cleanup.js';
import { listRunDirs, parseJson, runCli } from '../support/cli.js';
import { waitFor } from '../support/wait-for.js';
import { fixture } from '../support/fixtures.js';

type Row = { id: number; pid: number; status: string };

interface BadInput {
  name: string;
  args: () => string[];
  env?: NodeJS.ProcessEnv;
  /** What the one line on stderr must say. */
  says: RegExp;
}

const forever = fixture('forever.mjs');
const UNKNOWN_PID = '999999999';

// One home for the whole file, set up once; every case must leave it exactly as it was.
let home: string;
let live: Row;
let atLimit: Row;
let ended: Row;
let rowCount: number;
let runDirs: string[];

function agentJson(name: string, text: string): void {
  mkdirSync(join(home, 'agents', name), { recursive: true });
  writeFileSync(join(home, 'agents', name, 'agent.json'), text);
}

async function spawnRow(agent: string, command: string[]): Promise<Row> {
  const result = await runCli(home, ['spawn', '--agent', agent, '--json', '--', ...command]);
  if (result.code !== 0) throw new Error(`setup spawn failed: ${result.stderr}`);
  return parseJson<Row>(result);
}

/** Every row, `starting` ones included; read directly, so a case costs one CLI run. */
function countRows(): number {
  const db = new Database(join(home, 'chorus.db'), { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT COUNT(*) AS n FROM processes').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

beforeAll(async () => {
  home = realpathSync(mkdtempSync(join(tmpdir(), 'chorus-cli-bad-')));
  agentJson('limited', JSON.stringify({ max_processes: 1 }));
  agentJson('broken', JSON.stringify({ max_processes: 'many' }));
  agentJson('garbled', '{ "max_processes": 2,');
  live = await spawnRow('demo', [process.execPath, forever]);
  atLimit = await spawnRow('limited', [process.execPath, forever]);
  ended = await spawnRow('demo', ['true']);
  await waitFor(async () => (await runCli(home, ['status', String(ended.pid), '--json'])).stdout.includes('"exited"'), {
    what: 'the short process to end',
  });
  // The first stop request records the end (no supervisor runs); the cases then see a settled row.
  await runCli(home, ['kill', String(ended.pid)]);
  const workspace = join(home, 'agents', 'demo', 'workspace');
  symlinkSync(tmpdir(), join(workspace, 'escape'));
  writeFileSync(join(workspace, 'a-file'), 'not a directory\n');
  rowCount = countRows();
  expect(parseJson<Row[]>(await runCli(home, ['ps', '--all', '--json']))).toHaveLength(rowCount);
  runDirs = listRunDirs(home).sort();
});

afterAll(() => {
  for (const row of [live, atLimit]) {
    if (!row) continue;
    try { process.kill(-row.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  if (home) rmSync(home, { recursive: true, force: true });
});

const spawnDemo = (...command: string[]) => ['spawn', '--agent', 'demo', '--', ...command];

const CASES: BadInput[] = [
  // spawn: the command
  { name: 'spawn: empty command', args: () => spawnDemo(''), says: /command must not be empty/ },
  { name: 'spawn: blank command', args: () => spawnDemo('   '), says: /command must not be empty/ },
  { name: 'spawn: no command at all', args: () => ['spawn', '--agent', 'demo'], says: /command must not be empty/ },
  { name: 'spawn: command over 16 KiB', args: () => spawnDemo(`echo ${'x'.repeat(16 * 1024)}`), says: /command is 16389 bytes; the limit is 16384/ },
  { name: 'spawn: rm -rf /', args: () => spawnDemo('rm -rf /'), says: /blocked: command looks like recursive delete/ },
  { name: 'spawn: mkfs', args: () => spawnDemo('mkfs.ext4 /dev/sda'), says: /blocked: command looks like formatting a filesystem/ },
  { name: 'spawn: fork bomb', args: () => spawnDemo(':(){ :|:& };:'), says: /blocked: command looks like a fork bomb/ },
  { name: 'spawn: dd onto a disk', args: () => spawnDemo('dd if=/dev/zero of=/dev/sda'), says: /blocked: command looks like dd onto a device/ },
  // spawn: the working directory
  { name: 'spawn: --cwd outside the workspace', args: () => ['spawn', '--agent', 'demo', '--cwd', '/etc', '--', 'true'], says: /"\/etc" resolves to \/etc, outside the workspace/ },
  { name: 'spawn: --cwd .. climbs out', args: () => ['spawn', '--agent', 'demo', '--cwd', '..', '--', 'true'], says: /outside the workspace/ },
  { name: 'spawn: --cwd through a symlink that points outside', args: () => ['spawn', '--agent', 'demo', '--cwd', 'escape', '--', 'true'], says: /"escape" resolves to .*, outside the workspace/ },
  { name: 'spawn: missing --cwd', args: () => ['spawn', '--agent', 'demo', '--cwd', 'no-such-dir', '--', 'true'], says: /"no-such-dir" does not exist/ },
  { name: 'spawn: --cwd is a file', args: () => ['spawn', '--agent', 'demo', '--cwd', 'a-file', '--', 'true'], says: /"a-file" is not a directory/ },
  // spawn: the agent and options
  { name: 'spawn: missing --agent', args: () => ['spawn', '--', 'true'], says: /--agent is required/ },
  { name: 'spawn: bad agent name', args: () => ['spawn', '--agent', 'Bad Name!', '--', 'true'], says: /--agent must be 1-32 lowercase letters.*"Bad Name!"/ },
  { name: 'spawn: agent name with a path', args: () => ['spawn', '--agent', '../x', '--', 'true'], says: /--agent must be .*"\.\.\/x"/ },
  { name: 'spawn: bad --type', args: () => ['spawn', '--agent', 'demo', '--type', 'daemon', '--', 'true'], says: /--type must be one of background, concurrent \(got "daemon"\)/ },
  { name: 'spawn: bad --category', args: () => ['spawn', '--agent', 'demo', '--category', 'misc', '--', 'true'], says: /--category must be one of/ },
  { name: 'spawn: bad --restart', args: () => ['spawn', '--agent', 'demo', '--restart', 'sometimes', '--', 'true'], says: /^chorus: Invalid input: --restart must be one of failure, always, never \(got "sometimes"\)$/ },
  { name: 'spawn: --max-restarts 0', args: () => ['spawn', '--agent', 'demo', '--restart', 'failure', '--max-restarts', '0', '--', 'true'], says: /^chorus: Invalid input: --max-restarts must be an integer from 1 to 1000 \(got "0"\)$/ },
  { name: 'spawn: --max-restarts without --restart', args: () => ['spawn', '--agent', 'demo', '--max-restarts', '3', '--', 'true'], says: /^chorus: Invalid input: --max-restarts needs --restart failure or --restart always$/ },
  { name: 'spawn: --ready-port a word', args: () => ['spawn', '--agent', 'demo', '--ready-port', 'http', '--', 'true'], says: /^chorus: Invalid input: --ready-port must be an integer from 1 to 65535 \(got "http"\)$/ },
  { name: 'spawn: --ready-port 70000', args: () => ['spawn', '--agent', 'demo', '--ready-port', '70000', '--', 'true'], says: /--ready-port must be an integer from 1 to 65535 \(got "70000"\)/ },
  { name: 'spawn: --ready-http without a port', args: () => ['spawn', '--agent', 'demo', '--ready-http', '/health', '--', 'true'], says: /^chorus: Invalid input: --ready-http needs --ready-port/ },
  { name: 'spawn: --ready-http not a path', args: () => ['spawn', '--agent', 'demo', '--ready-port', '3000', '--ready-http', 'health', '--', 'true'], says: /^chorus: Invalid input: --ready-http must be a URL path starting with \/ \(got "health"\)$/ },
  { name: 'spawn: --ready-pattern catastrophic', args: () => ['spawn', '--agent', 'demo', '--ready-pattern', '(a+)+\\1', '--', 'true'], says: /^chorus: Invalid input: --ready-pattern must be a regex that can be matched in linear time/ },
  { name: 'spawn: --ready-timeout 0', args: () => ['spawn', '--agent', 'demo', '--ready-port', '3000', '--ready-timeout', '0', '--', 'true'], says: /--ready-timeout must be an integer from 1 to 3600 \(got "0"\)/ },
  { name: 'spawn: --ready-timeout alone', args: () => ['spawn', '--agent', 'demo', '--ready-timeout', '5', '--', 'true'], says: /^chorus: Invalid input: --ready-timeout needs --ready-port or --ready-pattern$/ },
  { name: 'spawn: empty --name', args: () => ['spawn', '--agent', 'demo', '--name', ' ', '--', 'true'], says: /--name must be 1-100 characters/ },
  { name: 'spawn: over the process limit', args: () => ['spawn', '--agent', 'limited', '--', 'true'], says: /process limit: agent limited already runs 1 of 1/ },
  { name: 'spawn: agent.json with a bad value', args: () => ['spawn', '--agent', 'broken', '--', 'true'], says: /agents\/broken\/agent\.json: max_processes must be an integer from 1 to 1000 \(got "many"\)/ },
  { name: 'spawn: agent.json that is not JSON', args: () => ['spawn', '--agent', 'garbled', '--', 'true'], says: /agents\/garbled\/agent\.json: not valid JSON/ },
  // pids
  { name: 'status: no pid', args: () => ['status'], says: /status: pid is required/ },
  { name: 'status: non-numeric pid', args: () => ['status', 'abc'], says: /status: pid must be a positive integer \(got "abc"\)/ },
  { name: 'status: unknown pid', args: () => ['status', UNKNOWN_PID], says: /No such process: pid 999999999/ },
  { name: 'status: another agent\'s pid', args: () => ['status', String(live.pid), '--agent', 'other'], says: /No such process: pid \d+ for agent other/ },
  { name: 'logs: unknown pid', args: () => ['logs', UNKNOWN_PID], says: /No such process/ },
  { name: 'logs: another agent\'s pid', args: () => ['logs', String(live.pid), '--agent', 'other'], says: /No such process: pid \d+ for agent other/ },
  { name: 'kill: no pid', args: () => ['kill'], says: /kill: pid is required/ },
  { name: 'kill: non-numeric pid', args: () => ['kill', '12abc'], says: /kill: pid must be a positive integer \(got "12abc"\)/ },
  { name: 'kill: fractional pid', args: () => ['kill', '1.5'], says: /kill: pid must be a positive integer/ },
  { name: 'kill: pid 0', args: () => ['kill', '0'], says: /kill: pid must be a positive integer \(got "0"\)/ },
  { name: 'kill: unknown pid', args: () => ['kill', UNKNOWN_PID], says: /No such process: pid 999999999/ },
  { name: 'kill: another agent\'s pid', args: () => ['kill', String(live.pid), '--agent', 'other'], says: /No such process: pid \d+ for agent other/ },
  { name: 'kill: pid 1', args: () => ['kill', '1'], says: /No such process: pid 1;|may never be signalled/ },
  { name: 'kill: a process that already ended', args: () => ['kill', String(ended.pid)], says: /not running: pid \d+ already ended \(exited with code 0\)/ },
  { name: 'kill: bad --agent', args: () => ['kill', String(live.pid), '--agent', 'NOPE'], says: /--agent must be/ },
  { name: 'restart: unknown pid', args: () => ['restart', UNKNOWN_PID], says: /No such process/ },
  { name: 'restart: another agent\'s pid', args: () => ['restart', String(live.pid), '--agent', 'other'], says: /No such process: pid \d+ for agent other/ },
  { name: 'restart: non-numeric pid', args: () => ['restart', 'last'], says: /restart: pid must be a positive integer/ },
  // input, signal, wait
  { name: 'input: no pid', args: () => ['input'], says: /input: pid is required/ },
  { name: 'input: another agent\'s pid', args: () => ['input', String(live.pid), '--agent', 'other', '--', 'x'], says: /No such process: pid \d+ for agent other/ },
  { name: 'input: a process that is not interactive', args: () => ['input', String(live.pid), '--', 'x'], says: /not started interactive: pid \d+ reads no input/ },
  { name: 'input: text before --', args: () => ['input', String(live.pid), 'hello'], says: /input: the text goes after -- \(got "hello" before it\)/ },
  { name: 'input: unknown option', args: () => ['input', String(live.pid), '--close', '--', 'x'], says: /input: Unknown option '--close'/ },
  { name: 'signal: no signal', args: () => ['signal', String(live.pid)], says: /signal: the signal is required \(one of INT, HUP/ },
  { name: 'signal: unknown signal', args: () => ['signal', String(live.pid), 'SEGV'], says: /signal must be one of INT, HUP, QUIT, TERM, KILL, USR1, USR2, STOP, CONT, WINCH \(got "SEGV"\)/ },
  { name: 'signal: another agent\'s pid', args: () => ['signal', String(live.pid), 'STOP', '--agent', 'other'], says: /No such process: pid \d+ for agent other/ },
  { name: 'signal: a process that already ended', args: () => ['signal', String(ended.pid), 'HUP'], says: /already ended \(exited with code 0\); nothing was signalled/ },
  { name: 'wait: no --until', args: () => ['wait', String(live.pid)], says: /wait: --until is required \(one of exit, output, match, ready\)/ },
  { name: 'wait: bad --until', args: () => ['wait', String(live.pid), '--until', 'listening'], says: /--until must be one of exit, output, match, ready \(got "listening"\)/ },
  { name: 'wait: --until ready without a probe', args: () => ['wait', String(live.pid), '--until', 'ready'], says: /until "ready" needs a process started with ready/ },
  { name: 'wait: match without --pattern', args: () => ['wait', String(live.pid), '--until', 'match'], says: /wait: --until match needs --pattern RE/ },
  { name: 'wait: catastrophic --pattern', args: () => ['wait', String(live.pid), '--until', 'match', '--pattern', '(a+)+\\1'], says: /--pattern must be a regex that can be matched in linear time/ },
  { name: 'wait: --timeout 0', args: () => ['wait', String(live.pid), '--until', 'exit', '--timeout', '0'], says: /--timeout must be an integer from 1 to 600 \(got "0"\)/ },
  { name: 'wait: --timeout 601', args: () => ['wait', String(live.pid), '--until', 'exit', '--timeout', '601'], says: /--timeout must be an integer from 1 to 600 \(got "601"\)/ },
  { name: 'wait: bad --cursor', args: () => ['wait', String(live.pid), '--until', 'exit', '--cursor', 'abc'], says: /--cursor must be the next_cursor of an earlier wait/ },
  { name: 'wait: another agent\'s pid', args: () => ['wait', String(live.pid), '--until', 'exit', '--agent', 'other'], says: /No such process: pid \d+ for agent other/ },
  // logs options
  { name: 'logs: --lines 0', args: () => ['logs', String(live.pid), '--lines', '0'], says: /--lines must be an integer from 1 to 100000 \(got "0"\)/ },
  { name: 'logs: --lines 100001', args: () => ['logs', String(live.pid), '--lines', '100001'], says: /--lines must be an integer from 1 to 100000 \(got "100001"\)/ },
  { name: 'logs: --lines abc', args: () => ['logs', String(live.pid), '--lines', 'abc'], says: /--lines must be an integer from 1 to 100000 \(got "abc"\)/ },
  { name: 'logs: bad --stream', args: () => ['logs', String(live.pid), '--stream', 'stdin'], says: /--stream must be one of stdout, stderr, both \(got "stdin"\)/ },
  // verbs and options
  { name: 'unknown verb', args: () => ['frobnicate'], says: /unknown verb "frobnicate"; verbs: ps, status/ },
  { name: 'ps: unknown option', args: () => ['ps', '--bogus'], says: /ps: Unknown option '--bogus'/ },
  { name: 'ps: unexpected argument', args: () => ['ps', 'everything'], says: /ps: Unexpected argument 'everything'/ },
  { name: 'ps: bad --agent', args: () => ['ps', '--agent', 'Bad Name'], says: /--agent must be/ },
  { name: 'kill: unknown option', args: () => ['kill', String(live.pid), '--now'], says: /kill: Unknown option '--now'/ },
  { name: 'spawn: unknown option', args: () => ['spawn', '--agent', 'demo', '--detach', '--', 'true'], says: /spawn: Unknown option '--detach'/ },
  // configuration from the environment
  { name: 'doctor: unknown option', args: () => ['doctor', '--verbose'], says: /doctor: Unknown option '--verbose'/ },
  { name: 'doctor: unexpected argument', args: () => ['doctor', 'now'], says: /doctor: Unexpected argument 'now'/ },
  { name: 'doctor: bad LLM_BASE_URL', args: () => ['doctor'], env: { LLM_BASE_URL: 'localhost:11434' }, says: /LLM_BASE_URL must be an http\(s\) URL/ },
  { name: 'service: no action', args: () => ['service'], says: /service: the action must be install or uninstall \(got nothing\)/ },
  { name: 'service: unknown action', args: () => ['service', 'start'], says: /service: the action must be install or uninstall \(got "start"\)/ },
  { name: 'service install: unknown option', args: () => ['service', 'install', '--user'], says: /service install: Unknown option '--user'/ },
  { name: 'service install: unexpected argument', args: () => ['service', 'install', 'now'], says: /service install: Unexpected argument 'now'/ },
  { name: 'service uninstall: --print', args: () => ['service', 'uninstall', '--print'], says: /service uninstall: Unknown option '--print'/ },
  { name: 'service uninstall: no unit', args: () => ['service', 'uninstall'], env: { XDG_CONFIG_HOME: '/nonexistent-chorus-config' }, says: /service uninstall: no unit at \/nonexistent-chorus-config\/systemd\/user\/chorus\.service \(a system unit needs --system\)/ },
  { name: 'bad CHORUS_LOG_CAP', args: () => ['ps'], env: { CHORUS_LOG_CAP: 'lots' }, says: /CHORUS_LOG_CAP must be a size from 4K to 1024G, like 64M \(got "lots"\)/ },
  { name: 'bad LOG_LEVEL', args: () => ['ps'], env: { LOG_LEVEL: 'loud' }, says: /LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent \(got "loud"\)/ },
  { name: 'bad CHORUS_KILL_GRACE_MS, on a kill', args: () => ['kill', String(live.pid)], env: { CHORUS_KILL_GRACE_MS: 'soon' }, says: /CHORUS_KILL_GRACE_MS must be an integer/ },
  { name: 'bad LOG_LEVEL, on a spawn', args: () => spawnDemo('true'), env: { LOG_LEVEL: 'chatty' }, says: /LOG_LEVEL must be one of/ },
  { name: 'bad CHORUS_SANDBOX, on a spawn', args: () => spawnDemo('true'), env: { CHORUS_SANDBOX: 'sometimes' }, says: /CHORUS_SANDBOX must be one of auto, required, off \(got "sometimes"\)/ },
  {
    name: 'spawn with CHORUS_SANDBOX=required and no bwrap', args: () => spawnDemo('true'), env: { CHORUS_SANDBOX: 'required', PATH: '/nonexistent' },
    says: /The sandbox is required but unavailable: CHORUS_SANDBOX=required and bwrap was not found on PATH: install bubblewrap \(apt-get install bubblewrap\); nothing was started/,
  },
];

describe.concurrent('chorus CLI refuses bad input with one line and changes nothing', () => {
  it.for(CASES)('$name', async (c, { expect: expectHere }) => {
    const result = await runCli(home, c.args(), { env: c.env });

    expectHere(result.code, `exit code; stderr: ${result.stderr}`).not.toBe(0);
    expectHere(result.stdout).toBe('');
    const lines = result.stderr.trimEnd().split('\n');
    expectHere(lines, 'exactly one line on stderr').toHaveLength(1);
    expectHere(lines[0]).toMatch(/^chorus: /);
    expectHere(lines[0]).toMatch(c.says);
    expectHere(result.stderr.endsWith('\n')).toBe(true);

    expectHere(countRows(), 'rows').toBe(rowCount);
    expectHere(listRunDirs(home).sort(), 'run directories').toEqual(runDirs);
    expectHere(isAlive(live.pid), 'the live process').toBe(true);
    expectHere(isAlive(atLimit.pid), 'the process at the limit').toBe(true);
  });
});

describe('after every bad input', () => {
  it('the rows are as they were', async () => {
    const rows = parseJson<Row[]>(await runCli(home, ['ps', '--all', '--json']));
    expect(rows.map((r) => [r.id, r.status]).sort()).toEqual([
      [live.id, 'running'], [atLimit.id, 'running'], [ended.id, 'exited'],
    ].sort());
  });
});

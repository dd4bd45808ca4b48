// Malformed LLM tool calls across all seven tools: each gets the error the model must read, and nothing is spawned, stopped or written.
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadAgentConfig } from '../../src/agents/agent-config.js';
import { runToolCall, type ToolContext } from '../../src/agents/tools.js';
import { silentLogger } from '../../src/logger.js';
import type { ProcessRecord } from '../../src/store/process-repo.js';
import { isAlive } from '../support/child-cleanup.js';
import { listRunDirs } from '../support/cli.js';
import { waitFor } from '../support/wait-for.js';
import { node, startHarness, type Harness } from './harness.js';
import { fixture } from '../support/fixtures.js';

interface BadCall {
  name: string;
  tool: string;
  /** The arguments: a string is sent as is (the raw JSON text), anything else JSON-encoded. */
  args: () => unknown;
  code: string;
  /** What `error` must say (a function when it names a pid known only once the processes run). */
  says: RegExp | (() => RegExp);
}

const forever = `${node} ${JSON.stringify(fixture('forever.mjs'))}`;
const UNKNOWN_PID = 999_999_999;
const GOOD_HOOK = { trigger: { type: 'on_exit' }, action: 'notify_channel' };
/** A command that leaves a trace in the workspace if it ever runs. */
const TOUCH = 'touch ran-anyway';

let h: Harness;
let ctx: ToolContext;
let mine: ProcessRecord;
let theirs: ProcessRecord;
let ended: ProcessRecord;
let workspace: string;
let baseline: { processes: number; hooks: number; runDirs: string[]; workspace: string[] };

const count = (table: 'processes' | 'hooks') => (h.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
const snapshotWorkspace = () => readdirSync(workspace).sort();

async function call(name: string, args: unknown) {
  const result = await runToolCall(ctx, { id: 'c1', type: 'function', function: { name, arguments: typeof args === 'string' ? args : JSON.stringify(args) } });
  return { ...result, json: JSON.parse(result.content) as Record<string, any> };
}

beforeAll(async () => {
  h = await startHarness({ llm: false, lifetime: 'file' });
  ctx = { agent: loadAgentConfig(h.home, 'main'), branchId: 'br-bad', depth: 0, manager: h.manager, hooks: h.hooks, log: silentLogger() };
  const started = await call('start_process', { command: forever, hooks: [GOOD_HOOK] });
  expect(started.json.ok, started.content).toBe(true);
  mine = h.manager.find({ pid: started.json.pid, agentName: 'main' })!;
  theirs = await h.manager.spawn({ agent: 'other', command: forever });
  ended = await h.manager.spawn({ agent: 'main', command: 'true' });
  await waitFor(() => h.manager.find({ id: ended.id })?.status === 'exited', { what: 'the short process to end' });
  workspace = ctx.agent.workspace;
  mkdirSync(workspace, { recursive: true });
  symlinkSync(tmpdir(), join(workspace, 'escape'));
  writeFileSync(join(workspace, 'a-file'), 'not a directory\n');
  baseline = { processes: count('processes'), hooks: count('hooks'), runDirs: listRunDirs(h.home).sort(), workspace: snapshotWorkspace() };
  expect(baseline).toMatchObject({ processes: 3, hooks: 1 });
});

const hooksWith = (hook: unknown) => ({ command: TOUCH, hooks: [hook] });
const withTrigger = (trigger: Record<string, unknown>, rest: Record<string, unknown> = {}) => hooksWith({ trigger, action: 'notify_channel', ...rest });
const notFound = (pid: () => number) => () => new RegExp(`^No such process: pid ${pid()} for agent main; list processes to see valid pids$`);

const PID_TOOLS = ['add_process_hooks', 'get_process_status', 'get_process_output', 'stop_process'] as const;
const pidArgs = (tool: (typeof PID_TOOLS)[number], pid: number) => (tool === 'add_process_hooks' ? { pid, hooks: [GOOD_HOOK] } : { pid });

const CASES: BadCall[] = [
  // arguments that are not a JSON object
  { name: 'arguments not JSON', tool: 'get_process_status', args: () => '{pid: 12', code: 'INVALID_INPUT', says: /^Invalid input: the arguments of get_process_status are not valid JSON \(.+\); send one JSON object, e.g. \{"pid": 1234\}$/ },
  { name: 'arguments cut off', tool: 'start_process', args: () => '{"command": "npm te', code: 'INVALID_INPUT', says: /the arguments of start_process are not valid JSON .*e\.g\. \{"command": "npm test"\}/ },
  { name: 'arguments an array', tool: 'start_process', args: () => '["npm test"]', code: 'INVALID_INPUT', says: /the arguments of start_process must be a JSON object \(got an array\), e\.g\. \{"command": "npm test"\}/ },
  { name: 'arguments a string', tool: 'list_processes', args: () => '"running"', code: 'INVALID_INPUT', says: /the arguments of list_processes must be a JSON object \(got "running"\)/ },
  { name: 'arguments null', tool: 'stop_process', args: () => 'null', code: 'INVALID_INPUT', says: /the arguments of stop_process must be a JSON object \(got null\)/ },
  { name: 'arguments a number', tool: 'run_command', args: () => '42', code: 'INVALID_INPUT', says: /the arguments of run_command must be a JSON object \(got 42\)/ },
  // unknown and missing keys
  { name: 'unknown key', tool: 'start_process', args: () => ({ command: TOUCH, colour: 'red' }), code: 'INVALID_INPUT', says: /^Invalid input: colour is not a parameter of start_process \(parameters: command, working_directory, process_type, name, category, timeout_seconds, model_for_hooks, hooks, interactive, tty, ready, restart\)$/ },
  { name: 'unknown key __proto__', tool: 'run_command', args: () => `{"command": "${TOUCH}", "__proto__": {"x": 1}}`, code: 'INVALID_INPUT', says: /__proto__ is not a parameter of run_command/ },
  { name: 'unknown key next to a pid', tool: 'stop_process', args: () => ({ pid: mine.pid, signal: 'SIGKILL' }), code: 'INVALID_INPUT', says: /signal is not a parameter of stop_process \(parameters: pid, force\)/ },
  { name: 'unknown key tail', tool: 'get_process_output', args: () => ({ pid: mine.pid, tail: 5 }), code: 'INVALID_INPUT', says: /tail is not a parameter of get_process_output/ },
  { name: 'start_process without command', tool: 'start_process', args: () => ({ name: 'tests' }), code: 'INVALID_INPUT', says: /^Invalid input: command is missing: it is required$/ },
  { name: 'run_command without command', tool: 'run_command', args: () => ({ working_directory: '.' }), code: 'INVALID_INPUT', says: /command is missing: it is required/ },
  { name: 'get_process_status without pid', tool: 'get_process_status', args: () => ({}), code: 'INVALID_INPUT', says: /^Invalid input: pid is missing: it must be an integer$/ },
  { name: 'add_process_hooks without hooks', tool: 'add_process_hooks', args: () => ({ pid: mine.pid }), code: 'INVALID_INPUT', says: /hooks is missing: it must be an array of hook objects/ },
  { name: 'add_process_hooks without pid', tool: 'add_process_hooks', args: () => ({ hooks: [GOOD_HOOK] }), code: 'INVALID_INPUT', says: /pid is missing: it must be an integer/ },
  // wrong types
  { name: 'command a number', tool: 'start_process', args: () => ({ command: 42 }), code: 'INVALID_INPUT', says: /^Invalid input: command must be a string \(got 42\)$/ },
  { name: 'command an array', tool: 'run_command', args: () => ({ command: ['ls', '-la'] }), code: 'INVALID_INPUT', says: /command must be a string \(got an array\)/ },
  { name: 'working_directory a number', tool: 'start_process', args: () => ({ command: TOUCH, working_directory: 7 }), code: 'INVALID_INPUT', says: /working_directory must be a string \(got 7\)/ },
  { name: 'name an array', tool: 'start_process', args: () => ({ command: TOUCH, name: ['web'] }), code: 'INVALID_INPUT', says: /name must be a string \(got an array\)/ },
  { name: 'name over 100 characters', tool: 'start_process', args: () => ({ command: TOUCH, name: 'n'.repeat(101) }), code: 'INVALID_INPUT', says: /name must be a string of at most 100 characters \(got 101 characters\)/ },
  { name: 'model_for_hooks an object', tool: 'start_process', args: () => ({ command: TOUCH, model_for_hooks: { name: 'small' } }), code: 'INVALID_INPUT', says: /model_for_hooks must be a string \(got an object\)/ },
  { name: 'timeout_seconds a word', tool: 'start_process', args: () => ({ command: TOUCH, timeout_seconds: '10s' }), code: 'INVALID_INPUT', says: /timeout_seconds must be an integer from 1 to 604800 \(got "10s"\)/ },
  { name: 'hooks a string', tool: 'start_process', args: () => ({ command: TOUCH, hooks: 'on_exit' }), code: 'HOOK_INVALID', says: /^Invalid hook: hooks must be an array of at most 20 hook objects \(got "on_exit"\)$/ },
  { name: 'pid a word', tool: 'get_process_output', args: () => ({ pid: 'twelve' }), code: 'INVALID_INPUT', says: /^Invalid input: pid must be an integer from 1 to 2147483647 \(got "twelve"\)$/ },
  { name: 'pid a fraction', tool: 'get_process_status', args: () => ({ pid: 1.5 }), code: 'INVALID_INPUT', says: /pid must be an integer from 1 to 2147483647 \(got 1\.5\)/ },
  { name: 'pid 0', tool: 'stop_process', args: () => ({ pid: 0 }), code: 'INVALID_INPUT', says: /pid must be an integer from 1 to 2147483647 \(got 0\)/ },
  { name: 'pid negative', tool: 'stop_process', args: () => ({ pid: -1, force: true }), code: 'INVALID_INPUT', says: /pid must be an integer from 1 to 2147483647 \(got -1\)/ },
  { name: 'pid past 2^31', tool: 'get_process_status', args: () => ({ pid: 2 ** 40 }), code: 'INVALID_INPUT', says: /pid must be an integer from 1 to 2147483647 \(got 1099511627776\)/ },
  { name: 'pid an object', tool: 'add_process_hooks', args: () => ({ pid: { value: 1 }, hooks: [GOOD_HOOK] }), code: 'INVALID_INPUT', says: /pid must be an integer from 1 to 2147483647 \(got an object\)/ },
  { name: 'force a string', tool: 'stop_process', args: () => ({ pid: mine.pid, force: 'yes' }), code: 'INVALID_INPUT', says: /^Invalid input: force must be true or false \(got "yes"\)$/ },
  { name: 'lines a word', tool: 'get_process_output', args: () => ({ pid: mine.pid, lines: 'all' }), code: 'INVALID_INPUT', says: /lines must be an integer from 1 to 500 \(got "all"\)/ },
  { name: 'grep a number', tool: 'get_process_output', args: () => ({ pid: mine.pid, grep: 404 }), code: 'INVALID_INPUT', says: /grep must be a string \(got 404\)/ },
  { name: 'filter a number', tool: 'list_processes', args: () => ({ filter: 1 }), code: 'INVALID_INPUT', says: /filter must be one of all, running, exited, killed, lost, restarting, crash_loop \(got 1\)/ },
  { name: 'run_command timeout_seconds a boolean', tool: 'run_command', args: () => ({ command: TOUCH, timeout_seconds: true }), code: 'INVALID_INPUT', says: /timeout_seconds must be an integer from 1 to 600 \(got true\)/ },
  // unknown enum values
  { name: 'unknown process_type', tool: 'start_process', args: () => ({ command: TOUCH, process_type: 'forever' }), code: 'INVALID_INPUT', says: /^Invalid input: process_type must be one of background, concurrent \(got "forever"\)$/ },
  { name: 'process_type in capitals', tool: 'start_process', args: () => ({ command: TOUCH, process_type: 'Background' }), code: 'INVALID_INPUT', says: /process_type must be one of background, concurrent \(got "Background"\)/ },
  { name: 'unknown category', tool: 'start_process', args: () => ({ command: TOUCH, category: 'misc' }), code: 'INVALID_INPUT', says: /category must be one of test_suite, build, server, analysis, custom \(got "misc"\)/ },
  { name: 'unknown stream', tool: 'get_process_output', args: () => ({ pid: mine.pid, stream: 'stdin' }), code: 'INVALID_INPUT', says: /stream must be one of stdout, stderr, both \(got "stdin"\)/ },
  { name: 'unknown filter', tool: 'list_processes', args: () => ({ filter: 'zombie' }), code: 'INVALID_INPUT', says: /^Invalid input: filter must be one of all, running, exited, killed, lost, restarting, crash_loop \(got "zombie"\)$/ },
  // commands
  { name: 'empty command', tool: 'start_process', args: () => ({ command: '' }), code: 'COMMAND_EMPTY', says: /^The command is empty: command must not be empty$/ },
  { name: 'blank command', tool: 'run_command', args: () => ({ command: ' \t ' }), code: 'COMMAND_EMPTY', says: /command must not be empty/ },
  { name: 'command over 16 KiB of characters', tool: 'start_process', args: () => ({ command: `echo ${'x'.repeat(16_384)}` }), code: 'INVALID_INPUT', says: /command must be a string of at most 16384 characters \(got 16389 characters\)/ },
  { name: 'command over 16 KiB of bytes', tool: 'run_command', args: () => ({ command: `echo ${'é'.repeat(8_190)}` }), code: 'COMMAND_TOO_LONG', says: /^The command is too long: command is 16385 bytes; the limit is 16384$/ },
  { name: 'command with a NUL byte', tool: 'start_process', args: () => ({ command: 'echo a\u0000b' }), code: 'INVALID_INPUT', says: /command must not contain NUL bytes/ },
  { name: 'rm -rf /', tool: 'start_process', args: () => ({ command: 'rm -rf /' }), code: 'COMMAND_BLOCKED', says: /^The command is blocked: command looks like recursive delete of \/, the home directory or a system directory; Chorus refuses it$/ },
  { name: 'rm -rf ~ through run_command', tool: 'run_command', args: () => ({ command: 'cd /tmp && rm -rf ~' }), code: 'COMMAND_BLOCKED', says: /command looks like recursive delete/ },
  { name: 'mkfs', tool: 'run_command', args: () => ({ command: 'mkfs.ext4 /dev/sda1' }), code: 'COMMAND_BLOCKED', says: /command looks like formatting a filesystem/ },
  { name: 'fork bomb', tool: 'start_process', args: () => ({ command: ':(){ :|:& };:' }), code: 'COMMAND_BLOCKED', says: /command looks like a fork bomb/ },
  { name: 'dd onto a disk', tool: 'run_command', args: () => ({ command: 'dd if=/dev/zero of=/dev/sda bs=1M' }), code: 'COMMAND_BLOCKED', says: /command looks like dd onto a device/ },
  // working directories
  { name: 'working_directory outside the workspace', tool: 'start_process', args: () => ({ command: TOUCH, working_directory: '/etc' }), code: 'CWD_OUTSIDE_WORKSPACE', says: /^The working directory is outside the agent's workspace: working_directory "\/etc" resolves to \/etc, outside the workspace .*\/agents\/main\/workspace$/ },
  { name: 'working_directory climbing out', tool: 'run_command', args: () => ({ command: TOUCH, working_directory: '../..' }), code: 'CWD_OUTSIDE_WORKSPACE', says: /working_directory "\.\.\/\.\." resolves to .*, outside the workspace/ },
  { name: 'working_directory through a symlink', tool: 'start_process', args: () => ({ command: TOUCH, working_directory: 'escape' }), code: 'CWD_OUTSIDE_WORKSPACE', says: /working_directory "escape" resolves to .*, outside the workspace/ },
  { name: 'working_directory below a symlink', tool: 'run_command', args: () => ({ command: TOUCH, working_directory: 'escape/.' }), code: 'CWD_OUTSIDE_WORKSPACE', says: /working_directory "escape\/\." resolves to .*, outside the workspace/ },
  { name: 'working_directory missing', tool: 'start_process', args: () => ({ command: TOUCH, working_directory: 'no-such-dir' }), code: 'CWD_MISSING', says: /^The working directory does not exist: working_directory "no-such-dir" does not exist$/ },
  { name: 'working_directory missing, run_command', tool: 'run_command', args: () => ({ command: TOUCH, working_directory: 'build/out' }), code: 'CWD_MISSING', says: /working_directory "build\/out" does not exist/ },
  { name: 'working_directory a file', tool: 'start_process', args: () => ({ command: TOUCH, working_directory: 'a-file' }), code: 'CWD_MISSING', says: /working_directory "a-file" is not a directory/ },
  // timeouts
  { name: 'timeout_seconds 0', tool: 'start_process', args: () => ({ command: TOUCH, timeout_seconds: 0 }), code: 'INVALID_INPUT', says: /timeout_seconds must be an integer from 1 to 604800 \(got 0\)/ },
  { name: 'timeout_seconds negative', tool: 'start_process', args: () => ({ command: TOUCH, timeout_seconds: -30 }), code: 'INVALID_INPUT', says: /timeout_seconds must be an integer from 1 to 604800 \(got -30\)/ },
  { name: 'timeout_seconds huge', tool: 'start_process', args: () => ({ command: TOUCH, timeout_seconds: 1e12 }), code: 'INVALID_INPUT', says: /timeout_seconds must be an integer from 1 to 604800 \(got 1000000000000\)/ },
  { name: 'timeout_seconds not an integer', tool: 'start_process', args: () => ({ command: TOUCH, timeout_seconds: 2.5 }), code: 'INVALID_INPUT', says: /timeout_seconds must be an integer from 1 to 604800 \(got 2\.5\)/ },
  { name: 'run_command timeout_seconds 0', tool: 'run_command', args: () => ({ command: TOUCH, timeout_seconds: 0 }), code: 'INVALID_INPUT', says: /timeout_seconds must be an integer from 1 to 600 \(got 0\)/ },
  { name: 'run_command timeout_seconds past 600', tool: 'run_command', args: () => ({ command: TOUCH, timeout_seconds: 601 }), code: 'INVALID_INPUT', says: /timeout_seconds must be an integer from 1 to 600 \(got 601\)/ },
  // lines and cursors
  { name: 'lines 0', tool: 'get_process_output', args: () => ({ pid: mine.pid, lines: 0 }), code: 'INVALID_INPUT', says: /^Invalid input: lines must be an integer from 1 to 500 \(got 0\)$/ },
  { name: 'lines huge', tool: 'get_process_output', args: () => ({ pid: mine.pid, lines: 100_000 }), code: 'INVALID_INPUT', says: /lines must be an integer from 1 to 500 \(got 100000\)/ },
  { name: 'cursor negative', tool: 'get_process_output', args: () => ({ pid: mine.pid, cursor: -1 }), code: 'INVALID_INPUT', says: /cursor must be an integer from 0 to 9007199254740991 \(got -1\)/ },
  { name: 'cursor not an integer', tool: 'get_process_output', args: () => ({ pid: mine.pid, cursor: 2.5 }), code: 'INVALID_INPUT', says: /cursor must be an integer from 0 to 9007199254740991 \(got 2\.5\)/ },
  { name: 'cursor with both streams', tool: 'get_process_output', args: () => ({ pid: mine.pid, cursor: 0, stream: 'both' }), code: 'INVALID_INPUT', says: /cursor belongs to one stream: pass stream "stdout" or "stderr" with it/ },
  { name: 'cursor past the end', tool: 'get_process_output', args: () => ({ pid: mine.pid, cursor: 10_000_000 }), code: 'INVALID_INPUT', says: /past the end of stdout/ },
  // grep
  { name: 'grep that does not compile', tool: 'get_process_output', args: () => ({ pid: mine.pid, grep: '(unclosed' }), code: 'INVALID_INPUT', says: /^Invalid input: grep must be a valid regular expression, but "\(unclosed" is not: Unterminated group$/ },
  { name: 'grep with a bad range', tool: 'get_process_output', args: () => ({ pid: mine.pid, grep: '[z-a]' }), code: 'INVALID_INPUT', says: /grep must be a valid regular expression, but "\[z-a\]" is not: Range out of order/ },
  { name: 'grep catastrophic: (.*a){20}', tool: 'get_process_output', args: () => ({ pid: mine.pid, grep: '(.*a){20}' }), code: 'INVALID_INPUT', says: /grep must be a regex that can be matched in linear time: .*counted repetitions above \{16\} are not supported \(got "\(\.\*a\)\{20\}"\)/ },
  { name: 'grep with a backreference', tool: 'get_process_output', args: () => ({ pid: mine.pid, grep: '(a+)+\\1$' }), code: 'INVALID_INPUT', says: /grep must be a regex that can be matched in linear time: backreferences/ },
  { name: 'grep empty', tool: 'get_process_output', args: () => ({ pid: mine.pid, grep: '' }), code: 'INVALID_INPUT', says: /grep must be a non-empty string of at most 1000 characters/ },
  { name: 'grep with an unknown flag', tool: 'get_process_output', args: () => ({ pid: mine.pid, grep: '/error/y' }), code: 'INVALID_INPUT', says: /grep must be a regex whose flags are among i, m, s \(flag "y" is not supported\)/ },
  // hooks, one bad field each
  { name: 'hook not an object', tool: 'start_process', args: () => hooksWith('on_exit'), code: 'HOOK_INVALID', says: /^Invalid hook: hooks\[0\] must be an object with trigger and action \(got "on_exit"\)$/ },
  { name: 'hook without trigger', tool: 'start_process', args: () => hooksWith({ action: 'notify_channel' }), code: 'HOOK_INVALID', says: /hooks\[0\]\.trigger is missing: it must be an object with a type of on_exit, on_output_match, on_timeout, on_ready, on_ready_timeout, on_idle, on_resource/ },
  { name: 'hook trigger a string', tool: 'start_process', args: () => hooksWith({ trigger: 'on_exit', action: 'notify_channel' }), code: 'HOOK_INVALID', says: /hooks\[0\]\.trigger must be an object with a type of .* \(got "on_exit"\)/ },
  { name: 'hook with an unknown trigger type', tool: 'start_process', args: () => withTrigger({ type: 'on_crash' }), code: 'HOOK_INVALID', says: /hooks\[0\]\.trigger\.type must be one of on_exit, on_output_match, on_timeout, on_ready, on_ready_timeout, on_idle, on_resource \(got "on_crash"\)/ },
  { name: 'hook without action', tool: 'start_process', args: () => hooksWith({ trigger: { type: 'on_exit' } }), code: 'HOOK_INVALID', says: /hooks\[0\]\.action is missing: it must be one of stop_process, stop_branch, inject_context, spawn_branch, notify_channel, restart_process/ },
  { name: 'hook with an unknown action', tool: 'start_process', args: () => hooksWith({ trigger: { type: 'on_exit' }, action: 'explode' }), code: 'HOOK_INVALID', says: /hooks\[0\]\.action must be one of .* \(got "explode"\)/ },
  { name: 'hook with an unknown exit_filter', tool: 'start_process', args: () => withTrigger({ type: 'on_exit', exit_filter: 'sometimes' }), code: 'HOOK_INVALID', says: /hooks\[0\]\.trigger\.exit_filter must be one of any, success, failure \(got "sometimes"\)/ },
  { name: 'hook on_output_match without pattern', tool: 'start_process', args: () => withTrigger({ type: 'on_output_match' }), code: 'HOOK_INVALID', says: /hooks\[0\]\.trigger\.pattern is missing: it must be a regex string when the type is on_output_match/ },
  { name: 'hook pattern a number', tool: 'start_process', args: () => withTrigger({ type: 'on_output_match', pattern: 500 }), code: 'HOOK_INVALID', says: /hooks\[0\]\.trigger\.pattern must be a string holding a regex \(got 500\)/ },
  { name: 'hook pattern that does not compile', tool: 'start_process', args: () => withTrigger({ type: 'on_output_match', pattern: 'FAIL(' }), code: 'HOOK_INVALID', says: /hooks\[0\]\.trigger\.pattern must be a valid regular expression, but "FAIL\(" is not/ },
  { name: 'hook pattern with lookahead', tool: 'start_process', args: () => withTrigger({ type: 'on_output_match', pattern: '(?=a+)+b' }), code: 'HOOK_INVALID', says: /hooks\[0\]\.trigger\.pattern must be a regex that can be matched in linear time/ },
  { name: 'hook pattern too big', tool: 'start_process', args: () => withTrigger({ type: 'on_output_match', pattern: '(a{16}){16}' }), code: 'HOOK_INVALID', says: /hooks\[0\]\.trigger\.pattern must be a regex that can be matched in linear time/ },
  { name: 'hook with an unknown stream', tool: 'start_process', args: () => withTrigger({ type: 'on_output_match', pattern: 'x', stream: 'stdin' }), code: 'HOOK_INVALID', says: /hooks\[0\]\.trigger\.stream must be one of stdout, stderr, both \(got "stdin"\)/ },
  { name: 'hook on_timeout without timeout_seconds', tool: 'start_process', args: () => withTrigger({ type: 'on_timeout' }), code: 'HOOK_INVALID', says: /hooks\[0\]\.trigger\.timeout_seconds is missing: it must be an integer from 1 to 604800/ },
  { name: 'hook timeout_seconds 0', tool: 'start_process', args: () => withTrigger({ type: 'on_timeout', timeout_seconds: 0 }), code: 'HOOK_INVALID', says: /hooks\[0\]\.trigger\.timeout_seconds must be an integer from 1 to 604800 \(got 0\)/ },
  { name: 'hook timeout_seconds not an integer', tool: 'start_process', args: () => withTrigger({ type: 'on_timeout', timeout_seconds: 1.5 }), code: 'HOOK_INVALID', says: /hooks\[0\]\.trigger\.timeout_seconds must be an integer .* \(got 1\.5\)/ },
  { name: 'hook trigger field of another type', tool: 'start_process', args: () => withTrigger({ type: 'on_exit', pattern: 'x' }), code: 'HOOK_INVALID', says: /hooks\[0\]\.trigger\.pattern only applies when hooks\[0\]\.trigger\.type is on_output_match \(this trigger is on_exit\)/ },
  { name: 'hook on_idle without idle_seconds', tool: 'start_process', args: () => withTrigger({ type: 'on_idle' }), code: 'HOOK_INVALID', says: /^Invalid hook: hooks\[0\]\.trigger\.idle_seconds is missing: it must be an integer from 1 to 604800 when the type is on_idle$/ },
  { name: 'hook idle_seconds 0', tool: 'start_process', args: () => withTrigger({ type: 'on_idle', idle_seconds: 0 }), code: 'HOOK_INVALID', says: /hooks\[0\]\.trigger\.idle_seconds must be an integer from 1 to 604800 \(got 0\)/ },
  { name: 'hook idle_seconds on another trigger', tool: 'start_process', args: () => withTrigger({ type: 'on_exit', idle_seconds: 5 }), code: 'HOOK_INVALID', says: /hooks\[0\]\.trigger\.idle_seconds only applies when hooks\[0\]\.trigger\.type is on_idle \(this trigger is on_exit\)/ },
  { name: 'hook on_resource without bounds', tool: 'start_process', args: () => withTrigger({ type: 'on_resource' }), code: 'HOOK_INVALID', says: /^Invalid hook: hooks\[0\]\.trigger\.memory_mb is missing: it must be a number of MiB \(or cpu_percent, or both\) when the type is on_resource$/ },
  { name: 'hook memory_mb negative', tool: 'start_process', args: () => withTrigger({ type: 'on_resource', memory_mb: -5 }), code: 'HOOK_INVALID', says: /hooks\[0\]\.trigger\.memory_mb must be a number from 1 to 1048576 \(got -5\)/ },
  { name: 'hook cpu_percent a string', tool: 'start_process', args: () => withTrigger({ type: 'on_resource', cpu_percent: 'high' }), code: 'HOOK_INVALID', says: /hooks\[0\]\.trigger\.cpu_percent must be a number from 1 to 100000 \(got "high"\)/ },
  { name: 'hook for_seconds without cpu_percent', tool: 'start_process', args: () => withTrigger({ type: 'on_resource', memory_mb: 100, for_seconds: 10 }), code: 'HOOK_INVALID', says: /hooks\[0\]\.trigger\.for_seconds must be 0 or left out without cpu_percent/ },
  { name: 'hook on_ready with a field', tool: 'start_process', args: () => withTrigger({ type: 'on_ready', timeout_seconds: 5 }), code: 'HOOK_INVALID', says: /hooks\[0\]\.trigger\.timeout_seconds only applies when hooks\[0\]\.trigger\.type is on_timeout \(this trigger is on_ready\)/ },
  // ready and restart
  { name: 'ready not an object', tool: 'start_process', args: () => ({ command: TOUCH, ready: 3000 }), code: 'INVALID_INPUT', says: /^Invalid input: ready must be an object with port, http_path, pattern or timeout_seconds \(got 3000\)$/ },
  { name: 'ready empty', tool: 'start_process', args: () => ({ command: TOUCH, ready: {} }), code: 'INVALID_INPUT', says: /^Invalid input: ready needs port \(with http_path if you like\) or pattern/ },
  { name: 'ready port out of range', tool: 'start_process', args: () => ({ command: TOUCH, ready: { port: 70000 } }), code: 'INVALID_INPUT', says: /^Invalid input: ready\.port must be an integer from 1 to 65535 \(got 70000\)$/ },
  { name: 'ready http_path without port', tool: 'start_process', args: () => ({ command: TOUCH, ready: { http_path: '/health', pattern: 'x' } }), code: 'INVALID_INPUT', says: /ready\.http_path needs ready\.port/ },
  { name: 'ready http_path not a path', tool: 'start_process', args: () => ({ command: TOUCH, ready: { port: 3000, http_path: 'health' } }), code: 'INVALID_INPUT', says: /ready\.http_path must be a URL path starting with \/ .* \(got "health"\)/ },
  { name: 'ready pattern catastrophic', tool: 'start_process', args: () => ({ command: TOUCH, ready: { pattern: '(a+)+\\1' } }), code: 'INVALID_INPUT', says: /ready\.pattern must be a regex that can be matched in linear time/ },
  { name: 'ready timeout_seconds 0', tool: 'start_process', args: () => ({ command: TOUCH, ready: { port: 3000, timeout_seconds: 0 } }), code: 'INVALID_INPUT', says: /ready\.timeout_seconds must be an integer from 1 to 3600 \(got 0\)/ },
  { name: 'ready with an unknown key', tool: 'start_process', args: () => ({ command: TOUCH, ready: { port: 3000, host: 'x' } }), code: 'INVALID_INPUT', says: /ready\.host is not a known key \(allowed: port, http_path, pattern, timeout_seconds\)/ },
  { name: 'restart without on', tool: 'start_process', args: () => ({ command: TOUCH, restart: { max_restarts: 3 } }), code: 'INVALID_INPUT', says: /^Invalid input: restart\.on is missing: it must be one of failure, always, never$/ },
  { name: 'restart on unknown', tool: 'start_process', args: () => ({ command: TOUCH, restart: { on: 'crash' } }), code: 'INVALID_INPUT', says: /restart\.on must be one of failure, always, never \(got "crash"\)/ },
  { name: 'restart max_restarts 0', tool: 'start_process', args: () => ({ command: TOUCH, restart: { on: 'failure', max_restarts: 0 } }), code: 'INVALID_INPUT', says: /restart\.max_restarts must be an integer from 1 to 1000 \(got 0\)/ },
  { name: 'restart backoff below max', tool: 'start_process', args: () => ({ command: TOUCH, restart: { on: 'failure', backoff_seconds: 10, max_backoff_seconds: 5 } }), code: 'INVALID_INPUT', says: /restart\.max_backoff_seconds must be at least backoff_seconds \(10\) \(got 5\)/ },
  { name: 'restart min_uptime_seconds negative', tool: 'start_process', args: () => ({ command: TOUCH, restart: { on: 'always', min_uptime_seconds: -1 } }), code: 'INVALID_INPUT', says: /restart\.min_uptime_seconds must be a number from 0\.1 to 86400 \(got -1\)/ },
  { name: 'restart a string', tool: 'start_process', args: () => ({ command: TOUCH, restart: 'failure' }), code: 'INVALID_INPUT', says: /restart must be an object with on \(failure, always or never\) and optional limits \(got "failure"\)/ },
  { name: 'hook with an unknown key', tool: 'start_process', args: () => hooksWith({ ...GOOD_HOOK, when: 'now' }), code: 'HOOK_INVALID', says: /hooks\[0\]\.when is not a known key \(allowed: trigger, action, context_message, output_delay_seconds, max_fires\)/ },
  { name: 'hook trigger with an unknown key', tool: 'start_process', args: () => withTrigger({ type: 'on_exit', code: 1 }), code: 'HOOK_INVALID', says: /hooks\[0\]\.trigger\.code is not a known key/ },
  { name: 'hook context_message too long', tool: 'start_process', args: () => hooksWith({ ...GOOD_HOOK, context_message: 'x'.repeat(4001) }), code: 'HOOK_INVALID', says: /hooks\[0\]\.context_message must be a string of at most 4000 characters \(got 4001 characters\)/ },
  { name: 'hook context_message a number', tool: 'start_process', args: () => hooksWith({ ...GOOD_HOOK, context_message: 7 }), code: 'HOOK_INVALID', says: /hooks\[0\]\.context_message must be a string/ },
  { name: 'hook output_delay_seconds past 60', tool: 'start_process', args: () => withTrigger({ type: 'on_output_match', pattern: 'x' }, { output_delay_seconds: 61 }), code: 'HOOK_INVALID', says: /hooks\[0\]\.output_delay_seconds must be a number from 0 to 60 \(got 61\)/ },
  { name: 'hook output_delay_seconds on on_exit', tool: 'start_process', args: () => hooksWith({ ...GOOD_HOOK, output_delay_seconds: 5 }), code: 'HOOK_INVALID', says: /hooks\[0\]\.output_delay_seconds must be 0 or left out when trigger\.type is on_exit/ },
  { name: 'hook max_fires 0', tool: 'start_process', args: () => hooksWith({ ...GOOD_HOOK, max_fires: 0 }), code: 'HOOK_INVALID', says: /hooks\[0\]\.max_fires must be an integer from 1 to 1000 \(got 0\)/ },
  { name: 'hook max_fires past 1000', tool: 'start_process', args: () => hooksWith({ ...GOOD_HOOK, max_fires: 1001 }), code: 'HOOK_INVALID', says: /hooks\[0\]\.max_fires must be an integer from 1 to 1000 \(got 1001\)/ },
  { name: '21 hooks', tool: 'start_process', args: () => ({ command: TOUCH, hooks: Array.from({ length: 21 }, () => GOOD_HOOK) }), code: 'HOOK_INVALID', says: /hooks must be an array of at most 20 hooks \(got 21 hooks\)/ },
  { name: 'a good hook then a bad one: all or nothing', tool: 'start_process', args: () => ({ command: TOUCH, hooks: [GOOD_HOOK, { ...GOOD_HOOK, max_fires: -1 }] }), code: 'HOOK_INVALID', says: /hooks\[1\]\.max_fires must be an integer/ },
  { name: 'add_process_hooks: a good hook then a bad one', tool: 'add_process_hooks', args: () => ({ pid: mine.pid, hooks: [GOOD_HOOK, { trigger: { type: 'on_timeout', timeout_seconds: -1 }, action: 'stop_process' }] }), code: 'HOOK_INVALID', says: /hooks\[1\]\.trigger\.timeout_seconds must be an integer from 1 to 604800 \(got -1\)/ },
  { name: 'add_process_hooks: hooks an object', tool: 'add_process_hooks', args: () => ({ pid: mine.pid, hooks: GOOD_HOOK }), code: 'HOOK_INVALID', says: /hooks must be an array of at most 20 hook objects \(got an object\)/ },
  // pids of another agent, unknown pids, ended processes
  ...PID_TOOLS.map((tool): BadCall => ({ name: `${tool}: another agent's pid`, tool, args: () => pidArgs(tool, theirs.pid!), code: 'PROCESS_NOT_FOUND', says: notFound(() => theirs.pid!) })),
  { name: 'stop_process: another agent\'s pid, forced', tool: 'stop_process', args: () => ({ pid: theirs.pid, force: true }), code: 'PROCESS_NOT_FOUND', says: notFound(() => theirs.pid!) },
  { name: 'get_process_output: another agent\'s pid as a string', tool: 'get_process_output', args: () => ({ pid: String(theirs.pid), stream: 'stdout' }), code: 'PROCESS_NOT_FOUND', says: notFound(() => theirs.pid!) },
  ...PID_TOOLS.map((tool): BadCall => ({ name: `${tool}: unknown pid`, tool, args: () => pidArgs(tool, UNKNOWN_PID), code: 'PROCESS_NOT_FOUND', says: notFound(() => UNKNOWN_PID) })),
  { name: 'stop_process: pid 1', tool: 'stop_process', args: () => ({ pid: 1 }), code: 'PROCESS_NOT_FOUND', says: notFound(() => 1) },
  { name: 'stop_process: a process that already ended', tool: 'stop_process', args: () => ({ pid: ended.pid }), code: 'PROCESS_NOT_RUNNING', says: /^The process is not running: pid \d+ already ended \(exited with code 0\)$/ },
  { name: 'add_process_hooks: a process that already ended', tool: 'add_process_hooks', args: () => ({ pid: ended.pid, hooks: [GOOD_HOOK] }), code: 'PROCESS_NOT_RUNNING', says: /hooks can only be added to a running process/ },
  // talking to processes
  { name: 'interactive a string', tool: 'start_process', args: () => ({ command: TOUCH, interactive: 'yes' }), code: 'INVALID_INPUT', says: /^Invalid input: interactive must be true or false \(got "yes"\)$/ },
  { name: 'tty a number', tool: 'start_process', args: () => ({ command: TOUCH, tty: 1 }), code: 'INVALID_INPUT', says: /tty must be true or false \(got 1\)/ },
  { name: 'background_after_seconds 0', tool: 'run_command', args: () => ({ command: TOUCH, background_after_seconds: 0 }), code: 'INVALID_INPUT', says: /background_after_seconds must be an integer from 1 to 600 \(got 0\)/ },
  { name: 'send_input without text', tool: 'send_input', args: () => ({ pid: mine.pid }), code: 'INVALID_INPUT', says: /^Invalid input: text is missing: it is required$/ },
  { name: 'send_input text a number', tool: 'send_input', args: () => ({ pid: mine.pid, text: 42 }), code: 'INVALID_INPUT', says: /text must be a string \(got 42\)/ },
  { name: 'send_input text over 64 KiB', tool: 'send_input', args: () => ({ pid: mine.pid, text: 'x'.repeat(65_537) }), code: 'INVALID_INPUT', says: /text must be a string of at most 65536 characters \(got 65537 characters\)/ },
  { name: 'send_input eof a string', tool: 'send_input', args: () => ({ pid: mine.pid, text: '', eof: 'yes' }), code: 'INVALID_INPUT', says: /eof must be true or false \(got "yes"\)/ },
  { name: 'send_input to a process that is not interactive', tool: 'send_input', args: () => ({ pid: mine.pid, text: 'y\n' }), code: 'NOT_INTERACTIVE', says: /^The process was not started interactive: pid \d+ reads no input \(its stdin is \/dev\/null\); start it with interactive \(or tty\) to send it input$/ },
  { name: 'send_input to another agent\'s pid', tool: 'send_input', args: () => ({ pid: theirs.pid, text: 'y\n' }), code: 'PROCESS_NOT_FOUND', says: notFound(() => theirs.pid!) },
  { name: 'send_signal without signal', tool: 'send_signal', args: () => ({ pid: mine.pid }), code: 'INVALID_INPUT', says: /^Invalid input: signal must be one of INT, HUP, QUIT, TERM, KILL, USR1, USR2, STOP, CONT, WINCH \(got undefined\); to stop a process use stop\/kill$/ },
  { name: 'send_signal SEGV', tool: 'send_signal', args: () => ({ pid: mine.pid, signal: 'SEGV' }), code: 'INVALID_INPUT', says: /signal must be one of INT, .* \(got "SEGV"\)/ },
  { name: 'send_signal a number', tool: 'send_signal', args: () => ({ pid: mine.pid, signal: 9 }), code: 'INVALID_INPUT', says: /signal must be one of INT, .* \(got 9\)/ },
  { name: 'send_signal to another agent\'s pid', tool: 'send_signal', args: () => ({ pid: theirs.pid, signal: 'KILL' }), code: 'PROCESS_NOT_FOUND', says: notFound(() => theirs.pid!) },
  { name: 'send_signal to a process that already ended', tool: 'send_signal', args: () => ({ pid: ended.pid, signal: 'HUP' }), code: 'PROCESS_NOT_RUNNING', says: /pid \d+ already ended \(exited with code 0\); nothing was signalled/ },
  { name: 'wait_for_process until ready without a probe', tool: 'wait_for_process', args: () => ({ pid: mine.pid, until: 'ready' }), code: 'INVALID_INPUT', says: /^Invalid input: until "ready" needs a process started with ready \(a port, http_path or pattern\); wait until "match" or "output" instead$/ },
  { name: 'wait_for_process without until', tool: 'wait_for_process', args: () => ({ pid: mine.pid }), code: 'INVALID_INPUT', says: /^Invalid input: until is missing: it must be one of exit, output, match, ready$/ },
  { name: 'wait_for_process until an unknown condition', tool: 'wait_for_process', args: () => ({ pid: mine.pid, until: 'listening' }), code: 'INVALID_INPUT', says: /until must be one of exit, output, match, ready \(got "listening"\)/ },
  { name: 'wait_for_process match without pattern', tool: 'wait_for_process', args: () => ({ pid: mine.pid, until: 'match' }), code: 'INVALID_INPUT', says: /pattern is missing: until "match" needs a regex/ },
  { name: 'wait_for_process catastrophic pattern', tool: 'wait_for_process', args: () => ({ pid: mine.pid, until: 'match', pattern: '(a+)+\\1$' }), code: 'INVALID_INPUT', says: /pattern must be a regex that can be matched in linear time/ },
  { name: 'wait_for_process timeout_seconds 0', tool: 'wait_for_process', args: () => ({ pid: mine.pid, until: 'exit', timeout_seconds: 0 }), code: 'INVALID_INPUT', says: /timeout_seconds must be an integer from 1 to 600 \(got 0\)/ },
  { name: 'wait_for_process timeout_seconds 601', tool: 'wait_for_process', args: () => ({ pid: mine.pid, until: 'exit', timeout_seconds: 601 }), code: 'INVALID_INPUT', says: /timeout_seconds must be an integer from 1 to 600 \(got 601\)/ },
  { name: 'wait_for_process cursor a number', tool: 'wait_for_process', args: () => ({ pid: mine.pid, until: 'output', cursor: 12 }), code: 'INVALID_INPUT', says: /cursor must be the next_cursor of an earlier wait, "<stdout bytes>:<stderr bytes>" \(got 12\)/ },
  { name: 'wait_for_process another agent\'s pid', tool: 'wait_for_process', args: () => ({ pid: theirs.pid, until: 'exit', timeout_seconds: 1 }), code: 'PROCESS_NOT_FOUND', says: notFound(() => theirs.pid!) },
  // tools that do not exist
  { name: 'unknown tool', tool: 'delete_everything', args: () => ({}), code: 'UNKNOWN_TOOL', says: /^there is no tool named "delete_everything"$/ },
  { name: 'tool name in capitals', tool: 'START_PROCESS', args: () => ({ command: TOUCH }), code: 'UNKNOWN_TOOL', says: /there is no tool named "START_PROCESS"/ },
  { name: 'empty tool name', tool: '', args: () => ({ command: TOUCH }), code: 'UNKNOWN_TOOL', says: /there is no tool named ""/ },
];

describe('malformed tool calls get an error that says what to fix, and change nothing', () => {
  it.for(CASES)('$tool: $name', async (c) => {
    const result = await call(c.tool, c.args());

    expect(result.isError).toBe(true);
    expect(result.json).toMatchObject({ ok: false, tool: c.tool, code: c.code });
    expect(result.json.error).toMatch(typeof c.says === 'function' ? c.says() : c.says);
    expect(result.json.error).not.toContain('\n');
    expect(result.json.hint, 'a hint that says what to do next').toMatch(/\w{3}/);
    if (c.code === 'UNKNOWN_TOOL') expect(result.json.hint).toContain('start_process, add_process_hooks, get_process_status');

    expect(count('processes'), 'process rows').toBe(baseline.processes);
    expect(count('hooks'), 'hook rows').toBe(baseline.hooks);
    expect(listRunDirs(h.home).sort(), 'run directories').toEqual(baseline.runDirs);
    expect(snapshotWorkspace(), 'the workspace').toEqual(baseline.workspace);
    for (const record of [mine, theirs]) {
      const now = h.manager.find({ id: record.id })!;
      expect(isAlive(record.pid!), `${record.agentName}'s live process`).toBe(true);
      expect({ status: now.status, stoppedBy: now.stoppedBy }).toEqual({ status: 'running', stoppedBy: null });
    }
  });
});

describe('after every malformed call', () => {
  it('the rows and hooks are as they were', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(35);
    expect(new Set(CASES.map((c) => c.tool)).size, 'every tool, and unknown ones').toBeGreaterThanOrEqual(8);
    const rows = h.manager.list({ status: 'all' }).map((r) => [r.id, r.agentName, r.status]).sort();
    expect(rows).toEqual([[mine.id, 'main', 'running'], [theirs.id, 'other', 'running'], [ended.id, 'main', 'exited']].sort());
    expect(h.hooks.hooksFor(mine.id).map((hook) => [hook.description, hook.row.fireCount])).toEqual([['on exit (any) → notify_channel, max 1', 0]]);
  });
});

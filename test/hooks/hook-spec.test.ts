import { describe, expect, it } from 'vitest';
import { isAppError } from '../../src/errors.js';
import { describeHook, hookSpecFromJson, hookSpecToJson, parseHookSpecs, type HookSpec } from '../../src/hooks/hook-spec.js';

const onExit = { trigger: { type: 'on_exit' }, action: 'notify_channel' };
const onMatch = { trigger: { type: 'on_output_match', pattern: 'FAIL' }, action: 'spawn_branch' };
const onTimeout = { trigger: { type: 'on_timeout', timeout_seconds: 300 }, action: 'stop_process' };

function refusal(input: unknown): string {
  try {
    parseHookSpecs(input);
  } catch (error) {
    expect(isAppError(error, 'HOOK_INVALID')).toBe(true);
    return (error as Error).message;
  }
  throw new Error('the hooks were accepted');
}

/** The message for one bad hook placed second, after a good one, so the index in the path is checked too. */
function refusalOf(hook: unknown): string {
  return refusal([onExit, hook]).replace(/^Invalid hook: /, '');
}

describe('parseHookSpecs', () => {
  it('fills defaults and converts to camelCase', () => {
    expect(parseHookSpecs([onExit, onMatch, onTimeout])).toEqual<HookSpec[]>([
      { trigger: { type: 'on_exit', exitFilter: 'any' }, action: 'notify_channel', contextMessage: null, outputDelaySeconds: 0, maxFires: 1 },
      { trigger: { type: 'on_output_match', pattern: 'FAIL', stream: 'both' }, action: 'spawn_branch', contextMessage: null, outputDelaySeconds: 0, maxFires: 1 },
      { trigger: { type: 'on_timeout', timeoutSeconds: 300 }, action: 'stop_process', contextMessage: null, outputDelaySeconds: 0, maxFires: 1 },
    ]);
  });

  it('reads every field when given', () => {
    const [spec] = parseHookSpecs([
      {
        trigger: { type: 'on_output_match', pattern: '/error/i', stream: 'stderr' },
        action: 'inject_context',
        context_message: 'Look at the stack trace',
        output_delay_seconds: 2.5,
        max_fires: 1000,
      },
    ]);
    expect(spec).toEqual({
      trigger: { type: 'on_output_match', pattern: '/error/i', stream: 'stderr' },
      action: 'inject_context',
      contextMessage: 'Look at the stack trace',
      outputDelaySeconds: 2.5,
      maxFires: 1000,
    });
  });

  it('treats null as absent for optional fields, and a blank context message as none', () => {
    const [spec] = parseHookSpecs([{ trigger: { type: 'on_exit', exit_filter: null, pattern: null }, action: 'stop_branch', context_message: '  ', max_fires: null }]);
    expect(spec).toEqual({ trigger: { type: 'on_exit', exitFilter: 'any' }, action: 'stop_branch', contextMessage: null, outputDelaySeconds: 0, maxFires: 1 });
  });

  it('accepts the edges of every range', () => {
    expect(() => parseHookSpecs([
      { trigger: { type: 'on_timeout', timeout_seconds: 1 }, action: 'stop_process', max_fires: 1 },
      { trigger: { type: 'on_timeout', timeout_seconds: 604_800 }, action: 'stop_process', max_fires: 1000 },
      { ...onMatch, output_delay_seconds: 60, context_message: 'x'.repeat(4000) },
      { ...onExit, output_delay_seconds: 0 },
    ])).not.toThrow();
    expect(parseHookSpecs([])).toEqual([]);
    expect(parseHookSpecs(Array.from({ length: 20 }, () => onExit))).toHaveLength(20);
  });

  it('refuses what is not an array of at most 20 hooks', () => {
    expect(refusal(onExit)).toBe('Invalid hook: hooks must be an array of at most 20 hook objects (got an object)');
    expect(refusal('[]')).toBe('Invalid hook: hooks must be an array of at most 20 hook objects (got "[]")');
    expect(refusal(Array.from({ length: 21 }, () => onExit))).toBe('Invalid hook: hooks must be an array of at most 20 hooks (got 21 hooks)');
    expect(refusal([onExit, 'on_exit'])).toBe('Invalid hook: hooks[1] must be an object with trigger and action (got "on_exit")');
    expect(() => parseHookSpecs({}, 'add_process_hooks.hooks')).toThrow('add_process_hooks.hooks must be an array');
  });

  it('refuses unknown keys, naming the key and the allowed ones', () => {
    expect(refusalOf({ ...onExit, actoin: 'stop_process' })).toBe(
      'hooks[1].actoin is not a known key (allowed: trigger, action, context_message, output_delay_seconds, max_fires)',
    );
    expect(refusalOf({ trigger: { type: 'on_exit', filter: 'failure' }, action: 'stop_process' })).toBe(
      'hooks[1].trigger.filter is not a known key (allowed: type, exit_filter, pattern, stream, timeout_seconds, idle_seconds, memory_mb, cpu_percent, for_seconds)',
    );
  });

  it('refuses trigger keys that belong to another trigger type', () => {
    expect(refusalOf({ trigger: { type: 'on_exit', pattern: 'x' }, action: 'stop_process' })).toBe(
      'hooks[1].trigger.pattern only applies when hooks[1].trigger.type is on_output_match (this trigger is on_exit)',
    );
    expect(refusalOf({ trigger: { type: 'on_output_match', pattern: 'x', timeout_seconds: 5 }, action: 'stop_process' })).toBe(
      'hooks[1].trigger.timeout_seconds only applies when hooks[1].trigger.type is on_timeout (this trigger is on_output_match)',
    );
    expect(refusalOf({ trigger: { type: 'on_timeout', timeout_seconds: 5, exit_filter: 'any' }, action: 'stop_process' })).toBe(
      'hooks[1].trigger.exit_filter only applies when hooks[1].trigger.type is on_exit (this trigger is on_timeout)',
    );
  });

  it('refuses a missing or unknown trigger', () => {
    expect(refusalOf({ action: 'stop_process' })).toBe('hooks[1].trigger is missing: it must be an object with a type of on_exit, on_output_match, on_timeout, on_ready, on_ready_timeout, on_idle, on_resource');
    expect(refusalOf({ trigger: 'on_exit', action: 'stop_process' })).toBe(
      'hooks[1].trigger must be an object with a type of on_exit, on_output_match, on_timeout, on_ready, on_ready_timeout, on_idle, on_resource (got "on_exit")',
    );
    expect(refusalOf({ trigger: {}, action: 'stop_process' })).toBe('hooks[1].trigger.type is missing: it must be one of on_exit, on_output_match, on_timeout, on_ready, on_ready_timeout, on_idle, on_resource');
    expect(refusalOf({ trigger: { type: 'on_crash' }, action: 'stop_process' })).toBe(
      'hooks[1].trigger.type must be one of on_exit, on_output_match, on_timeout, on_ready, on_ready_timeout, on_idle, on_resource (got "on_crash")',
    );
    expect(refusalOf({ trigger: { type: 'on_exit', exit_filter: 'error' }, action: 'stop_process' })).toBe(
      'hooks[1].trigger.exit_filter must be one of any, success, failure (got "error")',
    );
  });

  it('refuses a missing or unknown action', () => {
    expect(refusalOf({ trigger: { type: 'on_exit' } })).toBe(
      'hooks[1].action is missing: it must be one of stop_process, stop_branch, inject_context, spawn_branch, notify_channel, restart_process',
    );
    expect(refusalOf({ ...onExit, action: 'kill' })).toBe(
      'hooks[1].action must be one of stop_process, stop_branch, inject_context, spawn_branch, notify_channel, restart_process (got "kill")',
    );
    expect(refusalOf({ ...onExit, action: 3 })).toBe(
      'hooks[1].action must be one of stop_process, stop_branch, inject_context, spawn_branch, notify_channel, restart_process (got 3)',
    );
  });

  it('refuses bad patterns and streams', () => {
    const withPattern = (pattern: unknown, stream?: unknown): unknown => ({ trigger: { type: 'on_output_match', pattern, stream }, action: 'stop_process' });
    expect(refusalOf({ trigger: { type: 'on_output_match' }, action: 'stop_process' })).toBe(
      'hooks[1].trigger.pattern is missing: it must be a regex string when the type is on_output_match',
    );
    expect(refusalOf(withPattern(5))).toBe('hooks[1].trigger.pattern must be a string holding a regex (got 5)');
    expect(refusalOf(withPattern(''))).toBe('hooks[1].trigger.pattern must be a non-empty string of at most 1000 characters (got "")');
    expect(refusalOf(withPattern('x'.repeat(1001)))).toMatch(/^hooks\[1\]\.trigger\.pattern must be a non-empty string of at most 1000 characters \(got "x+\.\.\."\)$/);
    expect(refusalOf(withPattern('[unclosed'))).toBe(
      'hooks[1].trigger.pattern must be a valid regular expression, but "[unclosed" is not: Unterminated character class',
    );
    const linear = 'a regex that can be matched in linear time: backreferences (\\1, \\k<name>), lookaround ((?=, (?!, (?<=, (?<!) and counted repetitions above {16} are not supported';
    expect(refusalOf(withPattern('(?<=ERROR )\\w+'))).toBe(`hooks[1].trigger.pattern must be ${linear} (got "(?<=ERROR )\\\\w+")`);
    expect(refusalOf(withPattern('(\\w+) \\1'))).toBe(`hooks[1].trigger.pattern must be ${linear} (got "(\\\\w+) \\\\1")`);
    expect(refusalOf(withPattern('FAIL', 'stdio'))).toBe('hooks[1].trigger.stream must be one of stdout, stderr, both (got "stdio")');
  });

  it('refuses timeouts that are not an integer from 1 to a week', () => {
    for (const [value, shown] of [[0, '0'], [-5, '-5'], [1e9, '1000000000'], [1.5, '1.5'], ['60', '"60"']] as const) {
      expect(refusalOf({ trigger: { type: 'on_timeout', timeout_seconds: value }, action: 'stop_process' })).toBe(
        `hooks[1].trigger.timeout_seconds must be an integer from 1 to 604800 (got ${shown})`,
      );
    }
    expect(refusalOf({ trigger: { type: 'on_timeout' }, action: 'stop_process' })).toBe(
      'hooks[1].trigger.timeout_seconds is missing: it must be an integer from 1 to 604800 when the type is on_timeout',
    );
  });

  it('refuses output delays out of range or on triggers that do not gather lines', () => {
    for (const [value, shown] of [[61, '61'], [-1, '-1'], ['5', '"5"']] as const) {
      expect(refusalOf({ ...onMatch, output_delay_seconds: value })).toBe(`hooks[1].output_delay_seconds must be a number from 0 to 60 (got ${shown})`);
    }
    expect(refusalOf({ ...onExit, output_delay_seconds: 5 })).toBe(
      'hooks[1].output_delay_seconds must be 0 or left out when trigger.type is on_exit, since only on_output_match gathers lines (got 5)',
    );
    expect(refusalOf({ ...onTimeout, output_delay_seconds: 0.5 })).toContain('when trigger.type is on_timeout');
  });

  it('refuses max_fires that is not an integer from 1 to 1000', () => {
    for (const [value, shown] of [[0, '0'], [-1, '-1'], [2.5, '2.5'], [1001, '1001'], [true, 'true']] as const) {
      expect(refusalOf({ ...onExit, max_fires: value })).toBe(`hooks[1].max_fires must be an integer from 1 to 1000 (got ${shown})`);
    }
  });

  it('refuses context messages that are not strings of at most 4,000 characters', () => {
    expect(refusalOf({ ...onExit, context_message: 'x'.repeat(4001) })).toBe('hooks[1].context_message must be a string of at most 4000 characters (got 4001 characters)');
    expect(refusalOf({ ...onExit, context_message: ['look'] })).toBe('hooks[1].context_message must be a string of at most 4000 characters (got an array)');
  });

  it('stops at the first bad field and names it in details', () => {
    try {
      parseHookSpecs([{ trigger: { type: 'on_timeout', timeout_seconds: 0 }, action: 'explode' }]);
      expect.unreachable();
    } catch (error) {
      expect(isAppError(error, 'HOOK_INVALID') && error.details).toEqual({ field: 'hooks[0].trigger.timeout_seconds' });
    }
  });
});

describe('hookSpecToJson / hookSpecFromJson', () => {
  const specs = parseHookSpecs([
    onExit,
    { trigger: { type: 'on_exit', exit_filter: 'failure' }, action: 'spawn_branch', context_message: 'Find out why it crashed', max_fires: 3 },
    { trigger: { type: 'on_output_match', pattern: '(?i)error:\\s+(\\w+)', stream: 'stderr' }, action: 'inject_context', output_delay_seconds: 5 },
    onTimeout,
  ]);

  it('stores the tool-call shape with defaults filled', () => {
    expect(specs.map(hookSpecToJson)).toEqual([
      { trigger: { type: 'on_exit', exit_filter: 'any' }, action: 'notify_channel', context_message: null, output_delay_seconds: 0, max_fires: 1 },
      { trigger: { type: 'on_exit', exit_filter: 'failure' }, action: 'spawn_branch', context_message: 'Find out why it crashed', output_delay_seconds: 0, max_fires: 3 },
      {
        trigger: { type: 'on_output_match', pattern: '(?i)error:\\s+(\\w+)', stream: 'stderr' },
        action: 'inject_context',
        context_message: null,
        output_delay_seconds: 5,
        max_fires: 1,
      },
      { trigger: { type: 'on_timeout', timeout_seconds: 300 }, action: 'stop_process', context_message: null, output_delay_seconds: 0, max_fires: 1 },
    ]);
  });

  it('round-trips through JSON text', () => {
    for (const spec of specs) expect(hookSpecFromJson(JSON.parse(JSON.stringify(hookSpecToJson(spec))))).toEqual(spec);
    expect(parseHookSpecs(specs.map(hookSpecToJson))).toEqual(specs);
  });

  it('validates stored JSON again', () => {
    expect(() => hookSpecFromJson({ trigger: { type: 'on_timeout', timeout_seconds: -1 }, action: 'stop_process' })).toThrow(
      'Invalid hook: hook.trigger.timeout_seconds must be an integer from 1 to 604800 (got -1)',
    );
  });
});

describe('describeHook', () => {
  const describeOne = (hook: unknown): string => describeHook(parseHookSpecs([hook])[0]!);

  it('writes one short line per trigger type', () => {
    expect(describeOne(onMatch)).toBe('on output /FAIL/ (both) → spawn_branch, max 1');
    expect(describeOne({ trigger: { type: 'on_output_match', pattern: '/fail/i', stream: 'stderr' }, action: 'inject_context', output_delay_seconds: 5, max_fires: 3 })).toBe(
      'on output /fail/i (stderr, delay 5s) → inject_context, max 3',
    );
    expect(describeOne(onExit)).toBe('on exit (any) → notify_channel, max 1');
    expect(describeOne({ trigger: { type: 'on_exit', exit_filter: 'failure' }, action: 'spawn_branch' })).toBe('on exit (failure) → spawn_branch, max 1');
    expect(describeOne(onTimeout)).toBe('on timeout (300s) → stop_process, max 1');
  });

  it('shortens long patterns', () => {
    const line = describeOne({ trigger: { type: 'on_output_match', pattern: `${'x'.repeat(120)}` }, action: 'stop_process' });
    expect(line).toBe(`on output /${'x'.repeat(78)}… (both) → stop_process, max 1`);
  });
});

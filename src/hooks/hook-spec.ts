import { AppError, describeValue } from '../errors.js';
import { compileSafePattern } from '../safe-pattern.js';

export const HOOK_TRIGGER_TYPES = ['on_exit', 'on_output_match', 'on_timeout', 'on_ready', 'on_ready_timeout', 'on_idle', 'on_resource'] as const;
export const EXIT_FILTERS = ['any', 'success', 'failure'] as const;
export const HOOK_STREAMS = ['stdout', 'stderr', 'both'] as const;
export const HOOK_ACTIONS = ['stop_process', 'stop_branch', 'inject_context', 'spawn_branch', 'notify_channel', 'restart_process'] as const;

export type HookTriggerType = (typeof HOOK_TRIGGER_TYPES)[number];
export type ExitFilter = (typeof EXIT_FILTERS)[number];
export type HookStream = (typeof HOOK_STREAMS)[number];
export type HookAction = (typeof HOOK_ACTIONS)[number];

export type HookTrigger =
  | { type: 'on_exit'; exitFilter: ExitFilter }
  | { type: 'on_output_match'; pattern: string; stream: HookStream }
  | { type: 'on_timeout'; timeoutSeconds: number }
  | { type: 'on_ready' }
  | { type: 'on_ready_timeout' }
  | { type: 'on_idle'; idleSeconds: number }
  | { type: 'on_resource'; memoryMb: number | null; cpuPercent: number | null; forSeconds: number };

export interface HookSpec {
  trigger: HookTrigger;
  action: HookAction;
  /** null: the engine writes a default text when the hook fires. */
  contextMessage: string | null;
  outputDelaySeconds: number;
  maxFires: number;
}

/** The tool-call shape with defaults filled: what is stored in SQLite. */
export interface HookSpecJson {
  trigger:
    | { type: 'on_exit'; exit_filter: ExitFilter }
    | { type: 'on_output_match'; pattern: string; stream: HookStream }
    | { type: 'on_timeout'; timeout_seconds: number }
    | { type: 'on_ready' | 'on_ready_timeout' }
    | { type: 'on_idle'; idle_seconds: number }
    | { type: 'on_resource'; memory_mb: number | null; cpu_percent: number | null; for_seconds: number };
  action: HookAction;
  context_message: string | null;
  output_delay_seconds: number;
  max_fires: number;
}

export const MAX_HOOKS = 20;
export const CONTEXT_MESSAGE_MAX_LENGTH = 4000;
export const TIMEOUT_SECONDS_MAX = 604_800;
export const OUTPUT_DELAY_SECONDS_MAX = 60;
export const MAX_FIRES_LIMIT = 1000;
export const MEMORY_MB_MAX = 1_048_576;
export const CPU_PERCENT_MAX = 100_000;
export const FOR_SECONDS_MAX = 86_400;

const HOOK_KEYS = ['trigger', 'action', 'context_message', 'output_delay_seconds', 'max_fires'] as const;
const TRIGGER_KEYS = ['type', 'exit_filter', 'pattern', 'stream', 'timeout_seconds', 'idle_seconds', 'memory_mb', 'cpu_percent', 'for_seconds'] as const;
const TRIGGER_KEYS_BY_TYPE: Record<HookTriggerType, readonly string[]> = {
  on_exit: ['exit_filter'],
  on_output_match: ['pattern', 'stream'],
  on_timeout: ['timeout_seconds'],
  on_ready: [],
  on_ready_timeout: [],
  on_idle: ['idle_seconds'],
  on_resource: ['memory_mb', 'cpu_percent', 'for_seconds'],
};

/** Validates hooks as an LLM sends them in a tool call; all or nothing, the error names the first bad field. */
export function parseHookSpecs(input: unknown, field = 'hooks'): HookSpec[] {
  if (!Array.isArray(input)) throw invalid(field, `an array of at most ${MAX_HOOKS} hook objects`, input);
  if (input.length > MAX_HOOKS) throw invalid(field, `an array of at most ${MAX_HOOKS} hooks`, input, `${input.length} hooks`);
  return input.map((hook, index) => parseHookSpec(hook, `${field}[${index}]`));
}

export function parseHookSpec(input: unknown, field: string): HookSpec {
  const hook = readObject(input, field, 'an object with trigger and action', HOOK_KEYS);
  const trigger = parseTrigger(hook.trigger, `${field}.trigger`);
  const action = readEnum(hook.action, `${field}.action`, HOOK_ACTIONS);
  if (action === undefined) throw missing(`${field}.action`, `one of ${HOOK_ACTIONS.join(', ')}`);
  const contextMessage = readContextMessage(hook.context_message, `${field}.context_message`);
  const outputDelaySeconds = readNumber(hook.output_delay_seconds, `${field}.output_delay_seconds`, 0, OUTPUT_DELAY_SECONDS_MAX, false) ?? 0;
  if (outputDelaySeconds > 0 && trigger.type !== 'on_output_match') {
    throw invalid(`${field}.output_delay_seconds`, `0 or left out when trigger.type is ${trigger.type}, since only on_output_match gathers lines`, outputDelaySeconds);
  }
  const maxFires = readNumber(hook.max_fires, `${field}.max_fires`, 1, MAX_FIRES_LIMIT, true) ?? 1;
  return { trigger, action, contextMessage, outputDelaySeconds, maxFires };
}

function parseTrigger(input: unknown, field: string): HookTrigger {
  if (input === undefined || input === null) throw missing(field, `an object with a type of ${HOOK_TRIGGER_TYPES.join(', ')}`);
  const trigger = readObject(input, field, `an object with a type of ${HOOK_TRIGGER_TYPES.join(', ')}`, TRIGGER_KEYS);
  const type = readEnum(trigger.type, `${field}.type`, HOOK_TRIGGER_TYPES);
  if (type === undefined) throw missing(`${field}.type`, `one of ${HOOK_TRIGGER_TYPES.join(', ')}`);
  for (const key of TRIGGER_KEYS) {
    if (key === 'type' || trigger[key] === undefined || trigger[key] === null || TRIGGER_KEYS_BY_TYPE[type].includes(key)) continue;
    const owner = HOOK_TRIGGER_TYPES.find((candidate) => TRIGGER_KEYS_BY_TYPE[candidate].includes(key));
    throw new AppError('HOOK_INVALID', `${field}.${key} only applies when ${field}.type is ${owner} (this trigger is ${type})`, { details: { field: `${field}.${key}` } });
  }
  switch (type) {
    case 'on_exit':
      return { type, exitFilter: readEnum(trigger.exit_filter, `${field}.exit_filter`, EXIT_FILTERS) ?? 'any' };
    case 'on_output_match': {
      const pattern = trigger.pattern;
      if (pattern === undefined || pattern === null) throw missing(`${field}.pattern`, 'a regex string when the type is on_output_match');
      if (typeof pattern !== 'string') throw invalid(`${field}.pattern`, 'a string holding a regex', pattern);
      compileSafePattern(pattern, `${field}.pattern`);
      return { type, pattern, stream: readEnum(trigger.stream, `${field}.stream`, HOOK_STREAMS) ?? 'both' };
    }
    case 'on_timeout': {
      const timeoutSeconds = readNumber(trigger.timeout_seconds, `${field}.timeout_seconds`, 1, TIMEOUT_SECONDS_MAX, true);
      if (timeoutSeconds === undefined) throw missing(`${field}.timeout_seconds`, `an integer from 1 to ${TIMEOUT_SECONDS_MAX} when the type is on_timeout`);
      return { type, timeoutSeconds };
    }
    case 'on_ready':
    case 'on_ready_timeout':
      return { type };
    case 'on_idle': {
      const idleSeconds = readNumber(trigger.idle_seconds, `${field}.idle_seconds`, 1, TIMEOUT_SECONDS_MAX, true);
      if (idleSeconds === undefined) throw missing(`${field}.idle_seconds`, `an integer from 1 to ${TIMEOUT_SECONDS_MAX} when the type is on_idle`);
      return { type, idleSeconds };
    }
    case 'on_resource': {
      const memoryMb = readNumber(trigger.memory_mb, `${field}.memory_mb`, 1, MEMORY_MB_MAX, false) ?? null;
      const cpuPercent = readNumber(trigger.cpu_percent, `${field}.cpu_percent`, 1, CPU_PERCENT_MAX, false) ?? null;
      if (memoryMb === null && cpuPercent === null) {
        throw missing(`${field}.memory_mb`, 'a number of MiB (or cpu_percent, or both) when the type is on_resource');
      }
      const forSeconds = readNumber(trigger.for_seconds, `${field}.for_seconds`, 0, FOR_SECONDS_MAX, false) ?? 0;
      if (forSeconds > 0 && cpuPercent === null) {
        throw invalid(`${field}.for_seconds`, '0 or left out without cpu_percent (memory is checked at each sample)', forSeconds);
      }
      return { type, memoryMb, cpuPercent, forSeconds };
    }
  }
}

function readObject<K extends string>(input: unknown, field: string, expected: string, allowed: readonly K[]): Partial<Record<K, unknown>> {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw invalid(field, expected, input);
  for (const key of Object.keys(input)) {
    if (!(allowed as readonly string[]).includes(key)) {
      throw new AppError('HOOK_INVALID', `${field}.${key} is not a known key (allowed: ${allowed.join(', ')})`, { details: { field: `${field}.${key}` } });
    }
  }
  return input as Partial<Record<K, unknown>>;
}

/** undefined when absent (null counts as absent: models send it for optional fields). */
function readEnum<T extends string>(value: unknown, field: string, allowed: readonly T[]): T | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) throw invalid(field, `one of ${allowed.join(', ')}`, value);
  return value as T;
}

function readNumber(value: unknown, field: string, min: number, max: number, isInteger: boolean): number | undefined {
  if (value === undefined || value === null) return undefined;
  const isValid = typeof value === 'number' && (isInteger ? Number.isInteger(value) : Number.isFinite(value)) && value >= min && value <= max;
  if (!isValid) throw invalid(field, `${isInteger ? 'an integer' : 'a number'} from ${min} to ${max}`, value);
  return value;
}

function readContextMessage(value: unknown, field: string): string | null {
  if (value === undefined || value === null) return null;
  const expected = `a string of at most ${CONTEXT_MESSAGE_MAX_LENGTH} characters`;
  if (typeof value !== 'string') throw invalid(field, expected, value);
  if (value.length > CONTEXT_MESSAGE_MAX_LENGTH) throw invalid(field, expected, value, `${value.length} characters`);
  return value.trim() === '' ? null : value;
}

function invalid(field: string, expected: string, got: unknown, shown = describeValue(got)): AppError {
  return new AppError('HOOK_INVALID', `${field} must be ${expected} (got ${shown})`, { details: { field } });
}

function missing(field: string, expected: string): AppError {
  return new AppError('HOOK_INVALID', `${field} is missing: it must be ${expected}`, { details: { field } });
}

function triggerToJson(trigger: HookTrigger): HookSpecJson['trigger'] {
  switch (trigger.type) {
    case 'on_exit':
      return { type: trigger.type, exit_filter: trigger.exitFilter };
    case 'on_output_match':
      return { type: trigger.type, pattern: trigger.pattern, stream: trigger.stream };
    case 'on_timeout':
      return { type: trigger.type, timeout_seconds: trigger.timeoutSeconds };
    case 'on_ready':
    case 'on_ready_timeout':
      return { type: trigger.type };
    case 'on_idle':
      return { type: trigger.type, idle_seconds: trigger.idleSeconds };
    case 'on_resource':
      return { type: trigger.type, memory_mb: trigger.memoryMb, cpu_percent: trigger.cpuPercent, for_seconds: trigger.forSeconds };
  }
}

export function hookSpecToJson(spec: HookSpec): HookSpecJson {
  const json = triggerToJson(spec.trigger);
  return {
    trigger: json,
    action: spec.action,
    context_message: spec.contextMessage,
    output_delay_seconds: spec.outputDelaySeconds,
    max_fires: spec.maxFires,
  };
}

/** Stored rows are validated again, so a hand-edited or older row fails loudly rather than misfiring. */
export function hookSpecFromJson(json: unknown): HookSpec {
  return parseHookSpec(json, 'hook');
}

/** One line for status displays and the LLM preamble, e.g. `on output /FAIL/ (both) → spawn_branch, max 1`. */
export function describeHook(spec: HookSpec): string {
  const { trigger } = spec;
  let when: string;
  if (trigger.type === 'on_exit') {
    when = `on exit (${trigger.exitFilter})`;
  } else if (trigger.type === 'on_timeout') {
    when = `on timeout (${trigger.timeoutSeconds}s)`;
  } else if (trigger.type === 'on_ready') {
    when = 'on ready';
  } else if (trigger.type === 'on_ready_timeout') {
    when = 'on not ready (timeout or port held)';
  } else if (trigger.type === 'on_idle') {
    when = `on idle (${trigger.idleSeconds}s without output)`;
  } else if (trigger.type === 'on_resource') {
    const bounds = [
      ...(trigger.memoryMb !== null ? [`memory > ${trigger.memoryMb} MiB`] : []),
      ...(trigger.cpuPercent !== null ? [`CPU > ${trigger.cpuPercent}%${trigger.forSeconds ? ` for ${trigger.forSeconds}s` : ''}`] : []),
    ];
    when = `on resource (${bounds.join(' or ')})`;
  } else {
    const shown = /^\/.+\/[a-z]*$/s.test(trigger.pattern) ? trigger.pattern : `/${trigger.pattern}/`;
    const oneLine = shown.replace(/\r/g, '\\r').replace(/\n/g, '\\n');
    const cut = oneLine.length > 80 ? `${oneLine.slice(0, 79)}…` : oneLine;
    const delay = spec.outputDelaySeconds > 0 ? `, delay ${spec.outputDelaySeconds}s` : '';
    when = `on output ${cut} (${trigger.stream}${delay})`;
  }
  return `${when} → ${spec.action}, max ${spec.maxFires}`;
}

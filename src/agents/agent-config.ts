import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { AppError, describeValue } from '../errors.js';
import { agentDir, agentsDir } from '../home-layout.js';
import { DEFAULT_SANDBOX_POLICY, type OwnerLoader, type ProcessOwner, type SandboxPolicy } from '../process/owner.js';
import { exposure } from '../process/sandbox.js';
import { isInside } from '../process/workspace.js';
import { homedir } from 'node:os';
import { SECRET_NAME } from '../process/environment.js';
import { ensureWorkspaceDir } from '../process/workspace.js';

export { agentDir, agentsDir };

export interface AgentConfig {
  name: string;
  channelId: string | null;
  model: string | null;
  systemPrompt: string;
  workspace: string;
  allowedUserIds: string[];
  allowedRoleIds: string[];
  maxProcesses: number;
  /** Extra variables for this agent's children; names that look like secrets are refused. */
  env: Record<string, string>;
  /** How far its confined processes reach (paths expanded and absolute). */
  sandbox: SandboxPolicy;
}

export const DEFAULT_MAX_PROCESSES = 20;
export const DEFAULT_SYSTEM_PROMPT =
  'You are a coding agent with a process manager. Start long-running work with start_process and use hooks to be told when it ends or prints something, instead of polling.';
const AGENT_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const SNOWFLAKE = /^\d{17,20}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const KNOWN_KEYS = ['name', 'channel_id', 'model', 'system_prompt', 'workspace', 'allowed_user_ids', 'allowed_role_ids', 'max_processes', 'env', 'sandbox'];
const SANDBOX_KEYS = ['network', 'allow_read', 'allow_write', 'hide'];
const SANDBOX_PATHS_MAX = 50;

export function agentConfigPath(home: string, name: string): string {
  return join(agentDir(home, name), 'agent.json');
}

export function checkAgentName(name: unknown, field = 'agent'): string {
  if (typeof name !== 'string' || !AGENT_NAME.test(name)) {
    throw new AppError('INVALID_INPUT', `${field} must be 1-32 lowercase letters, digits, - or _, starting with a letter or digit (got ${describeValue(name)})`);
  }
  return name;
}

export function defaultAgentConfig(home: string, name: string): AgentConfig {
  return {
    name,
    channelId: null,
    model: null,
    systemPrompt: DEFAULT_SYSTEM_PROMPT,
    workspace: join(agentDir(home, name), 'workspace'),
    allowedUserIds: [],
    allowedRoleIds: [],
    maxProcesses: DEFAULT_MAX_PROCESSES,
    env: {},
    sandbox: { ...DEFAULT_SANDBOX_POLICY },
  };
}

function fail(file: string, key: string, expected: string, got: unknown): AppError {
  return new AppError('AGENT_CONFIG_INVALID', `${file}: ${key} must be ${expected} (got ${describeValue(got)})`, { details: { file, key } });
}

function idList(file: string, key: string, value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw fail(file, key, 'an array of Discord ids', value);
  for (const id of value) if (typeof id !== 'string' || !SNOWFLAKE.test(id)) throw fail(file, key, 'an array of Discord ids (strings of 17-20 digits)', id);
  return value as string[];
}

function expandHome(path: string): string {
  if (path === '~') return homedir();
  return path.startsWith('~/') ? join(homedir(), path.slice(2)) : path;
}

function sandboxPaths(file: string, key: string, value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.length > SANDBOX_PATHS_MAX) throw fail(file, key, `an array of at most ${SANDBOX_PATHS_MAX} paths`, value);
  return value.map((path, i) => {
    if (typeof path !== 'string' || !(isAbsolute(path) || path === '~' || path.startsWith('~/')) || path.length > 4096) {
      throw fail(file, `${key}[${i}]`, 'an absolute path or one starting with ~/', path);
    }
    return resolve(expandHome(path));
  });
}

/** `sandbox` of agent.json: what an allow list shows must never uncover CHORUS_HOME (outside the agent's workspace). */
function parseSandbox(file: string, home: string, workspace: string, raw: unknown): SandboxPolicy {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw fail(file, 'sandbox', 'an object with network, allow_read, allow_write, hide', raw);
  const json = raw as Record<string, unknown>;
  for (const key of Object.keys(json)) {
    if (!SANDBOX_KEYS.includes(key)) throw fail(file, `sandbox.${key}`, `absent (known keys: ${SANDBOX_KEYS.join(', ')})`, json[key]);
  }
  if (json.network !== undefined && typeof json.network !== 'boolean') throw fail(file, 'sandbox.network', 'true or false', json.network);
  const policy: SandboxPolicy = {
    network: json.network ?? true,
    allowRead: sandboxPaths(file, 'sandbox.allow_read', json.allow_read),
    allowWrite: sandboxPaths(file, 'sandbox.allow_write', json.allow_write),
    hide: sandboxPaths(file, 'sandbox.hide', json.hide),
  };
  for (const [key, paths] of [['allow_read', policy.allowRead], ['allow_write', policy.allowWrite]] as const) {
    for (const [i, path] of paths.entries()) {
      if (exposure(path, [home], workspace)) throw fail(file, `sandbox.${key}[${i}]`, `a path that does not expose CHORUS_HOME (${home})`, path);
    }
  }
  return policy;
}

/** Checks a parsed agent.json; errors name the file and the key. */
export function parseAgentConfig(home: string, name: string, raw: unknown, file = agentConfigPath(home, name)): AgentConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw fail(file, '(top level)', 'a JSON object', raw);
  const json = raw as Record<string, unknown>;
  for (const key of Object.keys(json)) {
    if (!KNOWN_KEYS.includes(key)) throw fail(file, key, `absent (known keys: ${KNOWN_KEYS.join(', ')})`, json[key]);
  }
  const config = defaultAgentConfig(home, name);
  if (json.name !== undefined && json.name !== name) throw fail(file, 'name', `the directory's name ${JSON.stringify(name)}`, json.name);
  if (json.channel_id !== undefined && json.channel_id !== null) {
    if (typeof json.channel_id !== 'string' || !SNOWFLAKE.test(json.channel_id)) throw fail(file, 'channel_id', 'a Discord channel id (string of 17-20 digits)', json.channel_id);
    config.channelId = json.channel_id;
  }
  if (json.model !== undefined && json.model !== null) {
    if (typeof json.model !== 'string' || !json.model.trim() || json.model.length > 200) throw fail(file, 'model', 'a model name', json.model);
    config.model = json.model;
  }
  if (json.system_prompt !== undefined) {
    if (typeof json.system_prompt !== 'string' || json.system_prompt.length > 20_000) throw fail(file, 'system_prompt', 'a string of at most 20,000 characters', json.system_prompt);
    config.systemPrompt = json.system_prompt;
  }
  if (json.workspace !== undefined) {
    if (typeof json.workspace !== 'string' || !isAbsolute(json.workspace)) throw fail(file, 'workspace', 'an absolute path', json.workspace);
    config.workspace = json.workspace;
  }
  config.allowedUserIds = idList(file, 'allowed_user_ids', json.allowed_user_ids);
  config.allowedRoleIds = idList(file, 'allowed_role_ids', json.allowed_role_ids);
  if (json.max_processes !== undefined) {
    const n = json.max_processes;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 1000) throw fail(file, 'max_processes', 'an integer from 1 to 1000', n);
    config.maxProcesses = n;
  }
  if (json.env !== undefined) {
    if (json.env === null || typeof json.env !== 'object' || Array.isArray(json.env)) throw fail(file, 'env', 'an object of string values', json.env);
    for (const [key, value] of Object.entries(json.env)) {
      if (!ENV_NAME.test(key)) throw fail(file, `env.${key}`, 'a variable name (letters, digits, _)', key);
      if (SECRET_NAME.test(key)) throw fail(file, `env.${key}`, 'a name that does not look like a secret (children never get secrets)', key);
      if (typeof value !== 'string') throw fail(file, `env.${key}`, 'a string', value);
      config.env[key] = value;
    }
  }
  if (json.sandbox !== undefined) config.sandbox = parseSandbox(file, home, config.workspace, json.sandbox);
  return config;
}

/** The agent's configuration, or the defaults when it has no agent.json yet. */
export function loadAgentConfig(home: string, name: string): AgentConfig {
  checkAgentName(name);
  const file = agentConfigPath(home, name);
  if (!existsSync(file)) return defaultAgentConfig(home, name);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new AppError('AGENT_CONFIG_INVALID', `${file}: not valid JSON (${(error as Error).message})`, { cause: error, details: { file } });
  }
  return parseAgentConfig(home, name, raw, file);
}

/** Every agent that has an agent.json. */
export function listAgentConfigs(home: string): AgentConfig[] {
  const dir = agentsDir(home);
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && AGENT_NAME.test(entry.name) && existsSync(agentConfigPath(home, entry.name)))
    .map((entry) => loadAgentConfig(home, entry.name))
    .sort((a, b) => a.name.localeCompare(b.name));
}

export function agentConfigToJson(config: AgentConfig, home: string): Record<string, unknown> {
  const json: Record<string, unknown> = { name: config.name, channel_id: config.channelId };
  if (config.model) json.model = config.model;
  if (config.systemPrompt !== DEFAULT_SYSTEM_PROMPT) json.system_prompt = config.systemPrompt;
  if (config.workspace !== defaultAgentConfig(home, config.name).workspace) json.workspace = config.workspace;
  json.allowed_user_ids = config.allowedUserIds;
  json.allowed_role_ids = config.allowedRoleIds;
  json.max_processes = config.maxProcesses;
  if (Object.keys(config.env).length) json.env = config.env;
  const { network, allowRead, allowWrite, hide } = config.sandbox;
  if (!network || allowRead.length || allowWrite.length || hide.length) {
    json.sandbox = { network, allow_read: allowRead, allow_write: allowWrite, hide };
  }
  return json;
}

/** Writes agent.json atomically (0600). */
export function writeAgentConfig(home: string, config: AgentConfig): void {
  const dir = agentDir(home, checkAgentName(config.name));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = agentConfigPath(home, config.name);
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(agentConfigToJson(config, home), null, 2)}\n`, { mode: 0o600 });
  renameSync(temp, file);
}

/** Creates the workspace on first use. */
export function ensureWorkspace(config: AgentConfig): string {
  return ensureWorkspaceDir(config.workspace);
}

/** Workspaces of other agents that lie outside CHORUS_HOME (those inside are hidden with it). */
function otherWorkspaces(home: string, name: string): string[] {
  const dir = agentsDir(home);
  if (!existsSync(dir)) return [];
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name === name || !AGENT_NAME.test(entry.name)) continue;
    try {
      const { workspace } = loadAgentConfig(home, entry.name);
      if (!isInside(home, workspace)) found.push(workspace);
    } catch {
      // A broken agent.json names no workspace; that agent cannot start anything either.
    }
  }
  return found;
}

/** What the process core gets for an agent: its settings, with other agents' workspaces added to what is hidden. */
export function agentOwner(home: string, config: AgentConfig): ProcessOwner {
  return { ...config, sandbox: { ...config.sandbox, hide: [...config.sandbox.hide, ...otherWorkspaces(home, config.name)] } };
}

/** A loader of process owners for the process core: each call reads the agent's current agent.json. */
export function agentOwnerLoader(home: string): OwnerLoader {
  return (name) => agentOwner(home, loadAgentConfig(home, name));
}

import { mkdirSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { agentConfigPath, ensureWorkspace, listAgentConfigs, loadAgentConfig, writeAgentConfig } from '../../src/agents/agent-config.js';
import { makeTempHome } from '../support/temp-home.js';

function writeRaw(home: string, name: string, text: string): string {
  mkdirSync(join(home, 'agents', name), { recursive: true });
  const file = agentConfigPath(home, name);
  writeFileSync(file, text);
  return file;
}

describe('agent configuration', () => {
  it('uses defaults without agent.json and creates the workspace on first use', () => {
    const home = makeTempHome();
    const config = loadAgentConfig(home, 'main');
    expect(config.workspace).toBe(join(home, 'agents', 'main', 'workspace'));
    expect(config.maxProcesses).toBe(20);
    expect(existsSync(config.workspace)).toBe(false);
    ensureWorkspace(config);
    expect(statSync(config.workspace).isDirectory()).toBe(true);
  });

  it('round-trips through agent.json (0600) and lists agents', () => {
    const home = makeTempHome();
    const config = { ...loadAgentConfig(home, 'alpha'), channelId: '123456789012345678', model: 'm', allowedUserIds: ['223456789012345678'], maxProcesses: 3, env: { FOO: 'bar' } };
    writeAgentConfig(home, config);
    expect(statSync(agentConfigPath(home, 'alpha')).mode & 0o777).toBe(0o600);
    expect(loadAgentConfig(home, 'alpha')).toEqual(config);
    expect(listAgentConfigs(home).map((a) => a.name)).toEqual(['alpha']);
  });

  it.each([
    ['{ not json', /not valid JSON/],
    ['[]', /\(top level\) must be a JSON object/],
    ['{"channel_id": 5}', /channel_id must be a Discord channel id/],
    ['{"workspace": "relative/dir"}', /workspace must be an absolute path/],
    ['{"allowed_user_ids": "123"}', /allowed_user_ids must be an array of Discord ids/],
    ['{"allowed_role_ids": ["abc"]}', /allowed_role_ids must be an array of Discord ids/],
    ['{"max_processes": 0}', /max_processes must be an integer from 1 to 1000/],
    ['{"max_processes": "5"}', /max_processes must be an integer/],
    ['{"env": {"GITHUB_TOKEN": "x"}}', /env\.GITHUB_TOKEN must be a name that does not look like a secret/],
    ['{"env": {"FOO": 1}}', /env\.FOO must be a string/],
    ['{"name": "other"}', /name must be the directory's name/],
    ['{"chanel_id": "123456789012345678"}', /chanel_id must be absent \(known keys:/],
  ])('refuses %s with one line naming the file and key', (text, message) => {
    const home = makeTempHome();
    const file = writeRaw(home, 'beta', text);
    expect(() => loadAgentConfig(home, 'beta')).toThrow(message);
    expect(() => loadAgentConfig(home, 'beta')).toThrow(file);
  });

  it.each(['', 'Bad Name', '../etc', 'a'.repeat(40), '-x'])('refuses the agent name %j', (name) => {
    expect(() => loadAgentConfig(makeTempHome(), name)).toThrow(/agent must be 1-32 lowercase letters/);
  });
});

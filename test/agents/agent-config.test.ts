import { mkdirSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { agentConfigPath, agentOwnerLoader, ensureWorkspace, listAgentConfigs, loadAgentConfig, writeAgentConfig } from '../../src/agents/agent-config.js';
import { homedir } from 'node:os';
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
    ['{"sandbox": true}', /sandbox must be an object with network, allow_read, allow_write, hide \(got true\)/],
    ['{"sandbox": {"network": "off"}}', /sandbox\.network must be true or false \(got "off"\)/],
    ['{"sandbox": {"netwerk": false}}', /sandbox\.netwerk must be absent \(known keys: network, allow_read, allow_write, hide\)/],
    ['{"sandbox": {"allow_write": "/srv"}}', /sandbox\.allow_write must be an array of at most 50 paths \(got "\/srv"\)/],
    ['{"sandbox": {"allow_read": ["relative/dir"]}}', /sandbox\.allow_read\[0\] must be an absolute path or one starting with ~\/ \(got "relative\/dir"\)/],
    ['{"sandbox": {"hide": [5]}}', /sandbox\.hide\[0\] must be an absolute path or one starting with ~\/ \(got 5\)/],
    ['{"sandbox": {"allow_write": ["/"]}}', /sandbox\.allow_write\[0\] must be a path that does not expose CHORUS_HOME/],
    ['{"sandbox": {"allow_read": ["HOME/agents/alpha"]}}', /sandbox\.allow_read\[0\] must be a path that does not expose CHORUS_HOME/],
    ['{"sandbox": {"allow_read": ["HOME/chorus.db"]}}', /sandbox\.allow_read\[0\] must be a path that does not expose CHORUS_HOME/],
  ])('refuses %s with one line naming the file and key', (text, message) => {
    const home = makeTempHome();
    const file = writeRaw(home, 'beta', text.replaceAll('HOME', home));
    expect(() => loadAgentConfig(home, 'beta')).toThrow(message);
    expect(() => loadAgentConfig(home, 'beta')).toThrow(file);
  });

  it('reads sandbox with ~ expanded, allows paths inside its own workspace, and round-trips', () => {
    const home = makeTempHome();
    const workspace = join(home, 'agents', 'beta', 'workspace');
    writeRaw(home, 'beta', JSON.stringify({ sandbox: { network: false, allow_read: ['~/.gitconfig'], allow_write: ['~/.cache/pip', join(workspace, 'sub')], hide: ['/srv/secrets'] } }));
    const config = loadAgentConfig(home, 'beta');
    expect(config.sandbox).toEqual({
      network: false, allowRead: [join(homedir(), '.gitconfig')], allowWrite: [join(homedir(), '.cache/pip'), join(workspace, 'sub')], hide: ['/srv/secrets'],
    });
    writeAgentConfig(home, config);
    expect(loadAgentConfig(home, 'beta')).toEqual(config);
    expect(loadAgentConfig(home, 'alpha').sandbox).toEqual({ network: true, allowRead: [], allowWrite: [], hide: [] });
  });

  it('a process owner hides the workspaces of other agents that lie outside CHORUS_HOME', () => {
    const home = makeTempHome();
    writeAgentConfig(home, { ...loadAgentConfig(home, 'gamma'), workspace: '/srv/gamma-workspace' });
    writeAgentConfig(home, loadAgentConfig(home, 'beta'));
    expect(agentOwnerLoader(home)('alpha').sandbox?.hide).toEqual(['/srv/gamma-workspace']);
    expect(agentOwnerLoader(home)('gamma').sandbox?.hide).toEqual([]);
  });

  it.each(['', 'Bad Name', '../etc', 'a'.repeat(40), '-x'])('refuses the agent name %j', (name) => {
    expect(() => loadAgentConfig(makeTempHome(), name)).toThrow(/agent must be 1-32 lowercase letters/);
  });
});

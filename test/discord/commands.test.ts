import { existsSync, readFileSync } from 'node:fs';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { agentConfigPath, loadAgentConfig } from '../../src/agents/agent-config.js';
import { deployCommands } from '../../src/discord/deploy-commands.js';
import { FakeDiscord, type CommandInput } from '../support/fake-discord.js';
import { isAlive } from '../support/child-cleanup.js';
import { waitFor } from '../support/wait-for.js';
import {
  ALLOWED_USER, ALPHA_CHANNEL, BETA_CHANNEL, DEV_USER, DEVS_ROLE, GENERAL, OPERATORS_ROLE, OUTSIDER, TIMEOUT_MS,
  spawnBackground, startHarness, ticker,
} from './harness.js';
import { fixture as fixturePath } from '../support/fixtures.js';

const node = JSON.stringify(process.execPath);

describe('slash commands through the real discord.js client', () => {
  it('logs in and registers /process and /agent in the guild at start-up', async () => {
    const h = await startHarness();
    const registered = h.server.registeredCommands();
    expect(registered.map((command) => command.name).sort()).toEqual(['agent', 'process']);
    const processCommand = registered.find((command) => command.name === 'process')!;
    expect((processCommand.options as Array<{ name: string }>).map((option) => option.name)).toEqual(['list', 'kill', 'logs', 'status', 'restart', 'input', 'signal', 'start']);
    expect(h.server.gatewayStats.identifies).toBe(1);
    expect(h.server.unhandled).toEqual([]);
  });

  it('deploy-commands registers globally without DISCORD_GUILD_ID and in the guild with it', async () => {
    const server = await FakeDiscord.start();
    try {
      const out: string[] = [];
      const io = { out: (line: string) => out.push(line), err: (line: string) => out.push(`ERR ${line}`) };
      const env = { DISCORD_TOKEN: server.token, DISCORD_API_URL: server.apiUrl, CHORUS_HOME: '/tmp/unused-chorus-home' };
      expect(await deployCommands(env, io)).toBe(0);
      expect(server.registeredCommands('global').map((command) => command.name).sort()).toEqual(['agent', 'process']);
      expect(await deployCommands({ ...env, DISCORD_GUILD_ID: server.guildId }, io)).toBe(0);
      expect(server.registeredCommands().map((command) => command.name).sort()).toEqual(['agent', 'process']);
      expect(out[0]).toMatch(/^registered \/process, \/agent globally/);
      expect(out[1]).toMatch(new RegExp(`in guild ${server.guildId}`));
      expect(await deployCommands({ CHORUS_HOME: '/tmp/unused-chorus-home' }, io)).toBe(1);
      expect(out[2]).toMatch(/^ERR deploy-commands: DISCORD_TOKEN is not set/);
    } finally {
      await server.close();
    }
  });

  it('runs every /process subcommand against the channel\'s agent', async () => {
    const h = await startHarness();
    const record = await spawnBackground(h, h.alpha, ticker(0, 100));
    await waitFor(() => (h.manager.tail(record.id)?.length ?? 0) >= 3, { timeoutMs: TIMEOUT_MS, what: 'some output' });

    const list = await h.server.sendCommand({ name: 'process', subcommand: 'list', channelId: ALPHA_CHANNEL }).waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(list.isEphemeral).toBe(true);
    expect(list.content).toContain(String(record.pid));
    expect(list.content).toContain('running');

    const status = await h.server.sendCommand({ name: 'process', subcommand: 'status', options: { pid: record.pid! }, channelId: ALPHA_CHANNEL })
      .waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(status.content).toContain(`pid ${record.pid}`);
    expect(status.content).toContain('tick');

    const logs = await h.server.sendCommand({ name: 'process', subcommand: 'logs', options: { pid: record.pid!, lines: 2, stream: 'stdout' }, channelId: ALPHA_CHANNEL })
      .waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(logs.content.match(/^tick \d+$/gm)?.length).toBe(2);

    const restartSent = h.server.sendCommand({ name: 'process', subcommand: 'restart', options: { pid: record.pid! }, channelId: ALPHA_CHANNEL, userId: ALLOWED_USER });
    const restarted = await restartSent.waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(restarted.isEphemeral).toBe(false);
    expect(restarted.content).toMatch(new RegExp(`Restarted pid ${record.pid} as pid \\d+`));
    const fresh = h.manager.list({ agentName: 'alpha', status: 'running' })[0]!;
    expect(fresh.restartedFrom).toBe(record.id);
    expect(isAlive(record.pid!)).toBe(false);

    const kill = await h.server.sendCommand({ name: 'process', subcommand: 'kill', options: { pid: fresh.pid!, force: true }, channelId: ALPHA_CHANNEL, userId: DEV_USER, roles: [DEVS_ROLE] })
      .waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(kill.content).toMatch(new RegExp(`Stopped pid ${fresh.pid}.*SIGKILL`));
    expect(h.manager.find({ id: fresh.id })?.status).toBe('killed');
    expect(h.manager.find({ id: fresh.id })?.stoppedBy).toBe(DEV_USER);
    expect(h.server.unhandled).toEqual([]);
  });

  it('sends long output as a bounded .log attachment and cuts long lists with "+N more"', async () => {
    const h = await startHarness();
    const script = `for (let i = 0; i < 400; i++) console.log('output line ' + i + ' ' + 'x'.repeat(40)); setInterval(() => {}, 1 << 30);`;
    const record = await spawnBackground(h, h.alpha, `${node} -e ${JSON.stringify(script)}`);
    await waitFor(() => h.manager.tail(record.id)?.some((line) => line.text.startsWith('output line 399')), { timeoutMs: TIMEOUT_MS, what: 'all output' });
    const reply = await h.server.sendCommand({ name: 'process', subcommand: 'logs', options: { pid: record.pid!, lines: 400 }, channelId: ALPHA_CHANNEL })
      .waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(reply.content.length).toBeLessThanOrEqual(2000);
    expect(reply.attachments).toHaveLength(1);
    const file = reply.attachments[0]!;
    expect(file.filename).toMatch(/\.log$/);
    expect(file.data.toString()).toContain('output line 399');

    for (let i = 0; i < 120; i += 1) h.bot.directory.bind(`agent-${String(i).padStart(3, '0')}-with-a-rather-long-name`.slice(0, 32), `2400000000000${String(i).padStart(5, '0')}`);
    const agents = await h.server.sendCommand({ name: 'agent', subcommand: 'list', channelId: GENERAL }).waitForReply({ timeoutMs: TIMEOUT_MS });
    const description = String(agents.embeds[0]?.description);
    expect(description.length).toBeLessThanOrEqual(4096);
    expect(description).toMatch(/\n\+\d+ more$/);
  });

  it('autocompletes pids from the channel\'s agent only, at most 25', async () => {
    const h = await startHarness();
    const alphaRows = [];
    for (let i = 0; i < 27; i += 1) alphaRows.push(await spawnBackground(h, h.alpha, 'true'));
    const betaRow = await spawnBackground(h, h.beta, 'true');
    const reply = await h.server.sendAutocomplete({ name: 'process', subcommand: 'status', focused: 'pid', channelId: ALPHA_CHANNEL })
      .waitForReply({ timeoutMs: TIMEOUT_MS });
    const values = (reply.choices ?? []).map((choice) => choice.value);
    expect(values).toHaveLength(25);
    expect(values).not.toContain(betaRow.pid);
    for (const value of values) expect(alphaRows.map((row) => row.pid)).toContain(value);

    const typed = String(alphaRows[3]!.pid).slice(0, 4);
    const filtered = await h.server.sendAutocomplete({ name: 'process', subcommand: 'status', focused: 'pid', options: { pid: typed }, channelId: ALPHA_CHANNEL })
      .waitForReply({ timeoutMs: TIMEOUT_MS });
    for (const choice of filtered.choices ?? []) expect(String(choice.value).startsWith(typed) || String(choice.name).includes(typed)).toBe(true);

    const none = await h.server.sendAutocomplete({ name: 'process', subcommand: 'kill', focused: 'pid', channelId: GENERAL }).waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(none.choices).toEqual([]);
  });

  it('refuses bad options and wrong places with ephemeral errors that say what to do', async () => {
    const h = await startHarness();
    const alphaRow = await spawnBackground(h, h.alpha, ticker(0, 200));
    const betaRow = await spawnBackground(h, h.beta, ticker(0, 200));
    const ask = async (input: Parameters<typeof h.server.sendCommand>[0]) => h.server.sendCommand(input).waitForReply({ timeoutMs: TIMEOUT_MS });

    const unknown = await ask({ name: 'process', subcommand: 'status', options: { pid: 999_999 }, channelId: ALPHA_CHANNEL });
    expect(unknown).toMatchObject({ isEphemeral: true });
    expect(unknown.content).toMatch(/No such process: pid 999999 for agent alpha; list processes/);

    const foreign = await ask({ name: 'process', subcommand: 'kill', options: { pid: betaRow.pid! }, channelId: ALPHA_CHANNEL });
    expect(foreign.isEphemeral).toBe(true);
    expect(foreign.content).toMatch(new RegExp(`No such process: pid ${betaRow.pid} for agent alpha`));
    expect(h.manager.find({ id: betaRow.id })?.status).toBe('running');

    for (const lines of [0, 100_000]) {
      const reply = await ask({ name: 'process', subcommand: 'logs', options: { pid: alphaRow.pid!, lines }, channelId: ALPHA_CHANNEL });
      expect(reply.isEphemeral).toBe(true);
      expect(reply.content).toBe(`Invalid input: lines must be an integer from 1 to 1000 (got ${lines})`);
    }

    const noAgent = await ask({ name: 'process', subcommand: 'list', channelId: GENERAL });
    expect(noAgent.isEphemeral).toBe(true);
    expect(noAgent.content).toMatch(/^No agent is bound to this channel: use \/agent bind/);

    const dm = await ask({ name: 'process', subcommand: 'list', isDm: true, userId: ALLOWED_USER });
    expect(dm.isEphemeral).toBe(true);
    expect(dm.content).toMatch(/not in direct messages/);

    const ended = await spawnBackground(h, h.alpha, 'true');
    await waitFor(() => h.manager.find({ id: ended.id })?.status === 'exited', { timeoutMs: TIMEOUT_MS, what: 'the process to end' });
    const late = await ask({ name: 'process', subcommand: 'kill', options: { pid: ended.pid! }, channelId: ALPHA_CHANNEL });
    expect(late).toMatchObject({ isEphemeral: true });
    expect(late.content).toMatch(/is not running: it exited with code 0/);
    expect(h.server.rejected).toEqual([]);
  });

  it('refuses every mutating command to a user outside the allow-list, and lets allowed users, roles and Manage Server in', async () => {
    const h = await startHarness();
    const record = await spawnBackground(h, h.alpha, ticker(0, 200));
    const refused: CommandInput[] = [
      { name: 'process', subcommand: 'kill', options: { pid: record.pid! } },
      { name: 'process', subcommand: 'restart', options: { pid: record.pid! } },
      { name: 'agent', subcommand: 'unbind' },
      { name: 'agent', subcommand: 'bind', options: { name: 'alpha' } },
    ];
    for (const command of refused) {
      const reply = await h.server.sendCommand({ ...command, channelId: ALPHA_CHANNEL, userId: OUTSIDER }).waitForReply({ timeoutMs: TIMEOUT_MS });
      expect(reply.isEphemeral, `${command.name} ${command.subcommand}`).toBe(true);
      expect(reply.content).toMatch(/^You are not allowed to do that here: .* needs an allowed user/);
    }
    const bindElsewhere = await h.server.sendCommand({ name: 'agent', subcommand: 'bind', options: { name: 'gamma' }, channelId: GENERAL, userId: OUTSIDER })
      .waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(bindElsewhere.content).toMatch(/^You are not allowed/);
    expect(h.manager.find({ id: record.id })?.status).toBe('running');
    expect(loadAgentConfig(h.home, 'alpha').channelId).toBe(ALPHA_CHANNEL);
    expect(existsSync(agentConfigPath(h.home, 'gamma'))).toBe(false);

    // Reading is open to the channel.
    const list = await h.server.sendCommand({ name: 'process', subcommand: 'list', channelId: ALPHA_CHANNEL, userId: OUTSIDER }).waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(list.content).toContain(String(record.pid));

    // Manage Server (the Operators role) is only the default: alpha has its own allow-list, so it is refused there.
    const operatorOnAlpha = await h.server.sendCommand({
      name: 'process', subcommand: 'kill', options: { pid: record.pid! }, channelId: ALPHA_CHANNEL, userId: '230000000000000050', roles: [OPERATORS_ROLE],
    }).waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(operatorOnAlpha.content).toMatch(/^You are not allowed to do that here/);
    expect(h.manager.find({ id: record.id })?.status).toBe('running');

    // beta has no allow-list: Manage Server may, and someone without it may not.
    const betaRecord = await spawnBackground(h, h.beta, ticker(0, 200));
    const outsiderOnBeta = await h.server.sendCommand({ name: 'process', subcommand: 'kill', options: { pid: betaRecord.pid! }, channelId: BETA_CHANNEL, userId: OUTSIDER })
      .waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(outsiderOnBeta.content).toMatch(/^You are not allowed .*or to give you Manage Server/);
    const operator = await h.server.sendCommand({
      name: 'process', subcommand: 'kill', options: { pid: betaRecord.pid! }, channelId: BETA_CHANNEL, userId: '230000000000000050', roles: [OPERATORS_ROLE],
    }).waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(operator.content).toMatch(/^Stopped pid/);
  });

  it('binds, lists and unbinds agents', async () => {
    const h = await startHarness();
    const bind = await h.server.sendCommand({ name: 'agent', subcommand: 'bind', options: { name: 'gamma' }, channelId: GENERAL }).waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(bind.isEphemeral).toBe(false);
    expect(bind.content).toMatch(/Agent \*\*gamma\*\* is now bound to this channel, created with default settings/);
    expect(JSON.parse(readFileSync(agentConfigPath(h.home, 'gamma'), 'utf8'))).toMatchObject({ name: 'gamma', channel_id: GENERAL });

    const taken = await h.server.sendCommand({ name: 'agent', subcommand: 'bind', options: { name: 'beta' }, channelId: ALPHA_CHANNEL }).waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(taken).toMatchObject({ isEphemeral: true });
    expect(taken.content).toMatch(/bound to agent alpha; run \/agent unbind first/);

    const badName = await h.server.sendCommand({ name: 'agent', subcommand: 'bind', options: { name: 'Bad Name!' }, channelId: GENERAL }).waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(badName.content).toMatch(/^Invalid input: name must be 1-32 lowercase letters/);

    const list = await h.server.sendCommand({ name: 'agent', subcommand: 'list', channelId: BETA_CHANNEL }).waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(list.isEphemeral).toBe(true);
    const description = String(list.embeds[0]?.description);
    expect(description).toContain(`**alpha** → <#${ALPHA_CHANNEL}>`);
    expect(description).toContain(`**gamma** → <#${GENERAL}>`);

    const unbind = await h.server.sendCommand({ name: 'agent', subcommand: 'unbind', channelId: GENERAL }).waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(unbind.content).toMatch(/gamma\*\* is no longer bound/);
    expect(loadAgentConfig(h.home, 'gamma').channelId).toBeNull();
    const after = await h.server.sendCommand({ name: 'process', subcommand: 'list', channelId: GENERAL }).waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(after.content).toMatch(/^No agent is bound to this channel/);
  });

  it('defers a stop that takes the grace period, then answers with the outcome', async () => {
    const h = await startHarness();
    const fixture = fixturePath('ignores-sigterm.mjs');
    const record = await spawnBackground(h, h.alpha, `${node} ${JSON.stringify(fixture)}`);
    await waitFor(() => h.manager.tail(record.id)?.some((line) => line.text.startsWith('ready')), { timeoutMs: TIMEOUT_MS, what: 'the fixture to start' });
    const sent = h.server.sendCommand({ name: 'process', subcommand: 'kill', options: { pid: record.pid! }, channelId: ALPHA_CHANNEL });
    const reply = await sent.waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(reply.content).toMatch(new RegExp(`^Stopped pid ${record.pid} .* with SIGKILL`));
    expect(sent.responses().map((response) => [response.kind, response.callbackType])).toEqual([['callback', 5], ['edit-original', null]]);
    expect(reply.isEphemeral).toBe(false);
  });

  it('logs an internal error with the command and tells the user it was logged', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'error' }, { write: (line: string) => lines.push(line) });
    const h = await startHarness({
      log,
      wrapDirectory: (directory) => ({
        agentForChannel: (id) => directory.agentForChannel(id),
        load: (name) => directory.load(name),
        bind: (name, id) => directory.bind(name, id),
        unbind: (agent) => directory.unbind(agent),
        list: () => { throw new Error('disk on fire'); },
      }),
    });
    const reply = await h.server.sendCommand({ name: 'agent', subcommand: 'list', channelId: ALPHA_CHANNEL }).waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(reply.isEphemeral).toBe(true);
    expect(reply.content).toBe("Something went wrong running /agent list; it was logged. Try again, or ask an operator to check the bot's log.");
    const logged = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((entry) => entry.msg === 'command failed');
    expect(logged).toMatchObject({ command: '/agent list', channelId: ALPHA_CHANNEL, err: expect.objectContaining({ message: 'disk on fire' }) });
  });
});

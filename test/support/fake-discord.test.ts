import { describe, it, expect, afterEach } from 'vitest';
import {
  ActionRowBuilder, AttachmentBuilder, ButtonBuilder, ButtonStyle, Client, Events, GatewayIntentBits, MessageFlags,
  PermissionFlagsBits, REST, Routes, type Interaction, type Message, type RateLimitData, type TextChannel,
} from 'discord.js';
import { WebSocket } from 'ws';
import { FakeDiscord, type FakeDiscordOptions } from './fake-discord.js';
import { nextEvent, waitFor } from './wait-for.js';

const TIMEOUT_MS = 10_000;
let fake: FakeDiscord | undefined;
const clients: Client[] = [];
const sockets: WebSocket[] = [];
/** Errors from client 'error' events and interaction handlers; tests assert on them rather than crash. */
const clientErrors: unknown[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate();
  for (const client of clients.splice(0)) await client.destroy();
  await fake?.close();
  fake = undefined;
  expect(clientErrors.splice(0)).toEqual([]);
});

function makeClient(server: FakeDiscord): Client {
  const client = new Client({
    intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent],
    rest: { api: server.apiUrl },
  });
  client.on(Events.Error, (error) => clientErrors.push(error));
  clients.push(client);
  return client;
}

async function startBot(options: FakeDiscordOptions = {}): Promise<{ server: FakeDiscord; client: Client }> {
  const server = await FakeDiscord.start(options);
  fake = server;
  const client = makeClient(server);
  const ready = nextEvent(client, Events.ClientReady, () => true, TIMEOUT_MS);
  await client.login(server.token);
  await ready;
  return { server, client };
}

function textChannel(client: Client, id: string): TextChannel {
  const channel = client.channels.cache.get(id);
  if (!channel?.isTextBased() || channel.isDMBased()) throw new Error(`channel ${id} is not a cached guild text channel`);
  return channel as TextChannel;
}

function onInteraction(client: Client, handle: (interaction: Interaction) => Promise<unknown>): void {
  client.on(Events.InteractionCreate, (interaction) => {
    handle(interaction).catch((error: unknown) => clientErrors.push(error));
  });
}

const processCommand = {
  name: 'process',
  description: 'Manage processes',
  options: [{
    type: 1,
    name: 'kill',
    description: 'Kill a process',
    options: [
      { type: 4, name: 'pid', description: 'Process id', required: true, autocomplete: true },
      { type: 5, name: 'force', description: 'SIGKILL at once' },
    ],
  }],
};

describe('FakeDiscord with the real discord.js client', () => {
  it('logs in: /gateway/bot, identify, READY and GUILD_CREATE with channels, roles and the bot member', async () => {
    const { server, client } = await startBot();
    const guild = client.guilds.cache.get(server.guildId);
    expect(client.user?.id).toBe(server.botUserId);
    expect(client.application?.id).toBe(server.applicationId);
    expect(guild?.channels.cache.map((channel) => channel.name).sort()).toEqual(['agent-alpha', 'general']);
    expect(guild?.roles.cache.find((role) => role.name === 'Operators')?.permissions.has(PermissionFlagsBits.ManageGuild)).toBe(true);
    expect(guild?.members.me?.id).toBe(server.botUserId);
    expect(server.gatewayStats).toMatchObject({ identifies: 1, connectedSessions: 1 });
    expect(server.unhandled).toEqual([]);
  });

  it('registers commands and answers a chat-input command with reply, in a guild and in a DM', async () => {
    const { server, client } = await startBot();
    const rest = new REST({ api: server.apiUrl }).setToken(server.token);
    const stored = await rest.put(Routes.applicationGuildCommands(server.applicationId, server.guildId), { body: [processCommand] });
    expect(stored).toEqual([expect.objectContaining({ name: 'process', id: expect.stringMatching(/^\d{17,20}$/) })]);
    onInteraction(client, async (interaction) => {
      if (!interaction.isChatInputCommand()) return;
      const where = interaction.inGuild() ? 'guild' : 'dm';
      const canManage = interaction.memberPermissions?.has(PermissionFlagsBits.ManageGuild) ?? false;
      await interaction.reply({
        content: `${where} ${interaction.options.getSubcommand()} ${interaction.options.getInteger('pid')} force=${interaction.options.getBoolean('force')} manage=${canManage}`,
        flags: MessageFlags.Ephemeral,
      });
    });

    const inGuild = server.sendCommand({ name: 'process', subcommand: 'kill', options: { pid: 42, force: true } });
    const guildReply = await inGuild.waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(guildReply).toMatchObject({ content: 'guild kill 42 force=true manage=true', isEphemeral: true, callbackType: 4 });
    expect(guildReply.flags & MessageFlags.Ephemeral).toBe(MessageFlags.Ephemeral);
    expect(server.messages()).toEqual([]);

    const plainMember = server.sendCommand({ name: 'process', subcommand: 'kill', options: { pid: 7 }, userId: '123456789012345678' });
    expect((await plainMember.waitForReply({ timeoutMs: TIMEOUT_MS })).content).toBe('guild kill 7 force=null manage=false');

    const inDm = server.sendCommand({ name: 'process', subcommand: 'kill', options: { pid: 9 }, isDm: true, userId: '123456789012345678' });
    expect(inDm.payload.guild_id).toBeUndefined();
    expect(inDm.payload.user).toMatchObject({ id: '123456789012345678' });
    expect((await inDm.waitForReply({ timeoutMs: TIMEOUT_MS })).content).toBe('dm kill 9 force=null manage=false');
    expect(server.unhandled).toEqual([]);
    expect(server.rejected).toEqual([]);
  });

  it('follows deferReply (withResponse) with editReply carrying a file', async () => {
    const { server, client } = await startBot();
    let deferredLoading: boolean | null | undefined;
    onInteraction(client, async (interaction) => {
      if (!interaction.isChatInputCommand()) return;
      const response = await interaction.deferReply({ withResponse: true });
      deferredLoading = response.interaction.responseMessageLoading;
      await interaction.editReply({ content: 'logs attached', files: [new AttachmentBuilder(Buffer.from('line 1\nline 2\n'), { name: 'out.log' })] });
    });
    const sent = server.sendCommand({ name: 'process', subcommand: 'logs', options: { pid: 5 } });
    const reply = await sent.waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(reply).toMatchObject({ callbackType: 5, content: 'logs attached', isDeferred: false, isEphemeral: false });
    expect(reply.attachments.map((file) => [file.filename, file.data.toString()])).toEqual([['out.log', 'line 1\nline 2\n']]);
    expect(deferredLoading).toBe(true);
    expect(sent.responses().map((response) => [response.kind, response.status])).toEqual([['callback', 200], ['edit-original', 200]]);
    const encoded = await fetch(`${server.apiUrl}/v10/webhooks/${server.applicationId}/${sent.token}/messages/%40original`);
    expect(await encoded.json()).toMatchObject({ id: reply.messageId, content: 'logs attached' });
    expect(server.unhandled).toEqual([]);
  });

  it('answers autocomplete with respond', async () => {
    const { server, client } = await startBot();
    onInteraction(client, async (interaction) => {
      if (!interaction.isAutocomplete()) return;
      const focused = interaction.options.getFocused(true);
      await interaction.respond([{ name: `${focused.name} starting ${focused.value}`, value: 421 }]);
    });
    const sent = server.sendAutocomplete({ name: 'process', subcommand: 'kill', options: { pid: '42' }, focused: 'pid' });
    const reply = await sent.waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(reply.callbackType).toBe(8);
    expect(reply.choices).toEqual([{ name: 'pid starting 42', value: 421 }]);
  });

  it('updates the message of a pressed button', async () => {
    const { server, client } = await startBot();
    const row = new ActionRowBuilder<ButtonBuilder>().addComponents(
      new ButtonBuilder().setCustomId('proc:kill:1').setLabel('Kill').setStyle(ButtonStyle.Danger),
    );
    const status = await textChannel(client, server.channelId).send({ content: 'running', components: [row] });
    onInteraction(client, async (interaction) => {
      if (!interaction.isButton()) return;
      await interaction.update({ content: `killed by ${interaction.customId} from "${interaction.message.content}"`, components: [] });
    });
    const sent = server.sendButton({ customId: 'proc:kill:1', messageId: status.id });
    expect(sent.payload.message).toMatchObject({ id: status.id, content: 'running' });
    const reply = await sent.waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(reply).toMatchObject({ callbackType: 7, content: 'killed by proc:kill:1 from "running"', components: [], messageId: status.id });
    expect(server.message(status.id)).toMatchObject({ content: reply.content, editCount: 1 });
  });

  it('delivers user messages and replies, and stores posts and edits made with the bot token', async () => {
    const { server, client } = await startBot();
    client.on(Events.MessageCreate, (message: Message) => {
      if (message.author.bot) return;
      const answer = message.reference ? `continuing ${message.reference.messageId}` : `echo ${message.content}`;
      message.reply(answer).catch((error: unknown) => clientErrors.push(error));
    });
    const typing = textChannel(client, server.channelId).sendTyping();
    await expect(typing).resolves.toBeUndefined();

    const question = server.sendMessage({ content: 'hello', authorId: '223456789012345678' });
    const echo = await server.waitForMessage((message) => message.referencedMessageId === question.id, { timeoutMs: TIMEOUT_MS });
    expect(echo).toMatchObject({ content: 'echo hello', authorId: server.botUserId, source: 'bot', type: 19 });

    const followUp = server.sendMessage({ content: 'more', authorId: '223456789012345678', referencedMessageId: echo.id });
    const continued = await server.waitForMessage((message) => message.referencedMessageId === followUp.id, { timeoutMs: TIMEOUT_MS });
    expect(continued.content).toBe(`continuing ${echo.id}`);

    const posted = await textChannel(client, server.channelId).send({
      content: 'status', files: [new AttachmentBuilder(Buffer.from([1, 2, 3]), { name: 'data.bin' })],
    });
    await posted.edit({ content: 'status v2' });
    const edit = await server.waitForEdit((candidate) => candidate.messageId === posted.id, { timeoutMs: TIMEOUT_MS });
    expect(edit.message).toMatchObject({ content: 'status v2', editCount: 1 });
    expect(edit.message.history.map((version) => version.content)).toEqual(['status']);
    expect([...(server.message(posted.id)?.attachments[0]?.data ?? [])]).toEqual([1, 2, 3]);
    const fetched = await textChannel(client, server.channelId).messages.fetch({ message: posted.id, force: true });
    expect(fetched.editedTimestamp).not.toBeNull();
    expect(server.editCount(server.channelId)).toBe(1);
    expect(BigInt(posted.id)).toBeGreaterThan(BigInt(question.id));
    expect(server.unhandled).toEqual([]);
  });

  it('keeps discord.js under an advertised edit limit: it queues by itself and emits rateLimited', async () => {
    const { server, client } = await startBot({ enforceRateLimit: true, editLimit: { count: 5, windowMs: 1_000 } });
    const waits: RateLimitData[] = [];
    client.rest.on('rateLimited', (info) => waits.push(info));
    const message = await textChannel(client, server.channelId).send('v0');
    await Promise.all(Array.from({ length: 7 }, (_, index) => message.edit(`v${index + 1}`)));
    expect(server.editCount(server.channelId)).toBe(7);
    expect(server.maxEditsInWindow(server.channelId, 1_000)).toBeLessThanOrEqual(5);
    expect(waits.length).toBeGreaterThan(0);
    expect(server.rateLimitHits).toBe(0);
  });

  it('serves 429 when the limit is not advertised; discord.js waits and retries', async () => {
    const { server, client } = await startBot({ enforceRateLimit: true, advertiseEditLimit: false, editLimit: { count: 5, windowMs: 1_000 } });
    const waits: RateLimitData[] = [];
    client.rest.on('rateLimited', (info) => waits.push(info));
    const served = nextEvent(server.events, 'rateLimited', () => true, TIMEOUT_MS);
    const message = await textChannel(client, server.channelId).send('v0');
    await Promise.all(Array.from({ length: 7 }, (_, index) => message.edit(`v${index + 1}`)));
    await served;
    expect(server.rateLimitHits).toBeGreaterThan(0);
    expect(server.editCount(server.channelId)).toBe(7);
    expect(server.message(message.id)?.content).toBe('v7');
    expect(waits.length).toBeGreaterThan(0);
    expect(waits[0]).toMatchObject({ scope: 'user', global: false });
  });

  it('answers 10008 after deleteMessage, 30046 after markOld, 50035 for an oversized message', async () => {
    const { server, client } = await startBot();
    const channel = textChannel(client, server.channelId);
    const gone = await channel.send('to be deleted');
    server.deleteMessage(server.channelId, gone.id);
    await expect(gone.edit('nope')).rejects.toMatchObject({ code: 10008, status: 404 });
    const old = await channel.send('old');
    server.markOld(old.id);
    await expect(old.edit('nope')).rejects.toMatchObject({ code: 30046, status: 400 });
    await expect(client.rest.post(Routes.channelMessages(server.channelId), { body: { content: 'x'.repeat(2001) } }))
      .rejects.toMatchObject({ code: 50035 });
    expect(server.rejected.map((request) => request.code)).toEqual([10008, 30046, 50035]);
    expect(server.messages().map((message) => message.content)).toEqual(['old']);
    await expect(client.rest.get('/no/such/route')).rejects.toMatchObject({ status: 404 });
    expect(server.unhandled).toEqual([expect.objectContaining({ method: 'GET', path: '/api/v10/no/such/route' })]);
  });

  it('answers 40060 to a second acknowledgement and 10062 to an expired interaction', async () => {
    const { server, client } = await startBot();
    const errors: unknown[] = [];
    onInteraction(client, async (interaction) => {
      if (!interaction.isChatInputCommand()) return;
      await interaction.reply('first');
      await client.rest.post(Routes.interactionCallback(interaction.id, interaction.token), { body: { type: 4, data: { content: 'again' } }, auth: false })
        .catch((error: unknown) => errors.push(error));
    });
    const sent = server.sendCommand({ name: 'process' });
    await waitFor(() => errors.length > 0, { timeoutMs: TIMEOUT_MS, what: 'the second acknowledgement to fail' });
    expect(errors).toEqual([expect.objectContaining({ code: 40060 })]);
    expect(sent.responses().map((response) => response.status)).toEqual([204, 400]);

    const late = server.sendCommand({ name: 'process', channelId: server.channels[1]?.id });
    server.expireInteraction(late.id);
    await waitFor(() => clientErrors.length > 0, { timeoutMs: TIMEOUT_MS, what: 'the late reply to fail' });
    expect(clientErrors.splice(0)).toEqual([expect.objectContaining({ code: 10062 })]);
    expect(late.responses()[0]?.error?.code).toBe(10062);
  });

  it('rejects a wrong token at /gateway/bot (TokenInvalid) and at IDENTIFY (close 4004)', async () => {
    fake = await FakeDiscord.start({ token: 'right-token' });
    const client = makeClient(fake);
    await expect(client.login('wrong-token')).rejects.toMatchObject({ code: 'TokenInvalid' });

    const socket = new WebSocket(`${fake.gatewayUrl}/?v=10&encoding=json`);
    sockets.push(socket);
    const hello = await nextEvent<[Buffer]>(socket, 'message', () => true, TIMEOUT_MS);
    expect(JSON.parse(hello[0].toString())).toMatchObject({ op: 10, d: { heartbeat_interval: 41_250 } });
    const closed = nextEvent<[number]>(socket, 'close', () => true, TIMEOUT_MS);
    socket.send(JSON.stringify({ op: 2, d: { token: 'wrong-token', intents: 0, properties: {} } }));
    expect((await closed)[0]).toBe(4004);
    expect(fake.gatewayStats.identifies).toBe(0);
  });

  it('lets discord.js resume after a dropped socket and a new client identify after a restart', async () => {
    const { server, client } = await startBot();
    const resumed = nextEvent(client, Events.ShardResume, () => true, TIMEOUT_MS);
    server.dropGateway(4000);
    await resumed;
    expect(server.gatewayStats).toMatchObject({ resumes: 1, identifies: 1 });

    await client.destroy();
    const second = makeClient(server);
    const ready = nextEvent(second, Events.ClientReady, () => true, TIMEOUT_MS);
    await second.login(server.token);
    await ready;
    expect(server.gatewayStats).toMatchObject({ identifies: 2, connectedSessions: 1 });
    onInteraction(second, async (interaction) => {
      if (interaction.isChatInputCommand()) await interaction.reply('from the second client');
    });
    const reply = await server.sendCommand({ name: 'process' }).waitForReply({ timeoutMs: TIMEOUT_MS });
    expect(reply.content).toBe('from the second client');
  });
});

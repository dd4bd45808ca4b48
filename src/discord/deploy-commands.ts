import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { REST, Routes, type APIApplication } from 'discord.js';
import { config as loadDotenv } from 'dotenv';
import { loadConfig } from '../config.js';
import { errorMessage } from '../errors.js';
import { registerCommands } from './register-commands.js';

export interface DeployIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

/** `npm run deploy-commands`: registers /process and /agent in DISCORD_GUILD_ID, or globally without it. */
export async function deployCommands(env: NodeJS.ProcessEnv, io: DeployIo): Promise<number> {
  try {
    const config = loadConfig(env);
    if (!config.discordToken) {
      io.err('deploy-commands: DISCORD_TOKEN is not set (put it in .env or the environment)');
      return 1;
    }
    const rest = new REST(config.discordApiUrl ? { api: config.discordApiUrl } : {}).setToken(config.discordToken);
    const application = await rest.get(Routes.currentApplication()) as APIApplication;
    const result = await registerCommands(rest, application.id, config.discordGuildId);
    const where = result.scope === 'guild'
      ? `in guild ${config.discordGuildId} (available now)`
      : 'globally (Discord may take up to an hour to show them; set DISCORD_GUILD_ID for instant registration while testing)';
    io.out(`registered ${result.names.map((name) => `/${name}`).join(', ')} ${where}`);
    return 0;
  } catch (error) {
    io.err(`deploy-commands: ${errorMessage(error)}`);
    return 1;
  }
}

function isMain(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  loadDotenv({ quiet: true });
  process.exitCode = await deployCommands(process.env, {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  });
}

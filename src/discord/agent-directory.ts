import { existsSync, readdirSync } from 'node:fs';
import type { AgentDirectory } from '../../commands/command.js';
import {
  agentConfigPath, agentsDir, checkAgentName, loadAgentConfig, writeAgentConfig, type AgentConfig,
} from '../agents/agent-config.js';
import type { Logger } from '../logger.js';

export interface FileAgentDirectoryOptions {
  home: string;
  log: Logger;
  /** Re-read agent.json files at most this often, so hand edits (allow-lists) apply without a restart. */
  refreshMs?: number;
  /** Told after /agent bind or unbind wrote a file (the agents layer reloads its view). */
  onChange?: (agent: AgentConfig) => void;
  now?: () => number;
}

/** Agents as their agent.json files say; one bad file is logged and skipped, never blocks the others. */
export class FileAgentDirectory implements AgentDirectory {
  private cache: AgentConfig[] = [];
  private loadedAt = -Infinity;
  private readonly invalid = new Set<string>();
  private readonly now: () => number;

  constructor(private readonly options: FileAgentDirectoryOptions) {
    this.now = options.now ?? Date.now;
  }

  list(): AgentConfig[] {
    if (this.now() - this.loadedAt >= (this.options.refreshMs ?? 2_000)) this.reload();
    return this.cache;
  }

  agentForChannel(channelId: string): AgentConfig | undefined {
    return this.list().find((agent) => agent.channelId === channelId);
  }

  load(name: string): { agent: AgentConfig; exists: boolean } {
    checkAgentName(name, 'name');
    return { agent: loadAgentConfig(this.options.home, name), exists: existsSync(agentConfigPath(this.options.home, name)) };
  }

  bind(name: string, channelId: string): AgentConfig {
    const { agent } = this.load(name);
    for (const other of this.list()) {
      // One agent per channel: a stale binding left in another file is cleared.
      if (other.name !== name && other.channelId === channelId) this.write({ ...other, channelId: null });
    }
    return this.write({ ...agent, channelId });
  }

  unbind(agent: AgentConfig): void {
    this.write({ ...this.load(agent.name).agent, channelId: null });
  }

  private write(agent: AgentConfig): AgentConfig {
    writeAgentConfig(this.options.home, agent);
    this.loadedAt = -Infinity;
    this.options.onChange?.(agent);
    return agent;
  }

  private reload(): void {
    const dir = agentsDir(this.options.home);
    const agents: AgentConfig[] = [];
    const names = existsSync(dir) ? readdirSync(dir, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name) : [];
    for (const name of names.sort()) {
      if (!existsSync(agentConfigPath(this.options.home, name))) continue;
      try {
        agents.push(loadAgentConfig(this.options.home, name));
        this.invalid.delete(name);
      } catch (error) {
        if (!this.invalid.has(name)) this.options.log.warn({ agent: name, err: error }, 'skipping an agent whose agent.json is invalid');
        this.invalid.add(name);
      }
    }
    this.cache = agents;
    this.loadedAt = this.now();
  }
}

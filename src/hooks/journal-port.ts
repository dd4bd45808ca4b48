import { appendFileSync } from 'node:fs';
import type { HookContext, HookPort, SpawnedBranch } from './hook-port.js';

/**
 * The port of a supervisor with no chat front end (`chorus supervise`): actions that need a conversation are
 * written as JSON lines to a journal an operator (or a test) can read, instead of being dropped.
 */
export class JournalPort implements HookPort {
  constructor(private readonly path: string) {}

  async injectContext(context: HookContext): Promise<boolean> {
    this.write('inject_context', context);
    return true;
  }

  async spawnBranch(context: HookContext): Promise<SpawnedBranch> {
    this.write('spawn_branch', context);
    return { branchId: `journal-${context.firingId}`, finished: Promise.resolve() };
  }

  async stopBranch(context: HookContext): Promise<void> {
    this.write('stop_branch', context);
  }

  async notifyChannel(context: HookContext, text: string): Promise<void> {
    this.write('notify_channel', { ...context, text });
  }

  private write(action: string, context: HookContext): void {
    appendFileSync(this.path, `${JSON.stringify({ at: new Date().toISOString(), ...context, journalAction: action })}\n`, { mode: 0o600 });
  }
}

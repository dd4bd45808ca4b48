import { EventEmitter } from 'node:events';
import type { HookContext, HookPort, SpawnedBranch } from '../../src/hooks/hook-port.js';

export interface RecordedAction {
  action: 'inject_context' | 'spawn_branch' | 'stop_branch' | 'notify_channel';
  context: HookContext;
  text?: string;
  at: number;
}

/** A HookPort that records every call (the agents layer's stand-in for engine tests). */
export class RecordingPort extends EventEmitter implements HookPort {
  readonly actions: RecordedAction[] = [];
  /** Branches that exist, for inject_context. */
  readonly branches = new Set<string>();

  private record(action: RecordedAction['action'], context: HookContext, text?: string): void {
    const entry: RecordedAction = { action, context, at: Date.now(), ...(text === undefined ? {} : { text }) };
    this.actions.push(entry);
    this.emit('action', entry);
  }

  async injectContext(context: HookContext): Promise<boolean> {
    if (!context.branchId || !this.branches.has(context.branchId)) return false;
    this.record('inject_context', context);
    return true;
  }

  async spawnBranch(context: HookContext): Promise<SpawnedBranch> {
    this.record('spawn_branch', context);
    return { branchId: `b-${context.firingId}`, finished: Promise.resolve() };
  }

  async stopBranch(context: HookContext): Promise<void> {
    this.record('stop_branch', context);
  }

  async notifyChannel(context: HookContext, text: string): Promise<void> {
    this.record('notify_channel', context, text);
  }
}

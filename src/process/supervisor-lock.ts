import { AppError } from '../errors.js';
import type { SupervisorRepo, SupervisorRow } from '../store/supervisor-repo.js';
import { captureIdentity, checkIdentity } from './identity.js';

export function isHolderAlive(holder: SupervisorRow): boolean {
  // The bot's process group is whatever its launcher gave it, so only pid, start time and boot id are compared.
  return checkIdentity({ pid: holder.pid, pgid: holder.pid, startTicks: holder.startTicks, bootId: holder.bootId }, { checkGroup: false }) === 'alive';
}

/** The supervisor running on this home, if its identity still holds. */
export function runningSupervisor(repo: SupervisorRepo): SupervisorRow | undefined {
  const holder = repo.read();
  return holder && isHolderAlive(holder) ? holder : undefined;
}

/**
 * One supervisor per CHORUS_HOME. The check and the claim happen in one write transaction, so two supervisors
 * starting at once cannot both win; a holder whose identity no longer holds (it crashed) is replaced.
 */
export function acquireSupervisorLock(repo: SupervisorRepo, home: string): void {
  const self = captureIdentity(process.pid);
  if (!self) throw new Error('cannot read /proc/self/stat');
  repo.claimIf((holder) => {
    if (holder && holder.pid !== process.pid && isHolderAlive(holder)) {
      throw new AppError('SUPERVISOR_RUNNING', `pid ${holder.pid} has supervised ${home} since ${holder.startedAt}; stop it first (one supervisor per home)`);
    }
  }, { pid: self.pid, startTicks: self.startTicks, bootId: self.bootId, startedAt: new Date().toISOString() });
}

export function releaseSupervisorLock(repo: SupervisorRepo): void {
  repo.release(process.pid);
}

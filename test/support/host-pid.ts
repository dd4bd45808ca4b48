import { readFileSync } from 'node:fs';
import { environHas, listPids } from '../../src/process/proc-fs.js';
import { runMarker } from '../../src/process/spawn.js';
import type { ProcessRecord } from '../../src/store/process-repo.js';

/** The pids of a process in each pid namespace, outermost first (`NSpid` of /proc/<pid>/status). */
export function namespacePids(pid: number): number[] {
  try {
    const line = /^NSpid:\s*(.+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return line ? line[1]!.trim().split(/\s+/).map(Number) : [];
  } catch {
    return [];
  }
}

/**
 * A pid a process of `record` printed about itself (process.pid) is its pid inside the sandbox's pid namespace; this
 * is its pid on the host, found by its run marker. Unconfined rows print host pids already.
 */
export function hostPid(innerPid: number, record: Pick<ProcessRecord, 'sandbox' | 'runDir'>): number {
  if (record.sandbox === 'none') return innerPid;
  const marker = runMarker(record.runDir);
  for (const pid of listPids()) {
    const pids = namespacePids(pid);
    if (pids.length >= 2 && pids[pids.length - 1] === innerPid && environHas(pid, marker)) return pid;
  }
  throw new Error(`no host process has pid ${innerPid} in the sandbox of ${record.runDir}`);
}

/** Host pids whose argv is exactly `argv` (and not zombies), wherever they run. */
export function pidsRunning(argv: string[]): number[] {
  const wanted = `${argv.join('\0')}\0`;
  return listPids().filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'latin1') === wanted;
    } catch {
      return false;
    }
  });
}

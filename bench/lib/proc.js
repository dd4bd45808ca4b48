// The benchmark's own reads of /proc: CPU seconds of a process (utime + stime), the unit a noisy machine cannot inflate
// the way it inflates wall-clock time.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

let ticks;

export function clockTicksPerSecond() {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

/** CPU seconds a process has used so far (user + system), from /proc/<pid>/stat fields 14 and 15. */
export function cpuSeconds(pid) {
  const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond();
}

/** CPU seconds this process has used so far (user + system, every thread). */
export function selfCpuSeconds() {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** CPU seconds every core spent busy (user, nice, system, irq, softirq, steal), from /proc/stat. */
export function machineBusySeconds() {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = fields;
  return (user + nice + system + irq + softirq + steal) / clockTicksPerSecond();
}

/**
 * Waits until the machine is quiet: under `busyFraction` of its cores busy over each of `quietLooks` looks in a row
 * (`lookMs` apart), at most `timeoutMs`. A case's timed phase starts on a machine the last one's clean-up left alone
 * (1,000 processes ending keep the kernel busy for seconds, and a spawn measured then costs twice the CPU). Resolves
 * with how long it waited, in seconds, and whether it was quiet.
 */
export async function untilQuiet({ busyFraction = 0.1, quietLooks = 4, lookMs = 500, timeoutMs = 60_000 } = {}) {
  const cores = cpus().length;
  const started = Date.now();
  let quiet = 0;
  let last = machineBusySeconds();
  while (quiet < quietLooks && Date.now() - started < timeoutMs) {
    await new Promise((r) => setTimeout(r, lookMs));
    const now = machineBusySeconds();
    quiet = (now - last) / (cores * lookMs / 1000) < busyFraction ? quiet + 1 : 0;
    last = now;
  }
  return { waitedS: Math.round((Date.now() - started) / 100) / 10, isQuiet: quiet >= quietLooks };
}

// Live processes of a home's runs: every process of a run carries its run marker in its environment, except the
// native forker's shim (the forker's child without an exec keeps the forker's empty environment), which is known by
// its stdout, open on the run's stdout.log.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { dirname } from 'node:path';

function nativeShimRun(pid, home) {
  try {
    const target = readlinkSync(`/proc/${pid}/fd/1`);
    return target.startsWith(`${home}/`) && target.endsWith('/stdout.log') ? dirname(target) : null;
  } catch {
    return null;
  }
}

/** `[{ pid, runDir }]` for every live (not zombie) process of a run whose directory lies under `home`. */
export function liveRunProcesses(home) {
  const out = [];
  const needle = `CHORUS_RUN_DIR=${home}/`;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      if (stat[stat.lastIndexOf(')') + 2] === 'Z') continue;
      const environ = readFileSync(`/proc/${name}/environ`, 'utf8');
      const entry = environ.split('\0').find((e) => e.startsWith(needle));
      const runDir = entry ? entry.slice('CHORUS_RUN_DIR='.length) : environ === '' ? nativeShimRun(Number(name), home) : null;
      if (runDir) out.push({ pid: Number(name), runDir });
    } catch { /* gone or not ours */ }
  }
  return out;
}

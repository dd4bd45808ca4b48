// Live processes that carry a home's run marker (every process of a run has it in its environment).
import { readdirSync, readFileSync } from 'node:fs';

/** `[{ pid, runDir }]` for every live (not zombie) process whose CHORUS_RUN_DIR lies under `home`. */
export function liveRunProcesses(home) {
  const out = [];
  const needle = `CHORUS_RUN_DIR=${home}/`;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      if (stat[stat.lastIndexOf(')') + 2] === 'Z') continue;
      const entry = readFileSync(`/proc/${name}/environ`, 'utf8').split('\0').find((e) => e.startsWith(needle));
      if (entry) out.push({ pid: Number(name), runDir: entry.slice('CHORUS_RUN_DIR='.length) });
    } catch { /* gone or not ours */ }
  }
  return out;
}

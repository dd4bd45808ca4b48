import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { trackPid } from './child-cleanup.js';
import { makeTempHome, removeHome } from './temp-home.js';
import { nextEvent, waitFor } from './wait-for.js';

describe('removeHome', () => {
  it('removes a home while something still writes into it for a while (a shim writing its exit file)', async () => {
    const home = makeTempHome();
    const runDir = join(home, 'agents', 'demo', 'processes', '1-x');
    mkdirSync(runDir, { recursive: true });
    for (let i = 0; i < 500; i += 1) writeFileSync(join(runDir, `line-${i}`), 'x');
    // Writes files for 0.5 s, making the directory again when it was removed: rmSync's own retries fail on this.
    const writer = spawn('timeout', ['0.5', 'bash', '-c', `i=0; while :; do mkdir -p '${runDir}'; : > '${runDir}/n'$i; i=$((i+1)); done`], { stdio: 'ignore' });
    trackPid(writer.pid!);
    const ended = nextEvent(writer, 'exit', () => true, 5_000);
    await waitFor(() => existsSync(join(runDir, 'n0')));
    removeHome(home);
    expect(existsSync(home)).toBe(false);
    await ended;
  });
});

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorMessage } from '../errors.js';
import { Forker } from '../process/forker.js';
import { ok, warn, type Check } from './check.js';

const FIX = 'install perl (Debian/Ubuntu: apt-get install perl-base; it is part of every standard system)';

/** Whether processes are started by the forker, from a real launch through it (as the first spawn does). */
export const spawnerCheck: Check = {
  name: 'spawner',
  run: async () => {
    const forker = Forker.find({ path: process.env.PATH });
    const fallback = 'processes are started with Node\'s spawn, which forks the whole supervisor (a few ms more a spawn)';
    if (!forker) return warn(`perl was not found on PATH: ${fallback}`, FIX);
    const dir = mkdtempSync(join(tmpdir(), 'chorus-doctor-'));
    try {
      const exitFile = join(dir, 'exit');
      await forker.launch({
        argv: ['/bin/sh', '-c', 'echo ok > "$1"', 'doctor', exitFile], cwd: dir, env: { PATH: '/usr/bin:/bin' },
        stdoutLog: join(dir, 'stdout.log'), stderrLog: join(dir, 'stderr.log'), exitFile,
      });
      const deadline = Date.now() + 5_000;
      while (Date.now() < deadline) {
        try {
          if (readFileSync(exitFile, 'utf8') === 'ok\n') return ok(`the forker (${forker.perl}) starts processes`);
        } catch { /* not yet */ }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return warn(`the forker answered but its child did not run within 5 s: ${fallback}`, FIX);
    } catch (error) {
      return warn(`the forker cannot run (${errorMessage(error)}): ${fallback}`, FIX);
    } finally {
      forker.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

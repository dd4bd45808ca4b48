import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorMessage } from '../errors.js';
import { Forker, nativeForkerPath } from '../process/forker.js';
import { ok, warn, type Check, type CheckOutcome } from './check.js';

const PERL_FIX = 'install perl (Debian/Ubuntu: apt-get install perl-base; it is part of every standard system)';
const NATIVE_FIX = 'install a C compiler (Debian/Ubuntu: apt-get install gcc), then run npm run build in the checkout';

/**
 * Starts `sh -c 'echo ok'` through `forker`, under its shim when it has one, and waits for the output and the exit
 * status: the whole path a spawn takes. Undefined when it worked, else why not.
 */
async function tryLaunch(forker: Forker): Promise<string | undefined> {
  const dir = mkdtempSync(join(tmpdir(), 'chorus-doctor-'));
  try {
    const exitFile = join(dir, 'exit');
    const stdoutLog = join(dir, 'stdout.log');
    await forker.launch({
      argv: ['/bin/sh', '-c', 'echo ok'], shim: {}, cwd: dir, env: { PATH: '/usr/bin:/bin' },
      stdoutLog, stderrLog: join(dir, 'stderr.log'), exitFile,
    });
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline) {
      if (existsSync(exitFile)) {
        const status = readFileSync(exitFile, 'utf8');
        const output = readFileSync(stdoutLog, 'utf8');
        return status === '0\n' && output === 'ok\n' ? undefined : `its child ended with ${JSON.stringify(status)} and wrote ${JSON.stringify(output)}`;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return 'it answered but its child did not end within 5 s';
  } catch (error) {
    return errorMessage(error);
  } finally {
    forker.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Which forker starts processes, from a real launch through each (as the first spawn does). `native` (the built
 * forker's path, or false) and `path` (where perl is looked for, PATH by default) are for tests.
 */
export function makeSpawnerCheck(options: { native?: string | false; path?: string } = {}): Check {
  return {
    name: 'spawner',
    run: async (): Promise<CheckOutcome> => {
      const perl = Forker.find({ path: options.path ?? process.env.PATH });
      const perlProblem = perl ? await tryLaunch(perl) : 'perl was not found on PATH';
      const fallback = perlProblem === undefined ? `the perl forker (${perl!.program.path})` : `Node's spawn (${perlProblem})`;
      const native = options.native === false ? undefined : Forker.findNative({ path: options.native });
      if (native) {
        const problem = await tryLaunch(native);
        if (problem === undefined) return ok(`the native forker (${native.program.path}) starts processes; the fallback is ${fallback}`);
        return warn(`the native forker (${native.program.path}) cannot run (${problem}): processes are started by ${fallback}`, `${NATIVE_FIX}; if that does not help, report it`);
      }
      const missing = `the native forker was not built (${options.native || nativeForkerPath()})`;
      if (perlProblem === undefined) {
        return warn(`${missing}: processes are started by the perl forker (${perl!.program.path}) and the sh shim, about 2 ms more CPU a spawn`, NATIVE_FIX);
      }
      return warn(`${missing} and ${perlProblem}: processes are started with Node's spawn, which forks the whole supervisor (a few ms more a spawn)`, `${NATIVE_FIX}; or ${PERL_FIX}`);
    },
  };
}

export const spawnerCheck: Check = makeSpawnerCheck();

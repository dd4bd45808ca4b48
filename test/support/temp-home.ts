import { mkdtempSync, rmSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach } from 'vitest';

const homes: string[] = [];
const fileHomes: string[] = [];

/**
 * A shim that is still ending may write its exit file while the home is removed, so the last rmdir finds the directory
 * not empty (ENOTEMPTY). rmSync's own maxRetries retries only that rmdir, never removing what appeared meanwhile, so the
 * whole removal is tried again: up to 2 s in 100 ms steps.
 */
export function removeHome(home: string): void {
  for (let attempt = 1; ; attempt += 1) {
    try {
      rmSync(home, { recursive: true, force: true });
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOTEMPTY' || attempt === 20) throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
}

afterEach(() => {
  for (const home of homes.splice(0)) removeHome(home);
});

afterAll(() => {
  for (const home of fileHomes.splice(0)) removeHome(home);
});

/** A fresh CHORUS_HOME for one test (or, with `untilEndOfFile`, for every test of the file), removed after it. */
export function makeTempHome(prefix = 'chorus-test-', options: { untilEndOfFile?: boolean } = {}): string {
  const home = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  (options.untilEndOfFile ? fileHomes : homes).push(home);
  return home;
}

import { mkdtempSync, rmSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach } from 'vitest';

const homes: string[] = [];
/** A shim that is still ending may write its exit file while the home is removed (ENOTEMPTY): try again briefly. */
const REMOVE = { recursive: true, force: true, maxRetries: 10, retryDelay: 50 } as const;
const fileHomes: string[] = [];

afterEach(() => {
  for (const home of homes.splice(0)) rmSync(home, REMOVE);
});

afterAll(() => {
  for (const home of fileHomes.splice(0)) rmSync(home, REMOVE);
});

/** A fresh CHORUS_HOME for one test (or, with `untilEndOfFile`, for every test of the file), removed after it. */
export function makeTempHome(prefix = 'chorus-test-', options: { untilEndOfFile?: boolean } = {}): string {
  const home = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  (options.untilEndOfFile ? fileHomes : homes).push(home);
  return home;
}

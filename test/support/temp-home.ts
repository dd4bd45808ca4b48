import { mkdtempSync, rmSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

const homes: string[] = [];

afterEach(() => {
  for (const home of homes.splice(0)) rmSync(home, { recursive: true, force: true });
});

/** A fresh CHORUS_HOME for one test, removed after it. */
export function makeTempHome(prefix = 'chorus-test-'): string {
  const home = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  homes.push(home);
  return home;
}

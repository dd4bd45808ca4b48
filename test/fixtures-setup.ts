import { cpSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { sep } from 'node:path';
import { FIXTURES_SOURCE } from './support/fixtures.js';

function isUnder(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir + sep);
}

/** Hidden from confined processes: their /tmp is a private one. */
function isHiddenBySandbox(path: string): boolean {
  const real = realpathSync(path);
  return [...new Set(['/tmp', realpathSync(tmpdir())])].some((dir) => isUnder(real, dir) || isUnder(path, dir));
}

/** vitest globalSetup: fixtures under /tmp are copied for the run to /var/tmp (left in place otherwise), and removed after. */
export default function setup(): () => void {
  if (process.env.CHORUS_TEST_FIXTURES || !isHiddenBySandbox(FIXTURES_SOURCE)) return () => {};
  const copy = mkdtempSync('/var/tmp/chorus-test-fixtures-');
  cpSync(FIXTURES_SOURCE, copy, { recursive: true });
  process.env.CHORUS_TEST_FIXTURES = copy;
  return () => {
    rmSync(copy, { recursive: true, force: true });
    delete process.env.CHORUS_TEST_FIXTURES;
  };
}

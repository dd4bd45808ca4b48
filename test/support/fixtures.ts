import { join } from 'node:path';

/** Where the fixtures are in this checkout. */
export const FIXTURES_SOURCE = join(import.meta.dirname, '..', 'fixtures');

/**
 * The path of a fixture program, readable by a confined process. The sandbox gives every process a private /tmp, so
 * for a checkout under /tmp (a CI clone, say) test/fixtures-setup.ts copies the fixtures for the run to a place it
 * can see, and names it in CHORUS_TEST_FIXTURES.
 */
export function fixture(name: string): string {
  return join(process.env.CHORUS_TEST_FIXTURES ?? FIXTURES_SOURCE, name);
}

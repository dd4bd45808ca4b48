import { accessSync, constants as fsConstants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The first executable `name` on `path` (a PATH value), as a shell would find it; null when there is none. */
export function findOnPath(name: string, path = process.env.PATH ?? ''): string | null {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return null;
}

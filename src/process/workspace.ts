import { mkdirSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { AppError, describeValue } from '../errors.js';

export function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/**
 * Resolves a working directory (relative ones against the workspace), following symlinks, and checks that the
 * real path is a directory inside the real workspace. The libc realpath (one call) rather than Node's, which lstats
 * each component from JavaScript: same answer, a fraction of the cost on every spawn.
 */
export function resolveWorkingDirectory(workspace: string, requested: unknown, field = 'working_directory'): string {
  const root = realpathSync.native(workspace);
  if (requested === undefined || requested === null || requested === '') return root;
  if (typeof requested !== 'string') throw new AppError('INVALID_INPUT', `${field} must be a path string (got ${describeValue(requested)})`);
  const candidate = isAbsolute(requested) ? requested : resolve(root, requested);
  let real: string;
  try {
    real = realpathSync.native(candidate);
  } catch {
    throw new AppError('CWD_MISSING', `${field} ${JSON.stringify(requested)} does not exist`);
  }
  if (!isInside(root, real)) {
    throw new AppError('CWD_OUTSIDE_WORKSPACE', `${field} ${JSON.stringify(requested)} resolves to ${real}, outside the workspace ${root}`);
  }
  if (!statSync(real).isDirectory()) throw new AppError('CWD_MISSING', `${field} ${JSON.stringify(requested)} is not a directory`);
  return real;
}

/** Creates a workspace on first use (0700). */
export function ensureWorkspaceDir(workspace: string): string {
  mkdirSync(workspace, { recursive: true, mode: 0o700 });
  return workspace;
}

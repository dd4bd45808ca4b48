import { AppError, describeValue } from '../errors.js';

export const MAX_COMMAND_BYTES = 16 * 1024;

const SYSTEM_DIRS = '(?:bin|boot|dev|etc|home|lib|lib32|lib64|opt|proc|root|run|sbin|srv|sys|usr|var)';

/**
 * A seat belt against the worst one-liners, not a security boundary: a determined command gets past any list.
 * Each entry says what it stops, for the error message.
 */
const BLOCKLIST: ReadonlyArray<{ pattern: RegExp; reason: string }> = [
  {
    pattern: new RegExp(`\\brm\\s+(?:-[^\\s]*\\s+)*-[a-zA-Z]*[rR][a-zA-Z]*\\s+(?:-[^\\s]*\\s+)*(?:"|')?(?:/|/\\*|~|~/|~/\\*|\\$HOME|\\$\\{HOME\\}|/${SYSTEM_DIRS})/?(?:"|')?(?=$|[\\s;&|)])`),
    reason: 'recursive delete of /, the home directory or a system directory',
  },
  { pattern: /--no-preserve-root/, reason: 'recursive delete of /' },
  { pattern: /\bmkfs(?:\.\w+)?\b|\bmke2fs\b|\bwipefs\b/, reason: 'formatting a filesystem' },
  { pattern: /\bdd\b[^\n;&|]*\bof=\/dev\/(?!null\b|zero\b|stdout\b|stderr\b)/, reason: 'dd onto a device' },
  { pattern: />\s*\/dev\/(?:sd|hd|vd|xvd|nvme|mmcblk|dm-|md|loop)\w*/, reason: 'writing to a block device' },
  { pattern: /\bshred\b[^\n;&|]*\/dev\//, reason: 'shredding a device' },
  { pattern: /:\s*\(\s*\)\s*\{[^}]*:\s*\|\s*:[^}]*&/, reason: 'a fork bomb' },
  { pattern: /\b(\w+)\s*\(\s*\)\s*\{[^}]*\b\1\s*\|\s*\1\b[^}]*&/, reason: 'a fork bomb' },
  { pattern: /(?:^|[;&|]\s*|\bsudo\s+)(?:shutdown|reboot|halt|poweroff)\b/, reason: 'shutting the machine down' },
  { pattern: /\bkill\s+(?:-\w+\s+)*-1\b/, reason: 'signalling every process' },
  { pattern: /\bchmod\s+(?:-\w+\s+)*-[a-zA-Z]*R[a-zA-Z]*\s+\S+\s+\/(?=$|\s)/, reason: 'recursive chmod of /' },
];

/** Checks a command before anything is spawned; throws a one-line error naming the problem. */
export function checkCommand(command: unknown, field = 'command'): string {
  if (typeof command !== 'string') throw new AppError('COMMAND_EMPTY', `${field} must be a string (got ${describeValue(command)})`);
  if (!command.trim()) throw new AppError('COMMAND_EMPTY', `${field} must not be empty`);
  const bytes = Buffer.byteLength(command);
  if (bytes > MAX_COMMAND_BYTES) throw new AppError('COMMAND_TOO_LONG', `${field} is ${bytes} bytes; the limit is ${MAX_COMMAND_BYTES}`);
  if (command.includes('\0')) throw new AppError('INVALID_INPUT', `${field} must not contain NUL bytes`);
  for (const { pattern, reason } of BLOCKLIST) {
    if (pattern.test(command)) throw new AppError('COMMAND_BLOCKED', `${field} looks like ${reason}; Chorus refuses it`);
  }
  return command;
}

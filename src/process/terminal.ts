import { existsSync } from 'node:fs';
import { AppError } from '../errors.js';

/** util-linux `script` gives a command a pseudo-terminal without a native module. */
const SCRIPT_PATHS = ['/usr/bin/script', '/bin/script'];

let scriptPath: string | null | undefined;

/** Where `script` is, looked up at run time (once). */
export function findScript(): string | null {
  if (scriptPath === undefined) scriptPath = SCRIPT_PATHS.find((p) => existsSync(p)) ?? null;
  return scriptPath;
}

/** Quotes one word for /bin/sh. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * Wraps an argv so it runs under a pseudo-terminal: `script -q` (no banner), `-e` (its exit status is the
 * command's), `-f` (output flushed as it comes), `-E auto` (the terminal echoes what is typed), the transcript thrown
 * away (`/dev/null`): the output goes to script's own stdout, the run's log file. script runs its -c string with
 * $SHELL, so SHELL is pinned to /bin/sh by the caller's environment.
 */
export function terminalArgv(inner: string[], script: string | null = findScript()): string[] {
  if (!script) {
    throw new AppError('TTY_UNAVAILABLE', 'tty needs util-linux `script`, which is not installed: install it (Debian/Ubuntu: apt-get install bsdutils; Fedora/Arch: util-linux), or start the process without tty');
  }
  // exec: script's own shell steps aside, so a signal meant for the command does not also end that shell.
  return [script, '-q', '-e', '-f', '-E', 'auto', '-c', `exec ${inner.map(shellQuote).join(' ')}`, '/dev/null'];
}

/** Terminal escape sequences (CSI, OSC, two-byte ESC sequences) and stray carriage returns, for what people read. */
// eslint-disable-next-line no-control-regex
const ESCAPES = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b[PX^_][^\u001b]*\u001b\\|\u001b[@-Z\\-_]|\u001b[()*+][0-9A-Za-z]|[\u0000-\u0008\u000b\u000c\u000e-\u001a\u001c-\u001f\u007f]/g;

/** A terminal line as people read it: escape sequences gone, a line redrawn after `\r` shows its last state. */
export function stripTerminal(text: string): string {
  let clean = text.replace(ESCAPES, '');
  if (clean.includes('\r')) {
    const parts = clean.split('\r').filter((p) => p.length > 0);
    clean = parts.length ? parts[parts.length - 1]! : '';
  }
  return clean;
}

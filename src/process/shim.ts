import { existsSync } from 'node:fs';

/**
 * The shim stays the command's parent for its whole life and writes its exit status to a file, so the status
 * survives a supervisor that was SIGKILLed. It traps TERM with a handler (not SIG_IGN, which children would
 * inherit), keeps waiting for the command, and still records how it ended. It stays outside every sandbox.
 *   $1 exit file, then the launcher argv: wrappers (a sandbox) first, the command's shell last
 */
export const SHIM_SCRIPT = [
  "trap ':' TERM INT",
  'f=$1; shift',
  '"$@"',
  's=$?',
  'printf \'%s\\n\' "$s" > "$f.tmp" && mv -f "$f.tmp" "$f"',
  'exit "$s"',
].join('\n');

export const SHIM_NAME = 'chorus-shim';

function firstExisting(paths: string[]): string | undefined {
  return paths.find((path) => existsSync(path));
}

let shellPath: string | undefined;
let stdbufPath: string | null | undefined;

/** Commands run in bash when the machine has it (what models write assumes it), else /bin/sh. */
export function commandShell(): string {
  shellPath ??= firstExisting(['/bin/bash', '/usr/bin/bash']) ?? '/bin/sh';
  return shellPath;
}

export function stdbuf(): string | null {
  if (stdbufPath === undefined) stdbufPath = firstExisting(['/usr/bin/stdbuf', '/bin/stdbuf']) ?? null;
  return stdbufPath;
}

/** The command's own argv: line-buffered where stdbuf exists, in the command shell. */
export function commandArgv(command: string): string[] {
  const buffering = stdbuf();
  return [...(buffering ? [buffering, '-oL', '-eL'] : []), commandShell(), '-c', command];
}

/** The shim's arguments for /bin/sh: it runs `launcher` (wrapper prefixes, then the command argv). */
export function shimArgs(exitFile: string, launcher: string[]): string[] {
  return ['-c', SHIM_SCRIPT, SHIM_NAME, exitFile, ...launcher];
}

/** The exit status the shim wrote, or undefined while there is none (or it is half-written). */
export function parseExitFile(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^\d{1,3}$/.test(trimmed)) return undefined;
  return Number(trimmed);
}

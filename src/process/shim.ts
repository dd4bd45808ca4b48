import { existsSync } from 'node:fs';

/**
 * The shim stays the command's parent for its whole life and writes its exit status to a file, so the status
 * survives a supervisor that was SIGKILLed. It traps TERM with a handler (not SIG_IGN, which children would
 * inherit), keeps waiting for the command, and still records how it ended.
 *   $1 exit file, $2 shell, $3 command, $4 stdbuf ('' when absent)
 */
export const SHIM_SCRIPT = [
  "trap ':' TERM INT",
  'if [ -n "$4" ]; then "$4" -oL -eL "$2" -c "$3"; else "$2" -c "$3"; fi',
  's=$?',
  'printf \'%s\\n\' "$s" > "$1.tmp" && mv -f "$1.tmp" "$1"',
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

export function shimArgs(command: string, exitFile: string): string[] {
  return ['-c', SHIM_SCRIPT, SHIM_NAME, exitFile, commandShell(), command, stdbuf() ?? ''];
}

/** The exit status the shim wrote, or undefined while there is none (or it is half-written). */
export function parseExitFile(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^\d{1,3}$/.test(trimmed)) return undefined;
  return Number(trimmed);
}

import { existsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';

/** Every signal the shim catches: all but those that cannot be caught (KILL, STOP) or that it needs (CHLD). */
const UNCATCHABLE = new Set(['SIGKILL', 'SIGSTOP', 'SIGCHLD', 'SIGCLD']);
const CAUGHT_SIGNALS = [...new Set(Object.entries(osConstants.signals)
  .filter(([name]) => !UNCATCHABLE.has(name))
  .map(([, n]) => n))]
  .sort((a, b) => a - b)
  .join(' ');

/**
 * The shim stays the command's parent for its whole life and writes its exit status to a file, so the status
 * survives a supervisor that was SIGKILLed. It stays outside every sandbox. It catches every catchable signal sent to
 * its group with a handler (not SIG_IGN, which the command would inherit): a signal meant for the command never ends
 * the shim, whose trap runs only once the command (run in the foreground) has ended.
 * For an interactive process a helper holds the stdin FIFO open for writing (so the command sees EOF only when asked:
 * a line on the control FIFO ends the helper) and ignores the group's signals; it is killed when the command ends.
 * The FIFO is opened here, outside the sandbox: the command gets it as its stdin descriptor.
 *   $1 exit file, $2 stdin FIFO ('' when not interactive), $3 control FIFO, then the launcher argv: wrappers (a
 *   sandbox, a terminal) first, the command's shell last
 */
export const SHIM_SCRIPT = [
  'f=$1; i=$2; c=$3; shift 3',
  `trap ':' ${CAUGHT_SIGNALS}`,
  'if [ -n "$i" ]; then',
  `  (trap '' ${CAUGHT_SIGNALS}; exec 3<>"$i" 4<>"$c"; read -r _ <&4) &`,
  '  h=$!',
  '  "$@" <"$i"',
  '  s=$?',
  '  kill -9 "$h" 2>/dev/null',
  'else',
  '  "$@"',
  '  s=$?',
  'fi',
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

/** The command's own argv: line-buffered where stdbuf exists (not under a terminal, which buffers by lines), in the command shell. */
export function commandArgv(command: string, options: { isLineBuffered?: boolean } = {}): string[] {
  const buffering = (options.isLineBuffered ?? true) ? stdbuf() : null;
  return [...(buffering ? [buffering, '-oL', '-eL'] : []), commandShell(), '-c', command];
}

/** The stdin FIFO and the control FIFO of an interactive process. */
export interface ShimInput {
  fifo: string;
  control: string;
}

/** The shim's arguments for /bin/sh: it runs `launcher` (wrapper prefixes, then the command argv). */
export function shimArgs(exitFile: string, launcher: string[], input?: ShimInput): string[] {
  return ['-c', SHIM_SCRIPT, SHIM_NAME, exitFile, input?.fifo ?? '', input?.control ?? '', ...launcher];
}

/** The exit status the shim wrote, or undefined while there is none (or it is half-written). */
export function parseExitFile(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^\d{1,3}$/.test(trimmed)) return undefined;
  return Number(trimmed);
}

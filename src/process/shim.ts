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
 * The sh shim: it stays the command's parent for its whole life and writes its exit status to a file, so the status
 * survives a supervisor that was SIGKILLed. Where the native forker was built (native/forker.c), its own child is the
 * shim of every process that is not interactive, doing the same without this script's exec of /bin/sh; the perl
 * forker and Node's spawn always run this one, as does the native forker for an interactive process. It stays outside every sandbox. It catches every catchable signal sent to
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
  // A fresh temporary file, never written through a link someone left in the run directory (noclobber: O_EXCL).
  'rm -f "$f.tmp"; (set -C; printf \'%s\\n\' "$s" > "$f.tmp") && mv -f "$f.tmp" "$f"',
  'exit "$s"',
].join('\n');

export const SHIM_NAME = 'chorus-shim';

function firstExisting(paths: string[]): string | undefined {
  return paths.find((path) => existsSync(path));
}

let shellPath: string | undefined;
let stdbufPath: string | null | undefined;
let libstdbufPath: string | null | undefined;

/** Commands run in bash when the machine has it (what models write assumes it), else /bin/sh. */
export function commandShell(): string {
  shellPath ??= firstExisting(['/bin/bash', '/usr/bin/bash']) ?? '/bin/sh';
  return shellPath;
}

export function stdbuf(): string | null {
  if (stdbufPath === undefined) stdbufPath = firstExisting(['/usr/bin/stdbuf', '/bin/stdbuf']) ?? null;
  return stdbufPath;
}

/** coreutils' preload library behind stdbuf (where Debian, Fedora and Arch put it). */
export function libstdbuf(): string | null {
  if (libstdbufPath === undefined) {
    libstdbufPath = firstExisting(['/usr/libexec/coreutils/libstdbuf.so', '/usr/lib/coreutils/libstdbuf.so', '/usr/lib64/coreutils/libstdbuf.so']) ?? null;
  }
  return libstdbufPath;
}

/**
 * Words a shell would run as they are: no quoting, expansion, redirection, operator, assignment or comment. The
 * first word is no builtin or keyword of bash or of the shim's shell, whose meaning would change without bash.
 */
const PLAIN_WORDS = /^[A-Za-z0-9_./:,@%+=-]+(?:[ \t]+[A-Za-z0-9_./:,@%+=-]+)*$/;
const SHELL_WORDS = new Set([
  // bash and dash builtins
  '.', ':', '[', 'alias', 'bg', 'bind', 'break', 'builtin', 'caller', 'cd', 'chdir', 'command', 'compgen', 'complete',
  'compopt', 'continue', 'declare', 'dirs', 'disown', 'echo', 'enable', 'eval', 'exec', 'exit', 'export', 'false', 'fc',
  'fg', 'getopts', 'hash', 'help', 'history', 'jobs', 'kill', 'let', 'local', 'logout', 'mapfile', 'popd', 'printf',
  'pushd', 'pwd', 'read', 'readarray', 'readonly', 'return', 'set', 'shift', 'shopt', 'source', 'suspend', 'test',
  'times', 'trap', 'true', 'type', 'typeset', 'ulimit', 'umask', 'unalias', 'unset', 'wait',
  // bash keywords
  'if', 'then', 'else', 'elif', 'fi', 'case', 'esac', 'for', 'select', 'while', 'until', 'do', 'done', 'in',
  'function', 'time', 'coproc',
]);

/** The argv of a command made only of plain words (`npm test`, `sleep 60`), run without a shell; else null. */
export function plainArgv(command: string): string[] | null {
  const trimmed = command.trim();
  if (!PLAIN_WORDS.test(trimmed)) return null;
  const words = trimmed.split(/[ \t]+/);
  const first = words[0]!;
  return first.includes('=') || first.startsWith('-') || SHELL_WORDS.has(first) ? null : words;
}

/** Variables the shell reads before the command, which a run without bash would skip: they keep bash. */
const BASH_STARTUP = ['BASH_ENV', 'ENV', 'SHELLOPTS', 'BASHOPTS'];

/**
 * The command's own argv, and the variables it needs. Line buffering is what `stdbuf -oL -eL` sets up (its preload
 * library, told by _STDBUF_O/_STDBUF_E), without stdbuf's exec; stdbuf itself where the library is not found. A
 * command of plain words is run directly, as bash -c would exec it, without starting bash: what differs is only
 * bash's own variables (`_`, SHLVL) and the wording of "not found". Everything else runs in the command shell.
 */
export function commandArgv(
  command: string,
  options: { isLineBuffered?: boolean; env?: Record<string, string> } = {},
): { argv: string[]; env: Record<string, string> } {
  const env: Record<string, string> = {};
  const prefix: string[] = [];
  if (options.isLineBuffered ?? true) {
    const library = libstdbuf();
    if (library) {
      const preload = options.env?.LD_PRELOAD;
      Object.assign(env, { LD_PRELOAD: preload ? `${preload}:${library}` : library, _STDBUF_O: 'L', _STDBUF_E: 'L' });
    } else {
      const runner = stdbuf();
      if (runner) prefix.push(runner, '-oL', '-eL');
    }
  }
  const isPlainAllowed = !BASH_STARTUP.some((name) => options.env?.[name] !== undefined);
  const plain = isPlainAllowed ? plainArgv(command) : null;
  return { argv: [...prefix, ...(plain ?? [commandShell(), '-c', command])], env };
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

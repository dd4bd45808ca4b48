import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants as fsConstants, openSync } from 'node:fs';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AppError, errorMessage } from '../errors.js';
import { findOnPath } from './find-program.js';
import { readStat } from './proc-fs.js';
import { shimArgs, type ShimInput } from './shim.js';

/** What starts a process: its argv, where it runs, its whole environment and its two logs. */
export interface LaunchRequest {
  /** The program (absolute, or found on `env`'s PATH) and its arguments. */
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  stdoutLog: string;
  stderrLog: string;
  /** Written with 127 when the program could not be started at all, as the shim would have. */
  exitFile: string;
  /**
   * Run argv under the shim, which stays its parent and writes its exit status to exitFile (`input`: the FIFOs of an
   * interactive process). Without it argv is exec'd as it is.
   */
  shim?: { input?: ShimInput | undefined } | undefined;
}

/** The argv that runs a request through the sh shim (src/process/shim.ts) when it asks for a shim. */
export function shellShimArgv(request: LaunchRequest): string[] {
  return request.shim ? ['/bin/sh', ...shimArgs(request.exitFile, request.argv, request.shim.input)] : request.argv;
}

/**
 * Starts shims, each detached in its own session (pgid = sid = pid) with stdin on /dev/null and its two logs opened
 * for appending (0600). Resolves with the pid once the process leads its session.
 */
export interface ShimLauncher {
  readonly kind: 'native' | 'perl' | 'node';
  launch(request: LaunchRequest): Promise<number>;
  /** Marks the directory the run directories are made in for the allocator, where the launcher can (see Forker). */
  markTopDirectory?(dir: string): Promise<boolean>;
  close(): void;
}

/** The forker cannot run here (perl missing or broken): nothing was launched, and Node's spawn should take over. */
export class ForkerUnavailableError extends AppError {
  constructor(message: string) {
    super('SPAWN_FAILED', message);
  }
}

/** The launch may have happened (the forker died after the request reached it): the caller must look for it. */
export class LaunchUncertainError extends AppError {
  constructor(message: string) {
    super('SPAWN_FAILED', message);
  }
}

/**
 * The forker: a small process that forks the shims, so the supervisor never forks its own large heap (2 to 3 ms a
 * spawn on a 2-core VM, more as the heap grows). Two programs speak its protocol: the native forker
 * (native/forker.c, built into dist/native/ where a C compiler is) and a perl script (perl-base is Essential on Debian
 * and Ubuntu). It reads framed requests on stdin (a 4-byte big-endian length, then NUL-separated fields: mode, cwd,
 * stdout log, stderr log, exit file, argc, argv, then the environment as K=V), and answers each with a line: the pid,
 * or `E <why>`.
 * The child leads a new session before the answer is written (a sync pipe closes after setsid), so the identity read
 * next sees pgid = pid. It exits without exec when the forker died before answering (the request then failed). Ignored
 * signals are reset to their defaults before exec, and every descriptor but 0 to 2 is closed, even one the supervisor
 * itself inherited without close-on-exec (which Node's spawn would pass on). Mode `exec` execs argv; mode `shim`
 * (native only) makes the child the shim itself, without the exec of /bin/sh: see native/forker.c.
 * The forker holds no secrets: it starts with an empty environment and gives each child exactly the one it is sent.
 * It ends when its stdin closes, so a supervisor that dies takes it along; the processes it started stay.
 */
export const FORKER_SCRIPT = String.raw`
use strict; use POSIX ();
$SIG{CHLD} = 'IGNORE';
$SIG{$_} = 'IGNORE' for qw(INT HUP QUIT PIPE TERM);
my $me = $$;
sub readn { my ($n) = @_; my $b = ''; while (length($b) < $n) { my $r = sysread(STDIN, $b, $n - length($b), length($b)); return undef unless $r; } return $b; }
sub answer { my ($s) = @_; syswrite(STDOUT, "$s\n") or exit 0; }
answer('ready');
while (defined(my $h = readn(4))) {
  my $body = readn(unpack('N', $h)); last unless defined $body;
  my ($mode, $cwd, $out, $err, $exit, $argc, @rest) = split(/\0/, $body, -1);
  if ($mode ne 'exec') { answer("E mode $mode is not known to the perl forker"); next; }
  my @argv = splice(@rest, 0, $argc);
  my ($r, $w);
  unless (pipe($r, $w)) { answer("E pipe: $!"); next; }
  my $pid = fork();
  unless (defined $pid) { my $why = "$!"; close $r; close $w; answer("E fork: $why"); next; }
  if ($pid == 0) {
    close $r;
    POSIX::setsid();
    close $w;
    $SIG{$_} = 'DEFAULT' for qw(CHLD INT HUP QUIT PIPE TERM);
    my $fail = sub {
      my $why = "chorus: $_[0]: $!\n";
      syswrite(STDERR, $why);
      if (open(my $f, '>', "$exit.tmp")) { print $f "127\n"; close $f; rename("$exit.tmp", $exit); }
      POSIX::_exit(127);
    };
    sysopen(my $e, $err, POSIX::O_WRONLY | POSIX::O_APPEND | POSIX::O_CREAT, 0600) or $fail->("cannot open $err");
    POSIX::dup2(fileno($e), 2) or $fail->('cannot redirect stderr');
    sysopen(my $o, $out, POSIX::O_WRONLY | POSIX::O_APPEND | POSIX::O_CREAT, 0600) or $fail->("cannot open $out");
    POSIX::dup2(fileno($o), 1) or $fail->('cannot redirect stdout');
    open(STDIN, '<', '/dev/null') or $fail->('cannot open /dev/null');
    chdir($cwd) or $fail->("cannot enter $cwd");
    if (opendir(my $d, '/proc/self/fd')) { my @fds = grep { /^\d+$/ && $_ > 2 } readdir($d); closedir($d); POSIX::close($_) for @fds; }
    POSIX::_exit(127) if getppid() != $me;
    %ENV = ();
    for (@rest) { my ($k, $v) = split(/=/, $_, 2); $ENV{$k} = $v; }
    { no warnings; exec { $argv[0] } @argv; }
    $fail->("cannot run $argv[0]");
  }
  close $w;
  my $x; sysread($r, $x, 1);
  close $r;
  answer($pid);
}
`;

/** The ready line of the native forker built from this version of native/forker.c (its PROTOCOL). */
export const NATIVE_READY = 'ready native 3';

/** perl on `path` (the supervisor's PATH), as a shell would find it. */
export function findPerl(path = process.env.PATH ?? ''): string | undefined {
  return findOnPath('perl', path) ?? undefined;
}

/** Where native/build.js puts the native forker: dist/native/ of this checkout (this module runs from src/ or dist/src/). */
export function nativeForkerPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const isBuilt = here.endsWith(join('dist', 'src', 'process'));
  return isBuilt ? join(here, '..', '..', 'native', 'chorus-forker') : join(here, '..', '..', 'dist', 'native', 'chorus-forker');
}

/** The native forker, when it was built and can be run. */
export function findNativeForker(path = nativeForkerPath()): string | undefined {
  try {
    accessSync(path, fsConstants.X_OK);
    return path;
  } catch {
    return undefined;
  }
}

/** A program that speaks the forker's protocol. */
export interface ForkerProgram {
  kind: 'native' | 'perl';
  path: string;
  args: string[];
  /** The line it says when it is ready to serve. */
  ready: string;
  /** It can be the shim itself (mode `shim`), so a request needs no /bin/sh. */
  hasResidentShim: boolean;
}

export function perlProgram(perl: string): ForkerProgram {
  return { kind: 'perl', path: perl, args: ['-e', FORKER_SCRIPT], ready: 'ready', hasResidentShim: false };
}

export function nativeProgram(path: string): ForkerProgram {
  return { kind: 'native', path, args: [], ready: NATIVE_READY, hasResidentShim: true };
}

function frame(mode: 'exec' | 'shim', argv: string[], request: LaunchRequest): Buffer {
  for (const [name, value] of [['cwd', request.cwd], ['stdoutLog', request.stdoutLog], ['stderrLog', request.stderrLog], ['exitFile', request.exitFile], ...argv.map((a) => ['argv', a])]) {
    if (value!.includes('\0')) throw new AppError('SPAWN_FAILED', `${name} contains a NUL byte`);
  }
  const env = Object.entries(request.env).map(([key, value]) => `${key}=${value}`);
  if (env.some((entry) => entry.includes('\0'))) throw new AppError('SPAWN_FAILED', 'an environment variable contains a NUL byte');
  return framed([mode, request.cwd, request.stdoutLog, request.stderrLog, request.exitFile, String(argv.length), ...argv, ...env]);
}

/** A request as the forker reads it: a 4-byte big-endian length, then the fields separated by NUL. */
function framed(fields: string[]): Buffer {
  const body = Buffer.from(fields.join('\0'));
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length);
  return Buffer.concat([header, body]);
}

interface Pending {
  resolve: (line: string) => void;
  reject: (error: Error) => void;
}

/** Shims started through a forker program (one Generation, a process, at a time). */
export class Forker implements ShimLauncher {
  private current: Generation | null = null;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(readonly program: ForkerProgram, private readonly idleMs: number) {}

  get kind(): 'native' | 'perl' {
    return this.program.kind;
  }

  /** The perl forker if perl is on `path` (whether it runs the script is seen when the first launch starts it). */
  static find(options: { perl?: string | undefined; path?: string | undefined; idleMs?: number | undefined } = {}): Forker | undefined {
    const perl = options.perl ?? findPerl(options.path);
    return perl ? new Forker(perlProgram(perl), options.idleMs ?? 30_000) : undefined;
  }

  /** The native forker if it was built (whether it is this version's is seen when the first launch starts it). */
  static findNative(options: { path?: string | undefined; idleMs?: number | undefined } = {}): Forker | undefined {
    const path = findNativeForker(options.path);
    return path ? new Forker(nativeProgram(path), options.idleMs ?? 30_000) : undefined;
  }

  async launch(request: LaunchRequest): Promise<number> {
    // The native forker is the shim of a process that needs no helper for its input; the sh shim runs the others.
    const isResident = this.program.hasResidentShim && request.shim !== undefined && request.shim.input === undefined;
    const message = isResident ? frame('shim', request.argv, request) : frame('exec', shellShimArgv(request), request);
    const line = await this.send(message);
    const pid = Number(line);
    if (!Number.isInteger(pid) || pid <= 1) throw new AppError('SPAWN_FAILED', `the forker answered ${JSON.stringify(line)}`);
    return pid;
  }

  /**
   * Marks `dir` as the top of a directory hierarchy for ext4's allocator (chattr +T), through the native forker:
   * the run directories made in it then go to block groups with free inodes (see native/forker.c). Resolves to
   * whether it was marked; a file system without the flag, or a forker without the request, answers false.
   */
  async markTopDirectory(dir: string): Promise<boolean> {
    if (!this.program.hasResidentShim) return false;
    if (dir.includes('\0')) throw new AppError('SPAWN_FAILED', 'the directory contains a NUL byte');
    try {
      return (await this.send(framed(['topdir', dir]))) === 'ok';
    } catch (error) {
      if (error instanceof ForkerUnavailableError || error instanceof LaunchUncertainError) throw error;
      return false;
    }
  }

  private send(message: Buffer): Promise<string> {
    // One killed while idle may not have been reaped yet: a request written to it would be lost. (One with requests
    // in flight is not looked at: its exit fails them all, this one too, and the spawn looks for what it started.)
    if (this.current?.isIdle() && !this.current.isLive()) this.current = null;
    this.current ??= new Generation(this.program, () => this.onIdle());
    const generation = this.current;
    clearTimeout(this.idleTimer);
    return generation.send(message);
  }

  /** Ends the forker (it exits when its stdin closes); the processes it started stay. */
  close(): void {
    clearTimeout(this.idleTimer);
    this.current?.close();
    this.current = null;
  }

  private onIdle(): void {
    clearTimeout(this.idleTimer);
    const generation = this.current;
    this.idleTimer = setTimeout(() => {
      if (this.current === generation && generation?.isIdle()) this.close();
    }, this.idleMs);
    this.idleTimer.unref();
  }
}

/** One forker process: its requests are answered in order, and failed with it when it dies. */
class Generation {
  private readonly child: ChildProcess;
  private readonly ready: Promise<void>;
  private readonly pending: Pending[] = [];
  private buffered = '';
  private isReady = false;

  constructor(private readonly program: ForkerProgram, private readonly onIdle: () => void) {
    const child = spawn(program.path, program.args, { env: {}, stdio: ['pipe', 'pipe', 'inherit'] });
    this.child = child;
    this.ready = new Promise<void>((resolve, reject) => {
      child.stdout!.setEncoding('utf8');
      child.stdout!.on('data', (text: string) => {
        this.buffered += text;
        for (let at = this.buffered.indexOf('\n'); at >= 0; at = this.buffered.indexOf('\n')) {
          const line = this.buffered.slice(0, at);
          this.buffered = this.buffered.slice(at + 1);
          if (this.isReady) this.answer(line);
          else if (line === this.program.ready) {
            this.isReady = true;
            resolve();
          } else reject(new ForkerUnavailableError(`the ${this.program.kind} forker said ${JSON.stringify(line)} instead of ${JSON.stringify(this.program.ready)}`));
        }
      });
      child.stdin!.on('error', () => { /* it died: seen through 'exit' */ });
      child.on('error', (error) => reject(new ForkerUnavailableError(`the ${program.kind} forker could not start: ${errorMessage(error)}`)));
      child.on('exit', (code, signal) => {
        const how = signal ?? `code ${code}`;
        if (!this.isReady) reject(new ForkerUnavailableError(`the ${program.kind} forker exited at start (${how})`));
        for (const waiting of this.pending.splice(0)) waiting.reject(new LaunchUncertainError(`the forker ended (${how}) before it answered`));
      });
    });
    this.ready.catch(() => { /* the sender sees it */ });
  }

  /** Resolves with the answer's line; an `E <why>` answer rejects with the why. */
  async send(message: Buffer): Promise<string> {
    this.hold(true);
    try {
      await this.ready;
    } catch (error) {
      this.hold(false);
      throw error;
    }
    return new Promise<string>((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.child.stdin!.write(message);
    });
  }

  isIdle(): boolean {
    return this.pending.length === 0;
  }

  /** Running, and not a zombie waiting to be reaped. */
  isLive(): boolean {
    const { pid } = this.child;
    if (pid === undefined || this.child.exitCode !== null || this.child.signalCode !== null) return false;
    const state = readStat(pid)?.state;
    return state !== undefined && state !== 'Z' && state !== 'X';
  }

  close(): void {
    this.child.stdin?.end();
    this.hold(false);
  }

  private answer(line: string): void {
    const waiting = this.pending.shift();
    if (!waiting) return;
    if (line.startsWith('E ')) waiting.reject(new AppError('SPAWN_FAILED', line.slice(2)));
    else waiting.resolve(line);
    if (this.pending.length === 0) {
      this.hold(false);
      this.onIdle();
    }
  }

  /** Keeps the event loop alive while an answer is due; idle, the forker holds nothing. */
  private hold(isBusy: boolean): void {
    for (const handle of [this.child, this.child.stdin as Socket | null, this.child.stdout as Socket | null]) {
      if (isBusy) handle?.ref();
      else handle?.unref();
    }
  }
}

/** Shims started with Node's own spawn: where no perl is (the supervisor forks itself, 2 to 3 ms a spawn). */
export class NodeLauncher implements ShimLauncher {
  readonly kind = 'node';

  async launch(request: LaunchRequest): Promise<number> {
    const fds: number[] = [];
    try {
      fds.push(openSync(request.stdoutLog, 'a', 0o600), openSync(request.stderrLog, 'a', 0o600));
      const [program, ...args] = shellShimArgv(request);
      const child = spawn(program!, args, { cwd: request.cwd, env: request.env, detached: true, stdio: ['ignore', fds[0]!, fds[1]!] });
      child.on('error', () => { /* reported through the exit status; an unhandled 'error' would crash the bot */ });
      child.unref();
      if (child.pid === undefined) throw new AppError('SPAWN_FAILED', `${program} could not be started`);
      return child.pid;
    } catch (error) {
      throw error instanceof AppError ? error : new AppError('SPAWN_FAILED', errorMessage(error), { cause: error });
    } finally {
      for (const fd of fds) closeSync(fd);
    }
  }

  close(): void { /* nothing held */ }
}

/** Who starts processes once a launcher is dropped: what the supervisor says when it falls back. */
export type LauncherKind = 'native' | 'perl' | 'node';

/**
 * The native forker where it was built, else the perl forker, else Node's spawn: the first launch tells (a forker
 * that cannot start is dropped for good, with one warning naming what takes over and how to get it back).
 */
export class ShimLaunchers implements ShimLauncher {
  private readonly chain: Forker[];
  private readonly fallback = new NodeLauncher();
  private readonly onFallback: ((why: string, next: LauncherKind) => void) | undefined;
  private missing: string | undefined;
  private readonly marked = new Set<string>();

  /**
   * `path`: where perl is looked for (the supervisor's PATH); `native` (the built forker's path, or false for none),
   * `perl` and `idleMs` (how long an idle forker lives) are for tests.
   */
  constructor(options: {
    useForker: boolean; path?: string | undefined; native?: string | false; perl?: string; idleMs?: number;
    onFallback?: (why: string, next: LauncherKind) => void;
  }) {
    const native = options.useForker && options.native !== false ? Forker.findNative({ path: options.native, idleMs: options.idleMs }) : undefined;
    const perl = options.useForker ? Forker.find({ perl: options.perl, path: options.path, idleMs: options.idleMs }) : undefined;
    this.chain = [native, perl].filter((forker): forker is Forker => forker !== undefined);
    this.onFallback = options.onFallback;
    if (options.useForker && !native && options.native !== false) {
      this.missing = `the native forker was not built (${options.native ?? nativeForkerPath()}: install a C compiler, apt-get install gcc, then npm run build)`;
    }
    if (options.useForker && !perl) this.missing = `${this.missing ? `${this.missing}, and ` : ''}perl was not found on PATH`;
  }

  get kind(): LauncherKind {
    return this.chain[0]?.kind ?? 'node';
  }

  /** Once per directory: through the native forker where it runs; a failure only means the hint is not there. */
  async markTopDirectory(dir: string): Promise<boolean> {
    if (this.marked.has(dir)) return false;
    this.marked.add(dir);
    try {
      return (await this.chain[0]?.markTopDirectory(dir)) ?? false;
    } catch {
      return false; // a forker that cannot run is dropped, with its warning, by the launch that follows
    }
  }

  async launch(request: LaunchRequest): Promise<number> {
    // Said at the first spawn, not at start-up: a command that spawns nothing says nothing of it.
    if (this.missing) {
      this.onFallback?.(this.missing, this.kind);
      this.missing = undefined;
    }
    for (let forker = this.chain[0]; forker; forker = this.chain[0]) {
      try {
        return await forker.launch(request);
      } catch (error) {
        if (!(error instanceof ForkerUnavailableError)) throw error;
        forker.close();
        this.chain.shift();
        this.onFallback?.(error.message, this.kind);
      }
    }
    return this.fallback.launch(request);
  }

  close(): void {
    for (const forker of this.chain) forker.close();
  }
}

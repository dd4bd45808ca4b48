import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { findOnPath } from './find-program.js';
import type { Socket } from 'node:net';
import { AppError, errorMessage } from '../errors.js';
import { readStat } from './proc-fs.js';

/** What starts a shim: its argv (absolute program first), where it runs, its whole environment and its two logs. */
export interface LaunchRequest {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  stdoutLog: string;
  stderrLog: string;
  /** Written with 127 when the program could not be started at all, as the shim would have. */
  exitFile: string;
}

/**
 * Starts shims, each detached in its own session (pgid = sid = pid) with stdin on /dev/null and its two logs opened
 * for appending (0600). Resolves with the pid once the process leads its session.
 */
export interface ShimLauncher {
  readonly kind: 'forker' | 'node';
  launch(request: LaunchRequest): Promise<number>;
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
 * The forker: a small perl process (perl-base is Essential on Debian and Ubuntu) that forks the shims, so the
 * supervisor never forks its own large heap (2 to 3 ms a spawn on a 2-core VM, more as the heap grows). It reads
 * framed requests on stdin (a 4-byte big-endian length, then NUL-separated fields: cwd, stdout log, stderr log, exit
 * file, argc, argv, then the environment as K=V), and answers each with a line: the pid, or `E <why>`.
 * The child leads a new session before the answer is written (a sync pipe closes after setsid), so the identity read
 * next sees pgid = pid. It exits without exec when the forker died before answering (the request then failed). Ignored
 * signals are reset to their defaults before exec, and every descriptor but 0 to 2 is closed, even one the supervisor
 * itself inherited without close-on-exec (which Node's spawn would pass on).
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
  my ($cwd, $out, $err, $exit, $argc, @rest) = split(/\0/, $body, -1);
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

/** perl on `path` (the supervisor's PATH), as a shell would find it. */
export function findPerl(path = process.env.PATH ?? ''): string | undefined {
  return findOnPath('perl', path) ?? undefined;
}

function frame(request: LaunchRequest): Buffer {
  for (const [name, value] of [['cwd', request.cwd], ['stdoutLog', request.stdoutLog], ['stderrLog', request.stderrLog], ['exitFile', request.exitFile], ...request.argv.map((a) => ['argv', a])]) {
    if (value!.includes('\0')) throw new AppError('SPAWN_FAILED', `${name} contains a NUL byte`);
  }
  const env = Object.entries(request.env).map(([key, value]) => `${key}=${value}`);
  if (env.some((entry) => entry.includes('\0'))) throw new AppError('SPAWN_FAILED', 'an environment variable contains a NUL byte');
  const body = Buffer.from([request.cwd, request.stdoutLog, request.stderrLog, request.exitFile, String(request.argv.length), ...request.argv, ...env].join('\0'));
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length);
  return Buffer.concat([header, body]);
}

interface Pending {
  resolve: (pid: number) => void;
  reject: (error: Error) => void;
}

/** Shims started through the forker (one Generation, a perl process, at a time). */
export class Forker implements ShimLauncher {
  readonly kind = 'forker';
  private current: Generation | null = null;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(readonly perl: string, private readonly idleMs: number) {}

  /** A forker if perl is on `path` (whether it runs the script is seen when the first launch starts it). */
  static find(options: { perl?: string | undefined; path?: string | undefined; idleMs?: number | undefined } = {}): Forker | undefined {
    const perl = options.perl ?? findPerl(options.path);
    return perl ? new Forker(perl, options.idleMs ?? 30_000) : undefined;
  }

  async launch(request: LaunchRequest): Promise<number> {
    const message = frame(request);
    // One killed while idle may not have been reaped yet: a request written to it would be lost.
    if (this.current && !this.current.isLive()) this.current = null;
    this.current ??= new Generation(this.perl, () => this.onIdle());
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

  constructor(perl: string, private readonly onIdle: () => void) {
    const child = spawn(perl, ['-e', FORKER_SCRIPT], { env: {}, stdio: ['pipe', 'pipe', 'inherit'] });
    this.child = child;
    this.ready = new Promise<void>((resolve, reject) => {
      child.stdout!.setEncoding('utf8');
      child.stdout!.on('data', (text: string) => {
        this.buffered += text;
        for (let at = this.buffered.indexOf('\n'); at >= 0; at = this.buffered.indexOf('\n')) {
          const line = this.buffered.slice(0, at);
          this.buffered = this.buffered.slice(at + 1);
          if (this.isReady) this.answer(line);
          else if (line === 'ready') {
            this.isReady = true;
            resolve();
          } else reject(new ForkerUnavailableError(`the forker said ${JSON.stringify(line)} instead of ready`));
        }
      });
      child.stdin!.on('error', () => { /* it died: seen through 'exit' */ });
      child.on('error', (error) => reject(new ForkerUnavailableError(`the forker could not start: ${errorMessage(error)}`)));
      child.on('exit', (code, signal) => {
        const how = signal ?? `code ${code}`;
        if (!this.isReady) reject(new ForkerUnavailableError(`the forker exited at start (${how})`));
        for (const waiting of this.pending.splice(0)) waiting.reject(new LaunchUncertainError(`the forker ended (${how}) before it answered`));
      });
    });
    this.ready.catch(() => { /* the sender sees it */ });
  }

  async send(message: Buffer): Promise<number> {
    this.hold(true);
    try {
      await this.ready;
    } catch (error) {
      this.hold(false);
      throw error;
    }
    return new Promise<number>((resolve, reject) => {
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
    const pid = Number(line);
    if (Number.isInteger(pid) && pid > 1) waiting.resolve(pid);
    else waiting.reject(new AppError('SPAWN_FAILED', line.startsWith('E ') ? line.slice(2) : `the forker answered ${JSON.stringify(line)}`));
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
      const child = spawn(request.argv[0]!, request.argv.slice(1), { cwd: request.cwd, env: request.env, detached: true, stdio: ['ignore', fds[0]!, fds[1]!] });
      child.on('error', () => { /* reported through the exit status; an unhandled 'error' would crash the bot */ });
      child.unref();
      if (child.pid === undefined) throw new AppError('SPAWN_FAILED', `${request.argv[0]} could not be started`);
      return child.pid;
    } catch (error) {
      throw error instanceof AppError ? error : new AppError('SPAWN_FAILED', errorMessage(error), { cause: error });
    } finally {
      for (const fd of fds) closeSync(fd);
    }
  }

  close(): void { /* nothing held */ }
}

/**
 * The forker where perl runs it, else Node's spawn: the first launch tells (a forker that cannot start is dropped
 * for good, with one warning).
 */
export class ShimLaunchers implements ShimLauncher {
  private forker: Forker | undefined;
  private readonly fallback = new NodeLauncher();
  private readonly onFallback: ((why: string) => void) | undefined;
  private missing: string | undefined;

  /** `path`: where perl is looked for (the supervisor's PATH); `perl` and `idleMs` (how long an idle forker lives) are for tests. */
  constructor(options: { useForker: boolean; path?: string | undefined; perl?: string; idleMs?: number; onFallback?: (why: string) => void }) {
    this.forker = options.useForker ? Forker.find({ perl: options.perl, path: options.path, idleMs: options.idleMs }) : undefined;
    this.onFallback = options.onFallback;
    this.missing = options.useForker && !this.forker ? 'perl was not found on PATH' : undefined;
  }

  get kind(): 'forker' | 'node' {
    return this.forker ? 'forker' : 'node';
  }

  async launch(request: LaunchRequest): Promise<number> {
    // Said at the first spawn, not at start-up: a command that spawns nothing says nothing of it.
    if (this.missing) {
      this.onFallback?.(this.missing);
      this.missing = undefined;
    }
    if (this.forker) {
      try {
        return await this.forker.launch(request);
      } catch (error) {
        if (!(error instanceof ForkerUnavailableError)) throw error;
        this.onFallback?.(error.message);
        this.forker.close();
        this.forker = undefined;
      }
    }
    return this.fallback.launch(request);
  }

  close(): void {
    this.forker?.close();
  }
}

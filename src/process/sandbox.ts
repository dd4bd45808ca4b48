import { spawnSync } from 'node:child_process';
import { existsSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AppError } from '../errors.js';
import type { SandboxKind } from '../store/process-repo.js';
import { DEFAULT_SANDBOX_POLICY, type ProcessOwner, type SandboxPolicy } from './owner.js';
import { isInside } from './workspace.js';
import { findOnPath } from './find-program.js';

export const SANDBOX_MODES = ['auto', 'required', 'off'] as const;
export type SandboxMode = (typeof SANDBOX_MODES)[number];
/** What a row records: whether its process ran confined. */
export type { SandboxKind };

/** Credential places under the user's home, hidden where they exist (directories emptied, files replaced by /dev/null). */
export const CREDENTIAL_PLACES = [
  '.ssh', '.gnupg', '.aws', '.config/gcloud', '.kube', '.docker', '.netrc', '.git-credentials', '.config/gh', '.npmrc', '.pypirc',
];

export interface SandboxSettings {
  mode: SandboxMode;
  /** Never visible to a confined process, except the owner's workspace inside them: CHORUS_HOME and the .env directory. */
  protectedDirs: string[];
  /** The user's home, whose credential places are hidden. */
  userHome: string;
  /** An empty read-only file bound over hidden files (a bind of /dev/null cannot be opened: binds are nodev). */
  emptyFile: string;
  /** Where bwrap is; looked up on PATH when absent (null: as if it were missing). */
  bwrapPath?: string | null | undefined;
}

export interface SandboxProbe {
  bwrap: string | null;
  isAvailable: boolean;
  /** Why it is not, and what to do. */
  problem: string | null;
}

/**
 * The command's argv runs under `sh -c SHIELD`: bwrap itself must ignore the catchable signals a stop sends to the
 * whole group (it forwards none, and its death would SIGKILL the sandbox before the command could clean up); `env
 * --default-signal` gives the command its default dispositions back.
 */
const SHIELD_SCRIPT = "trap '' HUP INT QUIT USR1 USR2 PIPE ALRM TERM; exec \"$@\"";
const SHIELD_NAME = 'chorus-sandbox';

const PROBE_TIMEOUT_MS = 10_000;
const ENV_PATH = existsSync('/usr/bin/env') ? '/usr/bin/env' : '/bin/env';

export function findBwrap(path = process.env.PATH ?? ''): string | null {
  return findOnPath('bwrap', path);
}

/** The argv of one confined `true`, with every feature a real run uses. */
function probeArgs(): string[] {
  return [
    '--die-with-parent', '--unshare-pid', '--unshare-ipc', '--unshare-net', '--cap-drop', 'ALL',
    '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp', '--remount-ro', '/tmp',
    '--', ENV_PATH, '--default-signal', 'true',
  ];
}

export const SANDBOX_FIX = 'install bubblewrap (apt-get install bubblewrap)';
const USERNS_FIX = 'bwrap needs unprivileged user namespaces: on Ubuntu 24.04 allow them with '
  + '`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (or an AppArmor profile for /usr/bin/bwrap that grants `userns`); '
  + 'in a container, start it with user namespaces allowed (e.g. docker run --security-opt seccomp=unconfined --security-opt apparmor=unconfined)';

/** Runs bwrap once; never guesses from the platform, since AppArmor and containers make it fail where it is installed. */
export function probeSandbox(bwrap: string | null): SandboxProbe {
  if (!bwrap) return { bwrap, isAvailable: false, problem: `bwrap was not found on PATH: ${SANDBOX_FIX}` };
  const run = spawnSync(bwrap, probeArgs(), { stdio: ['ignore', 'ignore', 'pipe'], timeout: PROBE_TIMEOUT_MS, encoding: 'utf8' });
  if (run.status === 0) return { bwrap, isAvailable: true, problem: null };
  const said = (run.error?.message ?? run.stderr ?? '').trim().split('\n')[0] || `exit status ${run.status ?? run.signal}`;
  return { bwrap, isAvailable: false, problem: `${bwrap} failed a probe run (${said}); ${USERNS_FIX}` };
}

const probes = new Map<string, SandboxProbe>();

/** One probe per bwrap path per process (start-up runs it; later spawns reuse it). */
export function cachedProbe(bwrap: string | null): SandboxProbe {
  const key = bwrap ?? '';
  let probe = probes.get(key);
  if (!probe) {
    probe = probeSandbox(bwrap);
    probes.set(key, probe);
  }
  return probe;
}

function realOrSame(path: string): string {
  try {
    return realpathSync.native(path);
  } catch {
    return resolve(path);
  }
}

/**
 * Why showing `path` would expose a protected directory (it is one, lies inside one, or holds one), unless it stays
 * inside the workspace; undefined when it would not.
 */
export function exposure(path: string, protectedDirs: readonly string[], workspace: string): string | undefined {
  const real = realOrSame(path);
  if (isInside(realOrSame(workspace), real)) return undefined;
  for (const dir of protectedDirs) {
    const protectedReal = realOrSame(dir);
    if (isInside(protectedReal, real) || isInside(real, protectedReal)) return protectedReal;
  }
  return undefined;
}

const emptyFiles = new Set<string>();

function emptyFile(path: string): string {
  if (emptyFiles.has(path)) return path;
  if (statSync(path, { throwIfNoEntry: false })?.size !== 0) writeFileSync(path, '', { mode: 0o444 });
  emptyFiles.add(path);
  return path;
}

type MountKind = 'hide' | 'write' | 'read';

interface Mount {
  kind: MountKind;
  path: string;
  isDirectory?: boolean;
}

function depth(path: string): number {
  return path.split('/').filter(Boolean).length;
}

const KIND_ORDER: Record<MountKind, number> = { hide: 0, write: 1, read: 2 };

/** Parents before children (so a workspace is bound back into a hidden tree), and on one path a hide before an allow. */
function orderMounts(mounts: Mount[]): Mount[] {
  return mounts.sort((a, b) => depth(a.path) - depth(b.path) || KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || a.path.localeCompare(b.path));
}

function checkPolicy(owner: ProcessOwner, policy: SandboxPolicy, settings: SandboxSettings): void {
  const workspace = realOrSame(owner.workspace);
  const held = settings.protectedDirs.map(realOrSame).find((dir) => isInside(workspace, dir));
  if (held) {
    throw new AppError('AGENT_CONFIG_INVALID', `agent ${owner.name}: agent.json workspace ${workspace} holds ${held}, which a confined process never sees; choose a workspace beside it`);
  }
  for (const [key, paths] of [['allow_read', policy.allowRead], ['allow_write', policy.allowWrite]] as const) {
    for (const path of paths) {
      const exposed = exposure(path, settings.protectedDirs, owner.workspace);
      if (exposed) {
        throw new AppError('AGENT_CONFIG_INVALID', `agent ${owner.name}: agent.json sandbox.${key} ${JSON.stringify(path)} would expose ${exposed}, which a confined process never sees`);
      }
    }
  }
}

/** The bwrap arguments (up to and including `--`) that confine one process of `owner` to its workspace. */
export function bwrapArgs(owner: ProcessOwner, cwd: string, settings: SandboxSettings): string[] {
  const policy = owner.sandbox ?? DEFAULT_SANDBOX_POLICY;
  checkPolicy(owner, policy, settings);
  const mounts: Mount[] = [];
  const hide = (path: string) => {
    const stat = statSync(path, { throwIfNoEntry: false });
    if (!stat) return;
    const real = realOrSame(path);
    // The root itself cannot be covered; hiding it would hide everything (a .env read from /).
    if (real !== '/') mounts.push({ kind: 'hide', path: real, isDirectory: stat.isDirectory() });
  };
  const workspace = realOrSame(owner.workspace);
  for (const dir of settings.protectedDirs) hide(dir);
  for (const place of CREDENTIAL_PLACES) hide(join(settings.userHome, place));
  for (const path of policy.hide) hide(path);
  mounts.push({ kind: 'write', path: workspace });
  for (const path of policy.allowWrite) mounts.push({ kind: 'write', path: realOrSame(path) });
  for (const path of policy.allowRead) mounts.push({ kind: 'read', path: realOrSame(path) });

  // Run as root, bwrap would keep every capability (and with it umount, which uncovers what is hidden) unless told.
  const args = ['--die-with-parent', '--unshare-pid', '--unshare-ipc', '--cap-drop', 'ALL'];
  if (!policy.network) args.push('--unshare-net');
  args.push('--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp');
  const hiddenDirs: string[] = [];
  const done: Mount[] = [];
  for (const mount of orderMounts(mounts)) {
    // Inside a place already emptied (and not bound back), a hide would only create what it hides.
    const enclosing = done.filter((m) => isInside(m.path, mount.path)).at(-1);
    if (mount.kind === 'hide' && enclosing?.kind === 'hide') continue;
    done.push(mount);
    if (mount.kind === 'hide') {
      if (mount.isDirectory) {
        args.push('--tmpfs', mount.path);
        hiddenDirs.push(mount.path);
      } else {
        args.push('--ro-bind', emptyFile(settings.emptyFile), mount.path);
      }
    } else if (mount.kind === 'write') {
      // The workspace must exist (the spawn created it); extra places are skipped when they do not.
      args.push(mount.path === workspace ? '--bind' : '--bind-try', mount.path, mount.path);
    } else {
      args.push('--ro-bind-try', mount.path, mount.path);
    }
  }
  // An emptied place stays empty: nothing can be written into it (a confined agent.json would only mislead).
  for (const dir of hiddenDirs) args.push('--remount-ro', dir);
  args.push('--chdir', cwd, '--');
  return args;
}

export interface Launcher {
  sandbox: SandboxKind;
  /**
   * Wrapper argv to put before the command's own argv (empty when unconfined). It ends with `env --default-signal`,
   * so NAME=VALUE words may follow it, set inside the sandbox only.
   */
  prefix: string[];
}

/**
 * The sandbox of one home: the mode, the places to protect, and the probe result (run once). Spawns ask it how to
 * launch; start-up asks it whether to warn.
 */
export class SandboxHost {
  private probe: SandboxProbe | undefined;

  constructor(readonly settings: SandboxSettings) {}

  get mode(): SandboxMode {
    return this.settings.mode;
  }

  /** Probes now (start-up), so the first spawn does not pay for it. Off: nothing is probed. */
  check(): SandboxProbe | undefined {
    if (this.settings.mode === 'off') return undefined;
    this.probe ??= cachedProbe(this.settings.bwrapPath === undefined ? findBwrap() : this.settings.bwrapPath);
    return this.probe;
  }

  /** What processes will run under now: `bwrap`, or `none` (off, or auto without a working bwrap). */
  kind(): SandboxKind {
    return this.check()?.isAvailable ? 'bwrap' : 'none';
  }

  /** The one start-up warning of `auto` without a working bwrap; undefined when there is nothing to say. */
  warning(): string | undefined {
    const probe = this.check();
    if (this.settings.mode !== 'auto' || !probe || probe.isAvailable) return undefined;
    return `processes run unconfined (CHORUS_SANDBOX=auto): ${probe.problem}`;
  }

  /** How to start a process of `owner` in `cwd`; `required` without a working bwrap refuses. */
  launcher(owner: ProcessOwner, cwd: string): Launcher {
    const probe = this.check();
    if (!probe) return { sandbox: 'none', prefix: [] };
    if (!probe.isAvailable) {
      if (this.settings.mode === 'required') {
        throw new AppError('SANDBOX_UNAVAILABLE', `CHORUS_SANDBOX=required and ${probe.problem}; nothing was started`);
      }
      return { sandbox: 'none', prefix: [] };
    }
    return { sandbox: 'bwrap', prefix: ['/bin/sh', '-c', SHIELD_SCRIPT, SHIELD_NAME, probe.bwrap!, ...bwrapArgs(owner, cwd, this.settings), ENV_PATH, '--default-signal'] };
  }
}

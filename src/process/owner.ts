/** Where an owner's confined processes may reach beyond their workspace and private /tmp. Paths are absolute. */
export interface SandboxPolicy {
  /** false: the process gets its own network namespace (loopback only, down). */
  network: boolean;
  /** Shown read-only even where a hidden place would cover them. */
  allowRead: string[];
  /** Writable besides the workspace and /tmp. */
  allowWrite: string[];
  /** Hidden besides Chorus's own places and the usual credential places. */
  hide: string[];
}

export const DEFAULT_SANDBOX_POLICY: SandboxPolicy = { network: true, allowRead: [], allowWrite: [], hide: [] };

/**
 * What the process core needs to know about whoever owns a process, as plain data. The agents layer builds it from
 * agent.json; the core never reads agent configuration itself.
 */
export interface ProcessOwner {
  name: string;
  /** The only tree a working directory may resolve into. */
  workspace: string;
  /** Extra variables for the owner's children; names that look like secrets are dropped. */
  env: Record<string, string>;
  maxProcesses: number;
  /** Absent: the defaults (network on, nothing extra). */
  sandbox?: SandboxPolicy | undefined;
}

/** Turns an owner's name into its current settings (a restart or a CLI spawn knows only the name). */
export type OwnerLoader = (name: string) => ProcessOwner;

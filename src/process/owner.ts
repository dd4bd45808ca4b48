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
}

/** Turns an owner's name into its current settings (a restart or a CLI spawn knows only the name). */
export type OwnerLoader = (name: string) => ProcessOwner;

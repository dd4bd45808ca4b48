import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { readAllStats, readEnvironEntry } from './proc-fs.js';

const TCP_LISTEN = '0A';

/** The inodes of TCP sockets (v4 and v6) listening on `port`, from /proc/net/tcp{,6}: no connection is made. */
export function listeningInodes(port: number, procNet = '/proc/net'): Set<number> {
  const inodes = new Set<number>();
  for (const file of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`${procNet}/${file}`, 'latin1');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || fields[3] !== TCP_LISTEN) continue;
      const local = fields[1]!;
      if (Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16) !== port) continue;
      const inode = Number(fields[9]);
      if (inode > 0) inodes.add(inode);
    }
  }
  return inodes;
}

/** Socket inodes a process holds open (`/proc/<pid>/fd/* -> socket:[inode]`); empty when unreadable. */
export function socketInodesOf(pid: number): Set<number> {
  const inodes = new Set<number>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return inodes;
  }
  for (const fd of fds) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) inodes.add(Number(match[1]));
    } catch {
      // The fd closed meanwhile.
    }
  }
  return inodes;
}

/** A process and every descendant, by parent links (descendants that left the group included). */
export function processTree(rootPid: number): number[] {
  const children = new Map<number, number[]>();
  for (const stat of readAllStats()) {
    if (stat.state === 'Z') continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(stat.pid);
    children.set(stat.ppid, list);
  }
  const tree: number[] = [rootPid];
  for (let i = 0; i < tree.length; i += 1) tree.push(...(children.get(tree[i]!) ?? []));
  return tree;
}

export interface PortHolder {
  pid: number;
  command: string;
  /** CHORUS_PROCESS_ID and CHORUS_AGENT from its environment when it is a Chorus process. */
  chorusProcessId: number | null;
  chorusAgent: string | null;
}

function commandLine(pid: number): string {
  try {
    const text = readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0+$/, '').replace(/\0/g, ' ');
    if (text) return text.length > 200 ? `${text.slice(0, 199)}…` : text;
    return readFileSync(`/proc/${pid}/comm`, 'latin1').trim();
  } catch {
    return '?';
  }
}

/** Who holds one of these socket inodes; undefined when no readable process does (another user, a namespace). */
export function findSocketHolder(inodes: ReadonlySet<number>): PortHolder | undefined {
  for (const stat of readAllStats()) {
    if (stat.state === 'Z') continue;
    const held = socketInodesOf(stat.pid);
    if (![...inodes].some((inode) => held.has(inode))) continue;
    const id = readEnvironEntry(stat.pid, 'CHORUS_PROCESS_ID');
    const agent = readEnvironEntry(stat.pid, 'CHORUS_AGENT');
    return {
      pid: stat.pid,
      command: commandLine(stat.pid),
      chorusProcessId: id ? Number(id.slice(id.indexOf('=') + 1)) || null : null,
      chorusAgent: agent ? agent.slice(agent.indexOf('=') + 1) : null,
    };
  }
  return undefined;
}

export type PortState =
  | { state: 'free' }
  | { state: 'ours' }
  | { state: 'held'; inodes: Set<number> };

function netNamespace(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return undefined;
  }
}

/**
 * Whether `port` is listened on by the tree of `rootPid`, by something else, or by nothing. Each network namespace
 * the tree lives in is read (a sandbox without network has its own), through /proc/<pid>/net of one of its members.
 * Who holds a listening socket is looked for in the tree as it is after the sockets were read: a descendant that
 * started and began to listen while the tree was read (a scan of thousands of processes takes a while) is the
 * process's own, not another's. `readTree` is for tests.
 */
export function portState(port: number, rootPid: number, readTree: (rootPid: number) => number[] = processTree): PortState {
  const namespaces = new Map<string, number>();
  for (const pid of readTree(rootPid)) {
    const ns = netNamespace(pid) ?? 'host';
    if (!namespaces.has(ns)) namespaces.set(ns, pid);
  }
  const listening = new Set<number>();
  for (const [ns, pid] of namespaces) {
    for (const inode of listeningInodes(port, ns === 'host' ? '/proc/net' : `/proc/${pid}/net`)) listening.add(inode);
  }
  if (!listening.size) return { state: 'free' };
  for (const pid of readTree(rootPid)) {
    const held = socketInodesOf(pid);
    for (const inode of listening) if (held.has(inode)) return { state: 'ours' };
  }
  return { state: 'held', inodes: listening };
}

import { existsSync, readdirSync, statfsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { inspectDatabase, openDatabaseReadOnly } from '../store/database.js';
import { SupervisorRepo } from '../store/supervisor-repo.js';
import { readBootId, readStat } from '../process/proc-fs.js';
import { isRunBucket } from '../process/spawn.js';
import { isHolderAlive } from '../process/supervisor-lock.js';
import { errorMessage } from '../errors.js';
import { fail, ok, skip, warn, type Check, type CheckOutcome } from './check.js';

const MIN_FREE_BYTES = 100 * 1024 ** 2;
const LOW_FREE_BYTES = 1024 ** 3;

/** `>=20.19 <21 || >=22.12`, as package.json's engines says. */
export function isSupportedNode(version: string): boolean {
  const [major = 0, minor = 0] = version.replace(/^v/, '').split('.').map(Number);
  return (major === 20 && minor >= 19) || (major === 22 && minor >= 12) || major > 22;
}

export const nodeCheck: Check = {
  name: 'node',
  run: () => (isSupportedNode(process.versions.node)
    ? ok(`v${process.versions.node}`)
    : fail(`v${process.versions.node} is not supported`, 'install Node.js 20.19+ (or 22.12+), then run npm ci again')),
};

export const procCheck: Check = {
  name: '/proc',
  run: () => {
    const stat = readStat(process.pid);
    let bootId = '';
    try {
      bootId = readBootId();
    } catch { /* reported below */ }
    if (!stat || !bootId) {
      return fail('cannot read /proc/<pid>/stat or /proc/sys/kernel/random/boot_id', 'run Chorus on Linux with /proc mounted (Chorus proves process identity from it)');
    }
    return ok(`readable (boot ${bootId.slice(0, 8)})`);
  },
};

function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}

/** Files under the home that must be 0600: the database and its journal, agent files and process logs. */
function privateFiles(home: string): string[] {
  const files = ['chorus.db', 'chorus.db-wal', 'chorus.db-shm'].map((f) => join(home, f)).filter((f) => existsSync(f));
  const agents = join(home, 'agents');
  if (!existsSync(agents)) return files;
  for (const agent of readdirSync(agents)) {
    const config = join(agents, agent, 'agent.json');
    if (existsSync(config)) files.push(config);
    const processes = join(agents, agent, 'processes');
    if (!existsSync(processes)) continue;
    // Run directories in buckets (`20261202-0438/`), and directly in processes/ as homes made before the buckets have them.
    const runs = readdirSync(processes).flatMap((name) => (isRunBucket(name) ? readdirSync(join(processes, name)).map((run) => join(name, run)) : [name]));
    for (const run of runs) {
      for (const log of ['stdout.log', 'stderr.log']) {
        const path = join(processes, run, log);
        if (existsSync(path)) files.push(path);
      }
    }
  }
  return files;
}

export const homeCheck: Check = {
  name: 'CHORUS_HOME',
  run: ({ config }) => {
    const home = config.chorusHome;
    if (!existsSync(home)) return ok(`${home} does not exist yet; the first start creates it (0700)`);
    if (!statSync(home).isDirectory()) return fail(`${home} is not a directory`, 'point CHORUS_HOME at a directory');
    const mode = modeOf(home);
    if (mode & 0o077) return fail(`${home} has mode ${mode.toString(8).padStart(4, '0')}`, `chmod 700 ${home}`);
    const open = privateFiles(home).filter((f) => modeOf(f) & 0o077);
    if (open.length) {
      return fail(`${open.length} file(s) readable by others, e.g. ${open[0]} (${modeOf(open[0]!).toString(8).padStart(4, '0')})`, `chmod 600 ${open.slice(0, 3).join(' ')}${open.length > 3 ? ' …' : ''}`);
    }
    return ok(`${home} (0700, files 0600)`);
  },
};

function withDatabase(home: string, use: (db: ReturnType<typeof openDatabaseReadOnly>) => CheckOutcome): CheckOutcome {
  const path = join(home, 'chorus.db');
  if (!existsSync(path)) return skip('no database yet; the first start creates it');
  let db: ReturnType<typeof openDatabaseReadOnly> | undefined;
  try {
    db = openDatabaseReadOnly(path);
    return use(db);
  } catch (error) {
    return fail(`${path} cannot be read: ${errorMessage(error)}`, recoverFix(path));
  } finally {
    db?.close();
  }
}

function recoverFix(path: string): string {
  return `stop Chorus, keep a copy of ${path}, then recover it (sqlite3 ${path} ".recover" | sqlite3 new.db) or start from an empty home`;
}

export const databaseCheck: Check = {
  name: 'database',
  run: ({ config }) => withDatabase(config.chorusHome, (db) => {
    const path = join(config.chorusHome, 'chorus.db');
    const health = inspectDatabase(db);
    if (health.problems.length) {
      return fail(`quick_check: ${health.problems.slice(0, 3).join('; ')}`, recoverFix(path));
    }
    if (health.version > health.expectedVersion) {
      return fail(`schema version ${health.version} is newer than this Chorus (${health.expectedVersion})`, 'upgrade Chorus (git pull && npm ci) to the version that wrote this database');
    }
    if (health.version < health.expectedVersion) {
      return warn(`schema version ${health.version}, this Chorus has ${health.expectedVersion}`, 'nothing to do: the next start migrates it');
    }
    return ok(`quick_check ok, schema version ${health.version}`);
  }),
};

export const supervisorCheck: Check = {
  name: 'supervisor',
  run: ({ config }) => withDatabase(config.chorusHome, (db) => {
    let holder;
    try {
      holder = new SupervisorRepo(db).read();
    } catch (error) {
      return warn(`cannot read the lock: ${errorMessage(error)}`, 'nothing to do: the next start migrates the database');
    }
    if (!holder) return ok('none running (the lock is free)');
    if (isHolderAlive(holder)) return ok(`pid ${holder.pid} holds the lock since ${holder.startedAt}`);
    return ok(`the lock names pid ${holder.pid}, which is gone; the next start takes it over`);
  }),
};

/** The home, or the nearest parent that exists (a fresh home is created under it). */
function existingDir(path: string): string {
  let dir = path;
  while (!existsSync(dir) && dir !== dirname(dir)) dir = dirname(dir);
  return dir;
}

export function formatFree(bytes: number): string {
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GiB` : `${Math.round(bytes / 1024 ** 2)} MiB`;
}

export const diskCheck: Check = {
  name: 'disk',
  run: ({ config }) => {
    const dir = existingDir(config.chorusHome);
    const stats = statfsSync(dir);
    const free = Number(stats.bavail) * Number(stats.bsize);
    const detail = `${formatFree(free)} free under ${dir}`;
    if (free < MIN_FREE_BYTES) return fail(detail, 'free disk space (process logs need room; CHORUS_LOG_CAP bounds each stream), or move CHORUS_HOME');
    if (free < LOW_FREE_BYTES) return warn(detail, 'free some disk space soon, or lower CHORUS_LOG_CAP');
    return ok(detail);
  },
};

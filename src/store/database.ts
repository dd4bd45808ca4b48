import Database from 'better-sqlite3';
import { chmodSync, existsSync } from 'node:fs';
import { WAL_AUTOCHECKPOINT_PAGES } from './checkpointer.js';
import { MIGRATIONS } from './migrations.js';

export type Db = Database.Database;

/** Runs a function in one write transaction (BEGIN IMMEDIATE), or a savepoint inside an open one; rolled back if it throws. */
export type WriteTransaction = <T>(fn: () => T) => T;

/**
 * One wrapper for every write transaction of a repository: better-sqlite3 builds four functions each time
 * db.transaction() is called (about 15 µs), which a spawn or a hook firing would pay on every transaction.
 */
export function writeTransactions(db: Db): WriteTransaction {
  const immediate = db.transaction((fn: () => unknown) => fn()).immediate;
  return <T>(fn: () => T) => immediate(fn) as T;
}

/** Opens (creating if needed, 0600) the store and brings its schema up to date. */
export function openDatabase(path: string, migrations: readonly string[] = MIGRATIONS): Db {
  const isNew = path !== ':memory:' && !existsSync(path);
  const db = new Database(path);
  if (isNew) chmodSync(path, 0o600);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  migrate(db, migrations);
  return db;
}

export function migrate(db: Db, migrations: readonly string[]): void {
  // A step may rebuild a table (the only way to change a CHECK); with foreign keys on, dropping the old table would
  // cascade into its children. They are checked after each step instead, and turned back on at the end.
  const hadForeignKeys = db.pragma('foreign_keys', { simple: true }) === 1;
  db.pragma('foreign_keys = OFF');
  try {
    migrateSteps(db, migrations);
  } finally {
    if (hadForeignKeys) db.pragma('foreign_keys = ON');
  }
}

function migrateSteps(db: Db, migrations: readonly string[]): void {
  for (;;) {
    // The version is read inside the write lock, so two processes opening a fresh store never both migrate.
    const isDone = db.transaction(() => {
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > migrations.length) {
        throw new Error(`the database schema (version ${version}) is newer than this Chorus (version ${migrations.length}); upgrade Chorus`);
      }
      if (version === migrations.length) return true;
      db.exec(migrations[version]!);
      const broken = db.pragma('foreign_key_check') as unknown[];
      if (broken.length) throw new Error(`schema step ${version + 1} broke ${broken.length} foreign key reference(s)`);
      db.pragma(`user_version = ${version + 1}`);
      return false;
    }).immediate();
    if (isDone) return;
  }
}

export interface DatabaseHealth {
  /** What `PRAGMA quick_check` found; empty when the file is sound. */
  problems: string[];
  version: number;
  expectedVersion: number;
}

/** Opens an existing store read-only: nothing is created, migrated or written (for checks). */
export function openDatabaseReadOnly(path: string): Db {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  return db;
}

/** A store's integrity and schema version. */
export function inspectDatabase(db: Db, migrations: readonly string[] = MIGRATIONS): DatabaseHealth {
  const found = (db.pragma('quick_check') as Array<{ quick_check: string }>).map((r) => r.quick_check);
  return {
    problems: found.length === 1 && found[0] === 'ok' ? [] : found,
    version: db.pragma('user_version', { simple: true }) as number,
    expectedVersion: migrations.length,
  };
}

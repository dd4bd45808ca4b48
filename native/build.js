#!/usr/bin/env node
// Builds the native forker (native/forker.c) into dist/native/chorus-forker with the machine's C compiler, as part of
// `npm ci` and `npm run build`. Without a compiler it says so and succeeds: Chorus then starts processes through the
// perl forker and the sh shim (about 2 ms more CPU a spawn), and `chorus doctor` says how to get the native one.
// --strict exits 1 when the forker could not be built or the compiler warns (CI, where the compiler is installed first).
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE = join(ROOT, 'native', 'forker.c');
const TARGET = join(ROOT, 'dist', 'native', 'chorus-forker');
const isStrict = process.argv.includes('--strict');

function findCompiler() {
  const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
  for (const name of [process.env.CC, 'cc', 'gcc', 'clang'].filter(Boolean)) {
    const found = name.includes('/') ? [name] : dirs.map((dir) => join(dir, name));
    const path = found.find((candidate) => existsSync(candidate));
    if (path) return path;
  }
  return null;
}

function skip(why) {
  process.stderr.write(`chorus: the native forker was not built (${why}); processes will start through perl and /bin/sh, `
    + 'about 2 ms more CPU a spawn. To build it: apt-get install gcc, then npm run build\n');
  process.exit(isStrict ? 1 : 0);
}

if (process.platform !== 'linux') skip(`it is for Linux, this is ${process.platform}`);
const compiler = findCompiler();
if (!compiler) skip('no C compiler: cc, gcc or clang on PATH, or CC');
mkdirSync(dirname(TARGET), { recursive: true });
const partial = `${TARGET}.${process.pid}.tmp`;
// Warnings fail only the strict (CI) build: another compiler's new warning must not cost a user the native forker.
const flags = ['-O2', '-std=c11', '-Wall', '-Wextra', ...(isStrict ? ['-Werror'] : []), '-o', partial, SOURCE];
try {
  // Linked statically where the C library's static archive is installed (Debian's libc6-dev has it): half the
  // mappings of a dynamic binary, so each fork of the forker and each shim costs less, and no loader runs at its
  // start. Elsewhere (Fedora without glibc-static) dynamically, which works the same.
  try {
    execFileSync(compiler, ['-static', ...flags], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch {
    execFileSync(compiler, flags, { stdio: ['ignore', 'inherit', 'inherit'] });
  }
  chmodSync(partial, 0o755);
  renameSync(partial, TARGET);
} catch (error) {
  rmSync(partial, { force: true });
  skip(`${compiler} failed: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
}

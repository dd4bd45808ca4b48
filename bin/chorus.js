#!/usr/bin/env node
// The CLI is compiled by `npm ci` (the `prepare` script); this file only finds it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('chorus: not built yet; run `npm ci` (or `npm run build`) in the Chorus directory\n');
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '..', 'src');

function importsOf(dir: string): Array<{ file: string; from: string }> {
  const found: Array<{ file: string; from: string }> = [];
  for (const entry of readdirSync(join(SRC, dir), { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const file = join(entry.parentPath, entry.name);
    for (const match of readFileSync(file, 'utf8').matchAll(/^\s*(?:import|export)[^'"]*from\s+['"]([^'"]+)['"]/gm)) {
      found.push({ file: file.slice(SRC.length + 1), from: match[1]! });
    }
  }
  return found;
}

describe('layering', () => {
  it('the process core imports nothing from agents, hooks, Discord, the console or the CLI', () => {
    const outward = importsOf('process').filter(({ from }) => /\/(agents|hooks|discord|console|cli)\//.test(from));
    expect(outward).toEqual([]);
  });
});

import { describe, expect, it } from 'vitest';
import { splitMessage } from '../../src/discord/message-split.js';
import { fitLines, keepTail } from '../../src/discord/reply-format.js';

function fencesBalanced(chunk: string): boolean {
  return (chunk.match(/^\s*```/gm) ?? []).length % 2 === 0;
}

describe('splitMessage', () => {
  it('keeps a short answer whole and drops an empty one', () => {
    expect(splitMessage('hello\nworld')).toEqual(['hello\nworld']);
    expect(splitMessage('  \n ')).toEqual([]);
  });

  it('cuts on line boundaries, every part within the limit, nothing lost', () => {
    const lines = Array.from({ length: 300 }, (_, i) => `line ${i} ${'x'.repeat(i % 40)}`);
    const parts = splitMessage(lines.join('\n'), 500);
    expect(parts.length).toBeGreaterThan(1);
    for (const part of parts) expect(part.length).toBeLessThanOrEqual(500);
    expect(parts.join('\n')).toBe(lines.join('\n'));
  });

  it('closes a code block at a cut and opens it again with its language', () => {
    const code = Array.from({ length: 80 }, (_, i) => `const value${i} = ${i};`).join('\n');
    const text = `Here is the fix:\n\`\`\`ts\n${code}\n\`\`\`\nThat is all.`;
    const parts = splitMessage(text, 400);
    expect(parts.length).toBeGreaterThan(2);
    for (const part of parts) {
      expect(part.length).toBeLessThanOrEqual(400);
      expect(fencesBalanced(part)).toBe(true);
    }
    for (const part of parts.slice(1, -1)) expect(part.startsWith('```ts\n')).toBe(true);
    expect(parts[parts.length - 1]!.endsWith('That is all.')).toBe(true);
    const rejoined = parts.join('\n').replace(/\n```\n```ts\n/g, '\n');
    expect(rejoined).toBe(text);
  });

  it('cuts a line longer than a message, at a space when one is near', () => {
    const words = Array.from({ length: 1000 }, (_, i) => `word${i}`).join(' ');
    const parts = splitMessage(words, 2000);
    for (const part of parts) expect(part.length).toBeLessThanOrEqual(2000);
    expect(parts.join('')).toBe(words);
    const solid = 'y'.repeat(5000);
    expect(splitMessage(solid).every((part) => part.length <= 2000)).toBe(true);
    expect(splitMessage(solid).join('')).toBe(solid);
  });
});

describe('fitLines and keepTail', () => {
  it('cuts a list with a "+N more" line and stays within the limit', () => {
    const lines = Array.from({ length: 100 }, (_, i) => `• agent-${i} → somewhere`);
    const text = fitLines(lines, 300);
    expect(text.length).toBeLessThanOrEqual(300);
    const shown = text.split('\n');
    expect(shown[shown.length - 1]).toBe(`+${100 - (shown.length - 1)} more`);
    expect(fitLines(['a', 'b'], 100)).toBe('a\nb');
  });

  it('keeps the end of a long text within the byte bound, from a line start', () => {
    const text = Array.from({ length: 20_000 }, (_, i) => `line ${i}`).join('\n');
    const kept = keepTail(text, 10_000);
    expect(Buffer.byteLength(kept)).toBeLessThanOrEqual(10_100);
    expect(kept.endsWith('line 19999')).toBe(true);
    expect(kept.split('\n')[1]).toMatch(/^line \d+$/);
    expect(kept.split('\n')[0]).toMatch(/bytes cut/);
  });
});

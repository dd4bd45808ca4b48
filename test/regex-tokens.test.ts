import { describe, expect, it } from 'vitest';
import { splitAlternatives, textOf, tokenize, type Token } from '../src/regex-tokens.js';

/** Each token as `kind text`, the shortest way to read a tokenization. */
const read = (source: string): string[] => tokenize(source).map((token) => `${token.kind} ${token.text}`);
const only = <K extends Token['kind']>(source: string, kind: K): Extract<Token, { kind: K }> => {
  const tokens = tokenize(source);
  expect(tokens.map((token) => token.kind), source).toEqual([kind]);
  return tokens[0] as Extract<Token, { kind: K }>;
};

describe('tokenize', () => {
  it('gives the source back, whatever the string', () => {
    for (const source of ['ERROR|panic: \\w+', '[^]]x', '(?<n>a)\\k<n>', 'a{', '{2,}', '\\', '[a', '(?<x', '(?', 'x{2,}?', '\\u{41}', '']) {
      expect(textOf(tokenize(source)), source).toBe(source);
    }
  });

  it('reads characters, anchors, the dot and alternation', () => {
    expect(read('^a.$|b')).toEqual(['anchor ^', 'char a', 'dot .', 'anchor $', 'alternation |', 'char b']);
    expect(tokenize('é')).toEqual([{ kind: 'char', text: 'é', code: 0xe9 }]);
  });

  it('reads escapes with the code unit they stand for, when they stand for one', () => {
    expect(only('\\x41', 'escape').code).toBe(0x41);
    expect(only('\\u0041', 'escape').code).toBe(0x41);
    expect(only('\\.', 'escape').code).toBe(0x2e);
    expect(only('\\/', 'escape').code).toBe(0x2f);
    expect(only('\\\\', 'escape').code).toBe(0x5c);
    for (const source of ['\\d', '\\S', '\\n', '\\0', '\\k', '\\cA']) expect(only(source, 'escape').code, source).toBeNull();
    // Without their digits or letter, \x, \u and \c are escapes of one letter, and what follows is plain text.
    expect(read('\\x4g\\u004\\c1')).toEqual(['escape \\x', 'char 4', 'char g', 'escape \\u', 'char 0', 'char 0', 'char 4', 'escape \\c', 'char 1']);
    // Without the u flag, `\u{41}` is 41 u's.
    expect(read('\\u{41}')).toEqual(['escape \\u', 'quantifier {41}']);
    expect(read('a\\bc\\B')).toEqual(['char a', 'boundary \\b', 'char c', 'boundary \\B']);
  });

  it('reads a backslash before `|` as an escape of its own, the `|` as alternation', () => {
    expect(read('a\\\\|b')).toEqual(['char a', 'escape \\\\', 'alternation |', 'char b']);
    expect(read('a\\|b')).toEqual(['char a', 'escape \\|', 'char b']);
  });

  it('reads a class whole, escapes inside included, with its members', () => {
    const negated = only('[^\\]a-z\\d\\b-]', 'class');
    expect(negated.isNegated).toBe(true);
    expect(negated.members).toEqual([
      { text: '\\]', code: 0x5d },
      { text: 'a', code: 0x61 },
      { text: '-', code: 0x2d },
      { text: 'z', code: 0x7a },
      { text: '\\d', code: null },
      { text: '\\b', code: null },
      { text: '-', code: 0x2d },
    ]);
    expect(read('[(|)*{2}]+')).toEqual(['class [(|)*{2}]', 'quantifier +']);
    expect(read('[\\\\]]')).toEqual(['class [\\\\]', 'char ]']);
  });

  it('ends a class at a `]` right after `[` or `[^`, as JS does (`[]` matches nothing, `[^]` anything)', () => {
    expect(read('[]a]')).toEqual(['class []', 'char a', 'char ]']);
    expect(read('[^]]')).toEqual(['class [^]', 'char ]']);
    expect(only('[]', 'class').members).toEqual([]);
  });

  it('reads each kind of group opening', () => {
    const groups = ['(', '(?:', '(?<name>', '(?=', '(?!', '(?<=', '(?<!'].map((open) => {
      const tokens = tokenize(`${open}a)`);
      expect(tokens.map((token) => token.text), open).toEqual([open, 'a', ')']);
      return tokens[0]!.kind === 'open' ? tokens[0]!.group : null;
    });
    expect(groups).toEqual(['capture', 'non-capture', 'named', 'lookahead', 'negative-lookahead', 'lookbehind', 'negative-lookbehind']);
  });

  it('reads quantifiers with their bounds and lazy `?`', () => {
    const bounds = (source: string) => {
      const token = tokenize(source)[1]!;
      return token.kind === 'quantifier' ? [token.text, token.min, token.max, token.isCount, token.isLazy] : token.kind;
    };
    expect(['a*', 'a+?', 'a?', 'a??', 'a{3}', 'a{2,}?', 'x{2,5}', 'a{0}'].map(bounds)).toEqual([
      ['*', 0, null, false, false],
      ['+?', 1, null, false, true],
      ['?', 0, 1, false, false],
      ['??', 0, 1, false, true],
      ['{3}', 3, 3, true, false],
      ['{2,}?', 2, null, true, true],
      ['{2,5}', 2, 5, true, false],
      ['{0}', 0, 0, true, false],
    ]);
  });

  it('reads a `{` that starts no count as a character', () => {
    expect(read('a{')).toEqual(['char a', 'char {']);
    expect(read('a{x}')).toEqual(['char a', 'char {', 'char x', 'char }']);
    expect(read('a{,3}')).toEqual(['char a', 'char {', 'char ,', 'char 3', 'char }']);
    expect(read('a{ 2}*')).toEqual(['char a', 'char {', 'char  ', 'char 2', 'char }', 'quantifier *']);
  });
});

describe('splitAlternatives', () => {
  it('splits at `|` outside groups and classes only', () => {
    expect(splitAlternatives(tokenize('a|(b|c)|[|]\\|d|')).map(textOf)).toEqual(['a', '(b|c)', '[|]\\|d', '']);
    expect(splitAlternatives(tokenize('')).map(textOf)).toEqual(['']);
  });
});

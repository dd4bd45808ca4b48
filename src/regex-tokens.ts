// The lexical units of a JS regex source in non-unicode mode (with Annex B's literal braces), the one reading of
// escapes, classes, groups and quantifiers that the checks in safe-pattern.ts share. Total: any string tokenizes, and
// the tokens' texts joined give the source back; only a source that compiles is read the way V8 reads it.

export type GroupKind = 'capture' | 'named' | 'non-capture' | 'lookahead' | 'negative-lookahead' | 'lookbehind' | 'negative-lookbehind';

/** A member of a class body: one character or escape; ranges are a member, a `-`, a member. */
export interface ClassMember {
  text: string;
  /** The code unit it stands for, null for a class escape such as \d or an escape such as \n, \cA. */
  code: number | null;
}

export type Token =
  /** A character that stands for itself, `]`, `}` and a `{` that starts no count included. */
  | { kind: 'char'; text: string; code: number }
  /** `\d`, `\n`, `\1`… (code null), or one character escaped: `\.`, `\/`, `\x41`, `\u0041` (its code unit). */
  | { kind: 'escape'; text: string; code: number | null }
  /** `\b` or `\B`. */
  | { kind: 'boundary'; text: string }
  /** `[…]` or `[^…]`; `[]` matches nothing, `[^]` anything, so a `]` right after `[` or `[^` ends the class. */
  | { kind: 'class'; text: string; isNegated: boolean; members: ClassMember[] }
  /** `(`, `(?:`, `(?<name>`, `(?=`, `(?!`, `(?<=`, `(?<!`. */
  | { kind: 'open'; text: string; group: GroupKind }
  | { kind: 'close'; text: string }
  /** `*` `+` `?` or a count `{n}` `{n,}` `{n,m}`, with its lazy `?`; max null when unbounded. */
  | { kind: 'quantifier'; text: string; min: number; max: number | null; isCount: boolean; isLazy: boolean }
  | { kind: 'alternation'; text: string }
  /** `^` or `$`. */
  | { kind: 'anchor'; text: string }
  | { kind: 'dot'; text: string };

const SYMBOL_KINDS = { ')': 'close', '|': 'alternation', '^': 'anchor', '$': 'anchor', '.': 'dot' } as const;

const COUNT = /\{(\d+)(?:(,)(\d*))?\}/y;

export function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  for (let at = 0; at < source.length;) at = readToken(source, at, tokens);
  return tokens;
}

/** Tokens split at each `|` outside groups: a pattern's top-level alternatives. */
export function splitAlternatives(tokens: readonly Token[]): Token[][] {
  const alternatives: Token[][] = [[]];
  let depth = 0;
  for (const token of tokens) {
    if (token.kind === 'open') depth += 1;
    else if (token.kind === 'close') depth -= 1;
    if (token.kind === 'alternation' && depth === 0) alternatives.push([]);
    else alternatives.at(-1)!.push(token);
  }
  return alternatives;
}

export function textOf(tokens: readonly Token[]): string {
  return tokens.map((token) => token.text).join('');
}

/** Appends the token that starts at source[at]; returns where the next one starts. */
function readToken(source: string, at: number, tokens: Token[]): number {
  // Each kind is pushed and measured on its own line: one site reading `text` of every kind was half the time.
  const char = source[at]!;
  switch (char) {
    case '\\': {
      const { text, code } = escapeAt(source, at);
      tokens.push(text === '\\b' || text === '\\B' ? { kind: 'boundary', text } : { kind: 'escape', text, code });
      return at + text.length;
    }
    case '[': {
      const token = classAt(source, at);
      tokens.push(token);
      return at + token.text.length;
    }
    case '(': {
      const token = openAt(source, at);
      tokens.push(token);
      return at + token.text.length;
    }
    case ')':
    case '|':
    case '^':
    case '$':
    case '.':
      tokens.push({ kind: SYMBOL_KINDS[char], text: char });
      return at + 1;
    case '*':
    case '+':
    case '?': {
      const token = quantifierAt(source, at, at + 1, char === '+' ? 1 : 0, char === '?' ? 1 : null, false);
      tokens.push(token);
      return at + token.text.length;
    }
    case '{': {
      COUNT.lastIndex = at;
      const count = COUNT.exec(source);
      if (!count) break;
      const min = Number(count[1]);
      const max = count[2] === undefined ? min : count[3] ? Number(count[3]) : null;
      const token = quantifierAt(source, at, at + count[0].length, min, max, true);
      tokens.push(token);
      return at + token.text.length;
    }
  }
  tokens.push({ kind: 'char', text: char, code: source.charCodeAt(at) });
  return at + 1;
}

function quantifierAt(source: string, at: number, end: number, min: number, max: number | null, isCount: boolean): Extract<Token, { kind: 'quantifier' }> {
  const isLazy = source[end] === '?';
  return { kind: 'quantifier', text: source.slice(at, isLazy ? end + 1 : end), min, max, isCount, isLazy };
}

function openAt(source: string, at: number): Extract<Token, { kind: 'open' }> {
  if (source[at + 1] !== '?') return { kind: 'open', text: '(', group: 'capture' };
  const third = source[at + 2];
  const fourth = source[at + 3];
  if (third === '<' && fourth !== undefined && fourth !== '=' && fourth !== '!') {
    const end = source.indexOf('>', at);
    return { kind: 'open', text: end < 0 ? source.slice(at) : source.slice(at, end + 1), group: 'named' };
  }
  if (third === '<') return { kind: 'open', text: source.slice(at, at + 4), group: fourth === '!' ? 'negative-lookbehind' : 'lookbehind' };
  const group = third === '=' ? 'lookahead' : third === '!' ? 'negative-lookahead' : 'non-capture';
  return { kind: 'open', text: source.slice(at, at + 3), group };
}

function classAt(source: string, at: number): Extract<Token, { kind: 'class' }> {
  const isNegated = source[at + 1] === '^';
  const members: ClassMember[] = [];
  let index = at + (isNegated ? 2 : 1);
  while (index < source.length && source[index] !== ']') {
    const member = source[index] === '\\' ? escapeAt(source, index) : { text: source[index]!, code: source.charCodeAt(index) };
    members.push(member);
    index += member.text.length;
  }
  return { kind: 'class', text: source.slice(at, index + 1), isNegated, members };
}

/** The escape at source[at] === '\\': `\x` and 2 hex digits, `\u` and 4, `\c` and a letter, else `\` and one character. */
function escapeAt(source: string, at: number): ClassMember {
  const next = source.charCodeAt(at + 1);
  const digits = next === 0x78 /* x */ ? 2 : next === 0x75 /* u */ ? 4 : 0;
  if (digits > 0 && isHexRun(source, at + 2, digits)) {
    const text = source.slice(at, at + 2 + digits);
    return { text, code: Number.parseInt(text.slice(2), 16) };
  }
  if (next === 0x63 /* c */ && isAsciiLetter(source.charCodeAt(at + 2))) return { text: source.slice(at, at + 3), code: null };
  // Only a symbol stands for itself (\. \/ \\); \d, \n, \1, \k and other letters and digits mean something else.
  return { text: source.slice(at, at + 2), code: Number.isNaN(next) || isAsciiLetter(next) || isDigit(next) ? null : next };
}

function isHexRun(source: string, at: number, count: number): boolean {
  for (let index = at; index < at + count; index += 1) {
    const code = source.charCodeAt(index);
    if (!isDigit(code) && !(code >= 0x41 && code <= 0x46) && !(code >= 0x61 && code <= 0x66)) return false;
  }
  return true;
}

const isDigit = (code: number): boolean => code >= 0x30 && code <= 0x39;
const isAsciiLetter = (code: number): boolean => (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a);

import v8 from 'node:v8';
import { AppError, describeValue, type ErrorCode } from './errors.js';
import { splitAlternatives, textOf, tokenize, type ClassMember, type Token } from './regex-tokens.js';

// Patterns come from an LLM and run on every output line: a regex that backtracks too much must drop to
// V8's linear-time engine, and the `l` flag proves at registration that a pattern can run there.
v8.setFlagsFromString('--enable-experimental-regexp-engine');
v8.setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
v8.setFlagsFromString(`--regexp-backtracks-before-fallback=${50_000}`);

export const MATCH_LINE_LIMIT = 8192;
/**
 * Longer lines go straight to the linear engine: V8 does not count a greedy loop's rewinds as backtracks, so
 * `x*y` on 8 KiB of x is quadratic (~60 ms) without ever falling back; the linear engine is ~30× slower per byte
 * on ordinary lines, which is why short lines keep the backtracking engine (worst measured ~20 ms at 1024).
 */
export const BACKTRACKING_LINE_LIMIT = 1024;
export const PATTERN_MAX_LENGTH = 1000;
/** The linear engine's time is pattern size × line length; at this size the worst 8 KiB line measured ~200 ms. */
export const PATTERN_MAX_COST = 150;

const linearTwins = new WeakMap<RegExp, RegExp | null>();

const isLinearEngineAvailable = (() => {
  try {
    new RegExp('a', 'l');
    return true;
  } catch {
    return false;
  }
})();

/**
 * Accepts a plain JS regex source, `/source/flags` with flags among i, m, s (g is ignored), or a leading `(?i)`;
 * `i` is rewritten into ASCII case classes because V8's linear engine cannot run the `i` flag.
 */
export function compileSafePattern(raw: string, field: string, code: ErrorCode = 'HOOK_INVALID'): RegExp {
  if (raw.length === 0 || raw.length > PATTERN_MAX_LENGTH) {
    throw refuse(code, field, `a non-empty string of at most ${PATTERN_MAX_LENGTH} characters`, raw);
  }
  if (!isLinearEngineAvailable) {
    throw new AppError('INTERNAL', `${field} cannot be checked: this Node.js lacks V8's linear-time RegExp engine`);
  }
  const { source, flags } = splitPattern(raw);
  const badFlag = [...flags].find((flag) => !'imsg'.includes(flag));
  if (badFlag !== undefined) {
    throw refuse(code, field, `a regex whose flags are among i, m, s (flag "${badFlag}" is not supported)`, raw);
  }
  const isCaseInsensitive = flags.includes('i');
  const kept = [...new Set(flags.replace(/[ig]/g, ''))].join('');
  try {
    new RegExp(source, flags.replace(/g/g, ''));
  } catch (error) {
    const reason = error instanceof Error ? error.message.replace(/^Invalid regular expression: \/.*\/\w*: /s, '') : String(error);
    throw new AppError(code, `${field} must be a valid regular expression, but ${describeValue(raw)} is not: ${reason}`, { details: { field } });
  }
  const folded = isCaseInsensitive ? foldAsciiCase(source) : source;
  let linear: RegExp;
  try {
    linear = new RegExp(folded, `${kept}l`);
  } catch {
    throw refuse(
      code,
      field,
      'a regex that can be matched in linear time: backreferences (\\1, \\k<name>), lookaround ((?=, (?!, (?<=, (?<!) and counted repetitions above {16} are not supported',
      raw,
    );
  }
  const cost = estimatePatternCost(folded);
  if (cost > PATTERN_MAX_COST) {
    throw refuse(code, field, `a simpler regex (its size is ${cost}, the limit is ${PATTERN_MAX_COST}; counted repetitions multiply the size)`, raw);
  }
  const regex = new RegExp(folded, kept);
  linearTwins.set(regex, linear);
  return regex;
}

/** Tests only the first MATCH_LINE_LIMIT characters, long lines on the linear engine. */
export function matchLine(re: RegExp, line: string): boolean {
  const text = line.length > MATCH_LINE_LIMIT ? line.slice(0, MATCH_LINE_LIMIT) : line;
  if (text.length <= BACKTRACKING_LINE_LIMIT) return re.test(text);
  return (linearTwinOf(re) ?? re).test(text);
}

/**
 * A twin of a pattern that tests many whole lines at once (a window of a log, newline-separated) on the backtracking
 * engine, or null when that is not safe or not exact enough to pass over lines that do not match. Only patterns whose
 * every match is tried once per position get one: no quantifier but an exact count (`*`, `+`, `?`, `{n,m}` choose,
 * and choices in a row multiply: `a?a?a?…` or `(a|aa)(a|aa)…` took 60-380 ms on a 64 KiB window, after V8 fell
 * back to its linear engine), and alternation only at the top (`ERROR|panic|FAIL`). `$`, `\b` and `\B` look at
 * what follows, which differs where a line was cut. Within those, a match in any one line is a match of the same
 * characters in the window (`^` matches at every line's start with the `m` flag), so a window with no match holds
 * no matching line; a match in the window only means its lines are tested one by one.
 */
export function windowTwin(re: RegExp): RegExp | null {
  const source = splitAlternatives(tokenize(re.source)).map(dropTrailingRepeats).join('|');
  let depth = 0;
  for (const token of tokenize(source)) {
    if (token.kind === 'open') depth += 1;
    else if (token.kind === 'close') depth -= 1;
    else if (!isSameInWindow(token, depth)) return null;
  }
  return new RegExp(source, `${re.flags.replace(/[gylm]/g, '')}m`);
}

/** An exact count such as `{3}`; `{3}?`, `{3,3}` and runs of more than 10 digits are not taken for one. */
const EXACT_COUNT = /^\{\d{1,10}\}$/;

/** Whether a token at this group depth matches in a window exactly what it matches in a line (see windowTwin). */
function isSameInWindow(token: Token, depth: number): boolean {
  switch (token.kind) {
    case 'boundary':
      return false;
    case 'anchor':
      return token.text === '^';
    case 'alternation':
      return depth === 0;
    case 'quantifier':
      return EXACT_COUNT.test(token.text);
    case 'char':
      // A `{` that starts no count (`a{`) is refused like a count.
      return token.text !== '{';
    default:
      return true;
  }
}

/**
 * Text every match of a pattern contains: for each top-level alternative, the literal characters it starts with (after
 * a leading `^`), as far as they are plain printable ASCII and each is required (one followed by `?`, `*` or a count
 * is left out, and ends the text; one followed by `+` ends it). A window of lines that holds none of them holds no
 * matching line, without decoding it or running the pattern: a byte search answers. Null when some alternative
 * starts with no such character (a class, a group, `.`, an escape such as `\d`), or for the `i` flag.
 */
export function requiredLiterals(re: RegExp): string[] | null {
  if (re.flags.includes('i')) return null;
  const literals: string[] = [];
  for (const alternative of splitAlternatives(tokenize(re.source))) {
    const tokens = alternative[0]?.kind === 'anchor' && alternative[0].text === '^' ? alternative.slice(1) : alternative;
    let literal = '';
    for (const [index, token] of tokens.entries()) {
      const code = literalCode(token);
      if (code === null || code < 0x20 || code > 0x7e) break;
      const next = tokens[index + 1];
      // A `{` that starts no count ends the text too.
      const isRepeated = next !== undefined && (next.kind === 'quantifier' || next.text === '{');
      if (isRepeated && !next.text.startsWith('+')) break;
      literal += String.fromCharCode(code);
      if (isRepeated) break;
    }
    if (literal === '') return null;
    literals.push(literal);
  }
  return literals;
}

/** The character a token stands for: a plain one, or an escaped symbol (\. \( \/); \x41 and the like are left to the pattern. */
function literalCode(token: Token): number | null {
  if (token.kind === 'char') return ']{}'.includes(token.text) ? null : token.code;
  if (token.kind === 'escape') return token.text.length === 2 ? token.code : null;
  return null;
}

/**
 * An alternative without the repetition of its last single atom (a character, an escape, a class), as far as a
 * search for it is concerned: `panic: \w+` is found exactly where `panic: \w` is (a match of one is a match of the
 * other, or its prefix), `x\s*` where `x` is, `a{2,}` where `a{2}` is. Groups are left as they are.
 */
function dropTrailingRepeats(alternative: Token[]): string {
  let kept = alternative;
  for (;;) {
    const quantifier = kept.at(-1);
    const atom = kept.at(-2);
    if (quantifier?.kind !== 'quantifier' || atom === undefined || !isSingleAtom(atom) || isBraceAfterAtom(kept, kept.length - 2)) {
      return textOf(kept);
    }
    kept = kept.slice(0, -2);
    if (quantifier.min > 0) return textOf(kept) + atom.text + (quantifier.min === 1 ? '' : `{${quantifier.min}}`);
  }
}

function isSingleAtom(token: Token): boolean {
  return token.kind === 'char' || token.kind === 'escape' || token.kind === 'class' || token.kind === 'dot';
}

/** A `{` right after an atom reads like that atom's (broken) count: it stays, and so the twin is refused. */
function isBraceAfterAtom(tokens: Token[], at: number): boolean {
  const before = tokens[at - 1];
  return tokens[at]?.text === '{' && before !== undefined && before.kind !== 'quantifier' && before.kind !== 'close';
}

/** Regexes not made by compileSafePattern get a twin on first use, when the linear engine can run them. */
function linearTwinOf(re: RegExp): RegExp | null {
  let twin = linearTwins.get(re);
  if (twin === undefined) {
    try {
      twin = new RegExp(re.source, `${re.flags.replace(/[gyl]/g, '')}l`);
    } catch {
      twin = null;
    }
    linearTwins.set(re, twin);
  }
  return twin;
}

function refuse(code: ErrorCode, field: string, expected: string, raw: string): AppError {
  return new AppError(code, `${field} must be ${expected} (got ${describeValue(raw)})`, { details: { field } });
}

function splitPattern(raw: string): { source: string; flags: string } {
  // Only flag letters JS knows count as a `/…/flags` suffix, so a path such as `/tmp/x` stays a plain pattern.
  const delimited = /^\/(.+)\/([dgimsuvy]*)$/s.exec(raw);
  if (delimited) return { source: delimited[1] ?? '', flags: delimited[2] ?? '' };
  if (raw.startsWith('(?i)')) return { source: raw.slice(4), flags: 'i' };
  return { source: raw, flags: '' };
}


function swapCase(char: string): string {
  return char === char.toLowerCase() ? char.toUpperCase() : char.toLowerCase();
}

const isAsciiLetter = (char: string): boolean => /^[a-z]$/i.test(char);
const isAsciiLetterCode = (code: number | null): code is number => code !== null && isAsciiLetter(String.fromCharCode(code));

function foldAsciiCase(source: string): string {
  let out = '';
  for (const token of tokenize(source)) {
    if ((token.kind === 'char' || token.kind === 'escape') && isAsciiLetterCode(token.code)) {
      out += `[${token.text}${swapCase(String.fromCharCode(token.code))}]`;
    } else if (token.kind === 'class') {
      out += `[${token.isNegated ? '^' : ''}${foldClassBody(token.members)}]`;
    } else {
      out += token.text;
    }
  }
  return out;
}

/** A class's members with the other case of each ASCII letter, and of each range's letters, added. */
function foldClassBody(members: readonly ClassMember[]): string {
  let added = '';
  for (let index = 0; index < members.length; index += 1) {
    const member = members[index]!;
    const dash = members[index + 1];
    const end = members[index + 2];
    if (member.code !== null && dash?.text === '-' && end && end.code !== null) {
      added += caseRanges(member.code, end.code);
      index += 2;
    } else if (isAsciiLetterCode(member.code)) {
      added += swapCase(String.fromCharCode(member.code));
    }
  }
  const body = members.map((member) => member.text).join('');
  // A trailing '-' is literal; keep it last so the added letters cannot turn it into a range.
  return members.at(-1)?.text === '-' ? `${body.slice(0, -1)}${added}-` : `${body}${added}`;
}

function caseRanges(low: number, high: number): string {
  let out = '';
  for (const [from, to, shift] of [[65, 90, 32], [97, 122, -32]] as const) {
    const start = Math.max(low, from);
    const stop = Math.min(high, to);
    if (start <= stop) out += `${String.fromCharCode(start + shift)}-${String.fromCharCode(stop + shift)}`;
  }
  return out;
}

/** `.`, `\s`, `\S`, `\W`, `\D` and `[^…]` span many code-point ranges, each a separate step for the linear engine. */
const WIDE_ATOM_COST = 2;

/**
 * A rough size of the program V8's linear engine runs (atoms, forks, captures, unrolled counts):
 * its worst-case time per character grows with it. Assumes a source that already compiled.
 */
export function estimatePatternCost(source: string): number {
  interface Frame { done: number; current: number; last: number; isCapture: boolean }
  const open = (isCapture: boolean): Frame => ({ done: 0, current: 0, last: 0, isCapture });
  const stack: Frame[] = [open(false)];
  const top = (): Frame => stack[stack.length - 1]!;
  const addAtom = (cost: number): void => {
    top().current += cost;
    top().last = cost;
  };
  const repeat = (times: number): void => {
    const frame = top();
    const repeated = frame.last * times + 2;
    frame.current += repeated - frame.last;
    frame.last = repeated;
  };
  for (const token of tokenize(source)) {
    switch (token.kind) {
      case 'open':
        stack.push(open(token.group === 'capture' || token.group === 'named'));
        // A lookbehind's `=` or `!` has always counted as an atom of it (one reaches here inside an optional group);
        // kept so that no pattern near the limit changes side.
        if (token.group === 'lookbehind' || token.group === 'negative-lookbehind') addAtom(1);
        break;
      case 'close':
        if (stack.length === 1) {
          addAtom(1);
        } else {
          const group = stack.pop()!;
          addAtom(group.done + group.current + (group.isCapture ? 2 : 0));
        }
        break;
      case 'alternation':
        top().done += top().current + 1;
        top().current = 0;
        break;
      case 'quantifier':
        // A count unrolls its atom up to its upper bound (one past its lower when unbounded); `*`, `+`, `?` loop once.
        repeat(token.isCount ? Math.max(token.min, token.max ?? token.min + 1, 1) : 1);
        break;
      case 'dot':
        addAtom(WIDE_ATOM_COST);
        break;
      case 'class':
        addAtom(token.isNegated ? WIDE_ATOM_COST : 1);
        break;
      case 'escape':
        addAtom(WIDE_ESCAPES.has(token.text) ? WIDE_ATOM_COST : 1);
        break;
      default:
        addAtom(1);
    }
  }
  const root = stack[0]!;
  return root.done + root.current;
}

const WIDE_ESCAPES = new Set(['\\s', '\\S', '\\W', '\\D']);

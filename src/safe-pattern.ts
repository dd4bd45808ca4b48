import v8 from 'node:v8';
import { AppError, describeValue, type ErrorCode } from './errors.js';

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
  const source = topLevelAlternatives(re.source).map(dropTrailingRepeats).join('|');
  let depth = 0;
  for (let at = 0; at < source.length;) {
    const char = source[at]!;
    if (char === '\\') {
      if (source[at + 1] === 'b' || source[at + 1] === 'B') return null;
      at += escapeLength(source, at);
    } else if (char === '[') {
      at = classEnd(source, at);
    } else if (char === '(') {
      depth += 1;
      // A group's own `?` ((?:, (?<name>) is no quantifier.
      at += source[at + 1] === '?' ? 2 : 1;
    } else if (char === ')') {
      depth -= 1;
      at += 1;
    } else if (char === '*' || char === '+' || char === '?' || char === '$' || (char === '|' && depth > 0)) {
      return null;
    } else if (char === '{') {
      const count = /^\{\d+\}/.exec(source.slice(at, at + 12));
      if (!count) return null;
      at += count[0].length;
    } else {
      at += 1;
    }
  }
  return new RegExp(source, `${re.flags.replace(/[gylm]/g, '')}m`);
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
  for (const alternative of topLevelAlternatives(re.source)) {
    let literal = '';
    for (let at = alternative.startsWith('^') ? 1 : 0; at < alternative.length;) {
      const char = alternative[at]!;
      let code: number | null;
      let length = 1;
      if (char === '\\') {
        length = escapeLength(alternative, at);
        const escape = alternative.slice(at, at + length);
        // Only an escaped symbol (\. \( \/) stands for itself; \x41 and the like are left to the pattern.
        code = length === 2 && !/[a-z0-9]/i.test(escape[1] ?? '') ? escape.charCodeAt(1) : null;
      } else {
        code = '.[](){}|?*+^$'.includes(char) ? null : char.charCodeAt(0);
      }
      if (code === null || code < 0x20 || code > 0x7e) break;
      const next = alternative[at + length];
      if (next === '?' || next === '*' || next === '{') break;
      literal += String.fromCharCode(code);
      if (next === '+') break;
      at += length;
    }
    if (literal === '') return null;
    literals.push(literal);
  }
  return literals;
}

/** A pattern's top-level alternatives: split at each `|` outside groups and classes. */
function topLevelAlternatives(source: string): string[] {
  const alternatives: string[] = [];
  let depth = 0;
  let start = 0;
  for (let at = 0; at < source.length;) {
    const char = source[at]!;
    if (char === '\\') at += escapeLength(source, at);
    else if (char === '[') at = classEnd(source, at);
    else {
      if (char === '(') depth += 1;
      else if (char === ')') depth -= 1;
      else if (char === '|' && depth === 0) {
        alternatives.push(source.slice(start, at));
        start = at + 1;
      }
      at += 1;
    }
  }
  alternatives.push(source.slice(start));
  return alternatives;
}

const TRAILING_QUANTIFIER = /^(?:[*+?]|\{(\d+)(?:,(\d*))?\})\??$/;

/**
 * An alternative without the repetition of its last single atom (a character, an escape, a class), as far as a
 * search for it is concerned: `panic: \w+` is found exactly where `panic: \w` is (a match of one is a match of the
 * other, or its prefix), `x\s*` where `x` is, `a{2,}` where `a{2}` is. Groups are left as they are.
 */
function dropTrailingRepeats(alternative: string): string {
  let text = alternative;
  for (;;) {
    let atomStart = -1;
    let quantifierStart = -1;
    for (let at = 0; at < text.length;) {
      const char = text[at]!;
      if ('*+?{'.includes(char) && atomStart >= 0 && quantifierStart < 0) {
        quantifierStart = at;
        at += char === '{' ? Math.max(1, text.indexOf('}', at) + 1 - at) : 1;
        if (text[at] === '?') at += 1;
        continue;
      }
      quantifierStart = -1;
      if (char === '(') {
        // A group is no single atom: what follows it is kept as it is.
        let depth = 0;
        let end = at;
        while (end < text.length) {
          const c = text[end]!;
          if (c === '\\') { end += escapeLength(text, end); continue; }
          if (c === '[') { end = classEnd(text, end); continue; }
          if (c === '(') depth += 1;
          else if (c === ')' && (depth -= 1) === 0) break;
          end += 1;
        }
        atomStart = -1;
        at = end + 1;
        // So is the group's quantifier: the `?` of `(a)*?` makes it lazy, it does not make `*` an optional atom.
        at += /^(?:[*+?]|\{\d+(?:,\d*)?\})\??/.exec(text.slice(at))?.[0].length ?? 0;
      } else {
        atomStart = at;
        at = char === '\\' ? at + escapeLength(text, at) : char === '[' ? classEnd(text, at) : at + 1;
      }
    }
    if (atomStart < 0 || quantifierStart < 0) return text;
    const quantifier = TRAILING_QUANTIFIER.exec(text.slice(quantifierStart));
    if (!quantifier) return text;
    const atom = text.slice(atomStart, quantifierStart);
    const least = quantifier[0][0] === '+' ? 1 : quantifier[1] === undefined ? 0 : Number(quantifier[1]);
    const kept = least === 0 ? '' : least === 1 ? atom : `${atom}{${least}}`;
    text = text.slice(0, atomStart) + kept;
    if (least !== 0) return text;
  }
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

/** Length of the escape starting at source[at] === '\\' (non-unicode mode). */
function escapeLength(source: string, at: number): number {
  const next = source[at + 1] ?? '';
  const hexRun = (count: number): number => {
    const hex = source.slice(at + 2, at + 2 + count);
    return hex.length === count && /^[0-9a-f]+$/i.test(hex) ? 2 + count : 2;
  };
  if (next === 'x') return hexRun(2);
  if (next === 'u') return hexRun(4);
  if (next === 'c' && /[a-z]/i.test(source[at + 2] ?? '')) return 3;
  return 2;
}

/** End index (exclusive) of the class starting at source[at] === '['. */
function classEnd(source: string, at: number): number {
  let index = at + 1;
  while (index < source.length && source[index] !== ']') {
    index += source[index] === '\\' ? escapeLength(source, index) : 1;
  }
  return index + 1;
}

function swapCase(char: string): string {
  return char === char.toLowerCase() ? char.toUpperCase() : char.toLowerCase();
}

const isAsciiLetter = (char: string): boolean => /^[a-z]$/i.test(char);

/** The code unit an escape stands for when it is a single character (\x41, \u0041, \.), else null (\d, \b…). */
function escapedCode(escape: string): number | null {
  if (/^\\(x[0-9a-f]{2}|u[0-9a-f]{4})$/i.test(escape)) return Number.parseInt(escape.slice(2), 16);
  return escape.length === 2 && !/[a-z0-9]/i.test(escape[1] ?? '') ? escape.charCodeAt(1) : null;
}

function foldAsciiCase(source: string): string {
  let out = '';
  let index = 0;
  while (index < source.length) {
    const char = source[index] ?? '';
    if (char === '\\') {
      const length = escapeLength(source, index);
      const escape = source.slice(index, index + length);
      const code = escapedCode(escape);
      out += code !== null && isAsciiLetter(String.fromCharCode(code)) ? `[${escape}${swapCase(String.fromCharCode(code))}]` : escape;
      index += length;
    } else if (char === '[') {
      const end = classEnd(source, index);
      out += `[${foldClassBody(source.slice(index + 1, end - 1))}]`;
      index = end;
    } else if (source.startsWith('(?<', index) && !'=!'.includes(source[index + 3] ?? '')) {
      const end = source.indexOf('>', index) + 1;
      out += source.slice(index, end);
      index = end;
    } else {
      out += isAsciiLetter(char) ? `[${char}${swapCase(char)}]` : char;
      index += 1;
    }
  }
  return out;
}

function foldClassBody(body: string): string {
  const negation = body.startsWith('^') ? '^' : '';
  const items: Array<{ text: string; code: number | null }> = [];
  for (let index = negation.length; index < body.length; ) {
    const length = body[index] === '\\' ? escapeLength(body, index) : 1;
    const text = body.slice(index, index + length);
    items.push({ text, code: length === 1 ? text.charCodeAt(0) : escapedCode(text) });
    index += length;
  }
  let added = '';
  for (let index = 0; index < items.length; index += 1) {
    const item = items[index]!;
    const dash = items[index + 1];
    const end = items[index + 2];
    if (item.code !== null && dash?.text === '-' && end && end.code !== null) {
      added += caseRanges(item.code, end.code);
      index += 2;
    } else if (item.code !== null && isAsciiLetter(String.fromCharCode(item.code))) {
      added += swapCase(String.fromCharCode(item.code));
    }
  }
  const rest = body.slice(negation.length);
  // A trailing '-' is literal; keep it last so the added letters cannot turn it into a range.
  const isDashLast = items.at(-1)?.text === '-';
  return isDashLast ? `${negation}${rest.slice(0, -1)}${added}-` : `${negation}${rest}${added}`;
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
  let index = 0;
  while (index < source.length) {
    const char = source[index] ?? '';
    const counted = char === '{' ? /^\{(\d+)(,(\d*))?\}/.exec(source.slice(index)) : null;
    if (char === '\\') {
      addAtom(/^[sSWD]$/.test(source[index + 1] ?? '') ? WIDE_ATOM_COST : 1);
      index += escapeLength(source, index);
      continue;
    }
    if (char === '[') {
      addAtom(source[index + 1] === '^' ? WIDE_ATOM_COST : 1);
      index = classEnd(source, index);
      continue;
    }
    if (char === '(') {
      const isCapture = source[index + 1] !== '?' || (source[index + 2] === '<' && !'=!'.includes(source[index + 3] ?? ''));
      stack.push(open(isCapture));
      index = isCapture && source[index + 1] === '?' ? source.indexOf('>', index) + 1 : index + (source[index + 1] === '?' ? 3 : 1);
      continue;
    }
    if (char === '|') {
      top().done += top().current + 1;
      top().current = 0;
    } else if (char === ')' && stack.length > 1) {
      const group = stack.pop()!;
      addAtom(group.done + group.current + (group.isCapture ? 2 : 0));
    } else if (char === '*' || char === '+' || char === '?') {
      repeat(1);
      if (source[index + 1] === '?') index += 1;
    } else if (counted) {
      const min = Number(counted[1]);
      const max = counted[2] === undefined ? min : counted[3] ? Number(counted[3]) : min + 1;
      repeat(Math.max(min, max, 1));
      index += counted[0].length;
      if (source[index] === '?') index += 1;
      continue;
    } else {
      addAtom(char === '.' ? WIDE_ATOM_COST : 1);
    }
    index += 1;
  }
  const root = stack[0]!;
  return root.done + root.current;
}

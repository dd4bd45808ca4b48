import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { isAppError } from '../src/errors.js';
import {
  BACKTRACKING_LINE_LIMIT,
  compileSafePattern,
  estimatePatternCost,
  MATCH_LINE_LIMIT,
  matchLine,
  PATTERN_MAX_COST,
  requiredLiterals,
  windowTwin,
} from '../src/safe-pattern.js';

function refusal(raw: string, field = 'pattern'): string {
  try {
    compileSafePattern(raw, field);
  } catch (error) {
    expect(isAppError(error, 'HOOK_INVALID')).toBe(true);
    return (error as Error).message;
  }
  throw new Error(`${raw} was accepted`);
}

function timeMatch(re: RegExp, line: string): number {
  const start = performance.now();
  matchLine(re, line);
  return performance.now() - start;
}

function hostileLines(length: number): Record<string, string> {
  return {
    [`a×${length}`]: 'a'.repeat(length),
    [`a×${length - 1}!`]: `${'a'.repeat(length - 1)}!`,
    'ab…': 'ab'.repeat(length / 2),
    'x…': 'x'.repeat(length),
    'spaces': ' '.repeat(length),
    'a␠…': 'a '.repeat(length / 2),
    ',␠…': ', '.repeat(length / 2),
  };
}
const HOSTILE_LINES = hostileLines(MATCH_LINE_LIMIT);
const STAR_ALTERNATIVES = `(?:${[...'abcdefgh'].map((letter) => `.*${letter}`).join('|')}){2}`;

describe('compileSafePattern', () => {
  it('compiles ordinary patterns that match what they should', () => {
    expect(matchLine(compileSafePattern('FAIL', 'p'), 'test 3 FAIL: expected 2')).toBe(true);
    expect(compileSafePattern('error:\\s+(\\w+)', 'p').exec('error:   ENOENT')?.[1]).toBe('ENOENT');
    expect(matchLine(compileSafePattern('^\\s+at .*\\(.*:\\d+:\\d+\\)$', 'p'), '    at run (/app/src/main.ts:10:5)')).toBe(true);
    expect(matchLine(compileSafePattern('Tests?:\\s+\\d+ failed', 'p'), 'Tests:  3 failed, 10 passed')).toBe(true);
    expect(matchLine(compileSafePattern('Tests?:\\s+\\d+ failed', 'p'), 'Tests:  all passed')).toBe(false);
  });

  it('returns a plain RegExp without the l, g or y flags', () => {
    const re = compileSafePattern('/done/gms', 'p');
    expect(re.flags).toBe('ms');
    expect([matchLine(re, 'done'), matchLine(re, 'done')]).toEqual([true, true]);
  });

  it('accepts /source/flags and a leading (?i), folding case into ASCII classes', () => {
    expect(compileSafePattern('/fail/i', 'p').source).toBe('[fF][aA][iI][lL]');
    expect(matchLine(compileSafePattern('/fail/i', 'p'), 'FAIL')).toBe(true);
    expect(matchLine(compileSafePattern('(?i)error', 'p'), 'Error: x')).toBe(true);
    expect(compileSafePattern('/[a-c]x-[^q]/i', 'p').source).toBe('[a-cA-C][xX]-[^qQ]');
    expect(compileSafePattern('/[a-]/i', 'p').source).toBe('[aA-]');
    expect(compileSafePattern('/(?<Name>ab)\\x4a\\cJ\\d/i', 'p').source).toBe('(?<Name>[aA][bB])[\\x4aj]\\cJ\\d');
  });

  it('folds case like the native i flag on ASCII text', () => {
    const patterns = ['fail', '[a-f]+z', '[^a-z]x', '[A-Z][a-z]*', '[0-z]{2}', '[\\w-]q', 'x{2,3}Y', '(?:ok|no)\\b', '[^]e', '\\x41b', '[\\x41-\\x43]q', '\\.z'];
    const samples = ['FAIL', 'fail', 'Fail!', 'ABCZ', 'abcz', '1X', '1x', 'Hello', 'xxY', 'XXy', 'OK', 'No ', 'q-Q', ' E', 'aB', '[z', '_Q', '9Z', 'bQ', 'cq', '.Z'];
    for (const pattern of patterns) {
      const folded = compileSafePattern(`/${pattern}/i`, 'p');
      const native = new RegExp(pattern, 'i');
      for (const sample of samples) expect(folded.test(sample), `${pattern} on ${sample}`).toBe(native.test(sample));
    }
  });

  it('treats a slash-delimited path without flag letters as a plain pattern', () => {
    expect(compileSafePattern('/tmp/x', 'p').source).toBe('\\/tmp\\/x');
    expect(matchLine(compileSafePattern('/tmp/x', 'p'), 'wrote /tmp/x')).toBe(true);
  });

  it('refuses flags other than i, m, s (g is ignored)', () => {
    expect(refusal('/FAIL/u')).toBe('Invalid hook: pattern must be a regex whose flags are among i, m, s (flag "u" is not supported) (got "/FAIL/u")');
    expect(refusal('/FAIL/y')).toContain('(flag "y" is not supported)');
  });

  it('refuses empty and overlong patterns', () => {
    expect(refusal('')).toBe('Invalid hook: pattern must be a non-empty string of at most 1000 characters (got "")');
    expect(refusal('a'.repeat(1001))).toContain('pattern must be a non-empty string of at most 1000 characters (got "aaa');
  });

  it('refuses patterns that do not compile, with the reason', () => {
    expect(refusal('(', 'hooks[0].trigger.pattern')).toBe('Invalid hook: hooks[0].trigger.pattern must be a valid regular expression, but "(" is not: Unterminated group');
    expect(refusal('a**')).toBe('Invalid hook: pattern must be a valid regular expression, but "a**" is not: Nothing to repeat');
  });

  it('refuses backreferences, lookaround and large counted repetitions', () => {
    const expected = (raw: string): string =>
      'Invalid hook: pattern must be a regex that can be matched in linear time: backreferences (\\1, \\k<name>), ' +
      `lookaround ((?=, (?!, (?<=, (?<!) and counted repetitions above {16} are not supported (got ${JSON.stringify(raw)})`;
    for (const raw of ['(a)\\1', '(?<q>["\'])x\\k<q>', '(?<=id=)\\d+', '(?<!no )error', 'foo(?=bar)', 'foo(?!bar)', '\\d{17}', '(.*a){20}', '.{0,100}']) {
      expect(refusal(raw)).toBe(expected(raw));
    }
    expect(() => compileSafePattern('\\d{16}', 'p')).not.toThrow();
  });

  it('refuses patterns too large to match an 8 KiB line quickly', () => {
    expect(refusal('.*a'.repeat(31))).toBe(`Invalid hook: pattern must be a simpler regex (its size is 155, the limit is 150; counted repetitions multiply the size) (got "${'.*a'.repeat(19)}...")`);
    expect(refusal('(?:.*a){16}'.repeat(2))).toContain('its size is 164');
    expect(refusal('x'.repeat(151))).toContain('its size is 151');
    expect(estimatePatternCost('FAIL')).toBe(4);
    expect(estimatePatternCost('.*')).toBe(4);
    expect(estimatePatternCost('[^,]\\s\\w')).toBe(5);
    expect(estimatePatternCost('(?:.*a){16}')).toBe(82);
    expect(estimatePatternCost('(a|bc)+')).toBe(8);
    expect(estimatePatternCost('[a-z]{2,5}\\d')).toBe(8);
    expect(estimatePatternCost('(?<n>x)')).toBe(3);
  });

  it('passes another error code through for non-hook callers', () => {
    expect(() => compileSafePattern('(', 'grep', 'INVALID_INPUT')).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
  });
});

describe('matchLine', () => {
  it('tests only the first 8 KiB of a line', () => {
    const re = compileSafePattern('FAIL', 'p');
    expect(matchLine(re, `${'.'.repeat(MATCH_LINE_LIMIT - 4)}FAIL`)).toBe(true);
    expect(matchLine(re, `${'.'.repeat(MATCH_LINE_LIMIT - 3)}FAIL`)).toBe(false);
  });

  it('also takes regexes it did not compile, long lines included', () => {
    const long = `${'.'.repeat(BACKTRACKING_LINE_LIMIT)}ab ab`;
    expect(matchLine(/ab ab/, long)).toBe(true);
    expect(matchLine(/(ab) \1/, long)).toBe(true);
    expect(matchLine(/ab ac/g, long)).toBe(false);
  });
});

describe('regex safety', () => {
  const report: string[] = [];

  it('matches catastrophic patterns against hostile 8 KiB lines quickly, or refuses them', () => {
    const exponential = ['(a+)+$', '(.*a){20}', '(.*a){16}', '([a-z]+)*!', '^(a|aa)+$', '(x+x+)+y', '(\\s*)*$', '(?:[a-z]*[a-z]*)+!', '/(.*A){16}/i'];
    // Quadratic: V8 does not count these rewinds as backtracks, so only the linear engine on long lines saves us.
    const quadratic = ['x*y', '.*a', '\\w+\\s*=', STAR_ALTERNATIVES];
    for (const raw of [...exponential, ...quadratic]) {
      let re: RegExp;
      try {
        re = compileSafePattern(raw, 'p');
      } catch (error) {
        expect(isAppError(error, 'HOOK_INVALID')).toBe(true);
        report.push(`${raw}: refused`);
        continue;
      }
      const times = Object.entries(HOSTILE_LINES).map(([name, line]) => [name, timeMatch(re, line)] as const);
      report.push(`${raw}: ${times.map(([name, ms]) => `${name} ${ms.toFixed(1)}ms`).join(', ')}`);
      for (const [name, ms] of times) expect(ms, `${raw} on ${name}`).toBeLessThan(250);
    }
  });

  it('keeps the largest accepted patterns within a loose bound on hostile lines', () => {
    const largest = ['.*a'.repeat(30), '(?:.*a){16}(?:.*a){8}', '(?:.*a|.*b|.*c|.*d){6}', STAR_ALTERNATIVES, '(.*a)'.repeat(21), '\\w+\\s*'.repeat(21), '(?:\\w*\\s*){16}x', '(?:\\s*\\S*){16}$'];
    for (const raw of largest) {
      expect(estimatePatternCost(raw)).toBeLessThanOrEqual(PATTERN_MAX_COST);
      const re = compileSafePattern(raw, 'p');
      for (const length of [BACKTRACKING_LINE_LIMIT, MATCH_LINE_LIMIT]) {
        const worstMs = Math.max(...Object.values(hostileLines(length)).map((line) => timeMatch(re, line)));
        report.push(`${raw.slice(0, 24)}… (size ${estimatePatternCost(raw)}) on ${length}-char lines: worst ${worstMs.toFixed(1)}ms`);
        expect(worstMs, raw).toBeLessThan(1000);
      }
    }
    // The measured times, for a person tuning the limits: CHORUS_TEST_REPORT=1 npx vitest run test/safe-pattern.test.ts
    if (process.env.CHORUS_TEST_REPORT) console.log(report.join('\n'));
  });

  it('owes its speed to the V8 flags: without them a child process backtracks far longer', () => {
    const hostile = `${'a'.repeat(23)}!`;
    const script = `const s = ${JSON.stringify(hostile)}; const t = performance.now(); /(a+)+$/.test(s); console.log(performance.now() - t);`;
    const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 });
    const withoutFlagsMs = child.status === 0 ? Number(child.stdout.trim()) : 20_000;
    const withFlagsMs = timeMatch(compileSafePattern('(a+)+$', 'p'), hostile);
    if (process.env.CHORUS_TEST_REPORT) console.log(`(a+)+$ on ${hostile.length} chars: ${withoutFlagsMs.toFixed(1)}ms without the flags (child), ${withFlagsMs.toFixed(2)}ms with them`);
    expect(withoutFlagsMs).toBeGreaterThan(50);
    expect(withoutFlagsMs).toBeGreaterThan(withFlagsMs * 10);
  });
});

describe('window twins', () => {
  it('are refused to patterns that could rewind across a window or look past a cut line', () => {
    for (const raw of ['x*y', 'a+b', '(ab)+', 'ERROR: (\\w+)', 'done$', '\\bfoo', 'a\\B']) expect(windowTwin(compileSafePattern(raw, 'pattern')), raw).toBeNull();
    // Choices in a row multiply: each of these took 60-380 ms on a 64 KiB window (V8 falling back to its linear engine).
    for (const raw of ['a?a?a?a?aaab', '(a|a)(a|a)(a|a)(a|a)b', '(a|aa)(a|aa)(a|aa)(a|aa)c', '(a?){16}b', '(ERROR|WARN): x']) {
      expect(windowTwin(compileSafePattern(raw, 'pattern')), raw).toBeNull();
    }
    for (const raw of ['ERROR|panic', '^Traceback', '(?i)ready at \\d', '[*+$]x', '\\*\\+\\$', 'a{3}b', '[\\b]', '(?:ERROR): x|FAIL', 'error TS\\d{4}', 'a+', 'a{2,}', 'a{3}b?']) {
      expect(windowTwin(compileSafePattern(raw, 'pattern')), raw).not.toBeNull();
    }
    // A search finds a trailing repetition of one atom exactly where it finds the atom once (or not at all).
    const twinOf = (raw: string) => windowTwin(compileSafePattern(raw, 'pattern'))!.source;
    expect(['panic: \\w+', 'x\\s*', 'a{2,5}', 'foo\\d+\\s*', 'x[a-z]+?', 'ERROR|panic: \\w+'].map(twinOf)).toEqual(['panic: \\w', 'x', 'a{2}', 'foo\\d', 'x[a-z]', 'ERROR|panic: \\w']);
  });

  it('keep a lazy quantifier after a group, which may match nothing', () => {
    // `x(a)*?` matches the line `x`: a twin read as `x(a)` passed over windows holding it.
    for (const raw of ['x(a)*?', 'x(ab)??', 'x(?:a|b)*?y?']) {
      const twin = windowTwin(compileSafePattern(raw, 'pattern'));
      expect(twin === null || twin.test('x\n'), `${raw}: ${twin}`).toBe(true);
    }
  });

  it('match every window that holds a matching line, CRLF and cut lines included', () => {
    const patterns = ['ERROR|panic', '^Traceback', '(?i)ready AT \\d', 'x{3}y?', 'panic: \\w+', 'ab*', 'x{2,}', 'a.c', '/^b/m', '/a.c/s', 'c\\r'];
    const pieces = ['panic: oops', 'panic: ', 'abbb', 'xx', 'ERROR here', 'Traceback (most recent)', 'READY at 5', 'xxx', '', 'abc', 'a\rc', 'b', 'noise\r', 'x'.repeat(MATCH_LINE_LIMIT - 2) + 'READY at 7', 'y'.repeat(MATCH_LINE_LIMIT + 5) + 'ERROR'];
    let state = 7;
    const next = () => { state = (state * 1664525 + 1013904223) >>> 0; return state / 2 ** 32; };
    for (const raw of patterns) {
      const re = compileSafePattern(raw, 'pattern');
      const twin = windowTwin(re)!;
      expect(twin, raw).not.toBeNull();
      for (let round = 0; round < 300; round += 1) {
        const lines = Array.from({ length: 1 + Math.floor(next() * 6) }, () => pieces[Math.floor(next() * pieces.length)]!);
        // What a line's matching sees: cut at the limit, the CR of a CRLF dropped.
        const seen = lines.map((l) => { const cut = l.slice(0, MATCH_LINE_LIMIT); return cut.endsWith('\r') ? cut.slice(0, -1) : cut; });
        const window = lines.map((l) => `${l}\n`).join('');
        if (seen.some((l) => matchLine(re, l))) expect(twin.test(window), `${raw} on ${JSON.stringify(lines)}`).toBe(true);
      }
    }
  });
});

describe('required literals', () => {
  const literalsOf = (raw: string) => requiredLiterals(compileSafePattern(raw, 'pattern'));

  it('are the plain characters each alternative starts with, each one required', () => {
    expect(literalsOf('ERROR')).toEqual(['ERROR']);
    expect(literalsOf('ERROR|panic: \\w+|^Traceback \\(most')).toEqual(['ERROR', 'panic: ', 'Traceback (most']);
    expect(literalsOf('ERROR.*disk full')).toEqual(['ERROR']);
    // A character that may be absent or repeated ends the text; one that repeats is kept once.
    expect(literalsOf('colou?r')).toEqual(['colo']);
    expect(literalsOf('ab*c')).toEqual(['a']);
    expect(literalsOf('ab{2}c')).toEqual(['a']);
    expect(literalsOf('ab+c')).toEqual(['ab']);
    expect(literalsOf('x\\.y\\/z')).toEqual(['x.y/z']);
    expect(literalsOf('error TS\\d{4}')).toEqual(['error TS']);
  });

  it('are none when an alternative starts with no such character, or case is folded', () => {
    for (const raw of ['\\d+ errors', '(ERROR|WARN): x', 'ERROR|[Pp]anic', '.ERROR', 'a?b', '(?i)error', '/error/i', 'a{2}b', '\\x41B', 'ready|', '\\tTAB']) {
      expect(literalsOf(raw), raw).toBeNull();
    }
    expect(requiredLiterals(/error/i)).toBeNull();
  });

  it('are in every line a pattern matches', () => {
    const patterns = ['ERROR|panic: \\w+', '^Traceback \\(most', 'colou?r', 'ab+c', 'ab*c', 'x\\.y', 'error TS\\d{4}', 'ERROR.*disk', 'ca{2}b'];
    const pieces = ['ERROR', 'panic: ', 'panic: x', 'Traceback (most', 'color', 'colour', 'colr', 'abc', 'abbbc', 'ac', 'x.y', 'xy', 'error TS1234', 'disk', 'caab', 'cab', ' ', 'E', 'RROR'];
    let state = 11;
    const next = () => { state = (state * 1664525 + 1013904223) >>> 0; return state / 2 ** 32; };
    for (const raw of patterns) {
      const re = compileSafePattern(raw, 'pattern');
      const literals = requiredLiterals(re);
      expect(literals, raw).not.toBeNull();
      for (let round = 0; round < 2000; round += 1) {
        const line = Array.from({ length: 1 + Math.floor(next() * 4) }, () => pieces[Math.floor(next() * pieces.length)]!).join('');
        if (matchLine(re, line)) expect(literals!.some((literal) => line.includes(literal)), `${raw} on ${JSON.stringify(line)}`).toBe(true);
      }
    }
  });
});

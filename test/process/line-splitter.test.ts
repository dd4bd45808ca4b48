import { describe, expect, it } from 'vitest';
import { LineSplitter, MAX_LINE_BYTES, type EmitLine, type LineWindow, type SplitLine } from '../../src/process/line-splitter.js';
import { RollingTail } from '../../src/process/tail.js';

/** Collects emitted lines as SplitLine objects. */
const into = (lines: SplitLine[]): EmitLine => (text, endOffset, isCut) => { lines.push({ text, endOffset, isCut }); };

/** What the splitter must produce, from the whole stream at once: cut at MAX_LINE_BYTES bytes, CR of CRLF dropped. */
function reference(stream: Buffer): SplitLine[] {
  const lines: SplitLine[] = [];
  let start = 0;
  for (let newline = stream.indexOf(10); newline >= 0; newline = stream.indexOf(10, start)) {
    lines.push(referenceLine(stream.subarray(start, newline), newline + 1));
    start = newline + 1;
  }
  if (start < stream.length) lines.push(referenceLine(stream.subarray(start), stream.length));
  return lines;
}

function referenceLine(bytes: Buffer, endOffset: number): SplitLine {
  const isCut = bytes.length > MAX_LINE_BYTES;
  let kept = isCut ? bytes.subarray(0, MAX_LINE_BYTES) : bytes;
  if (kept.length && kept[kept.length - 1] === 13) kept = kept.subarray(0, -1);
  return { text: kept.toString('utf8'), endOffset, isCut };
}

function split(stream: Buffer, chunkSizes: () => number, startOffset = 0): SplitLine[] {
  const lines: SplitLine[] = [];
  const splitter = new LineSplitter();
  for (let at = 0; at < stream.length;) {
    const end = Math.min(stream.length, at + chunkSizes());
    splitter.push(stream.subarray(at, end), startOffset + end, into(lines));
    at = end;
  }
  splitter.flush(startOffset + stream.length, into(lines));
  return lines;
}

/** A small seeded generator, so a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** `nonAscii`: how often a piece is UTF-8 or invalid bytes; rare, most windows of the stream are pure ASCII. */
function randomStream(next: () => number, bytes: number, nonAscii: number): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  const ascii = ['plain ascii text ', '\r', '\r\n', '\n', '\n\n', 'x'.repeat(70)];
  const other = [Buffer.from('é'), Buffer.from('日本'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from([0xe6, 0x97])];
  while (size < bytes) {
    const roll = next();
    let part: Buffer;
    if (roll < 0.002) part = Buffer.alloc(MAX_LINE_BYTES - 2 + Math.floor(next() * 5), 'y'); // around the cut
    else if (roll < 0.003) part = Buffer.alloc(70_000 + Math.floor(next() * 70_000), 'z'); // longer than a window
    else if (roll < 0.003 + nonAscii) part = other[Math.floor(next() * other.length)]!;
    else part = Buffer.from(ascii[Math.floor(next() * ascii.length)]!);
    parts.push(part);
    size += part.length;
  }
  return Buffer.concat(parts);
}

describe('line splitter', () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8])('splits random output the same whatever the chunking (seed %i)', (seed) => {
    const next = random(seed);
    const stream = randomStream(next, 600_000, seed % 2 ? 0.1 : 0.00002);
    const expected = reference(stream);
    const chunkings: Array<() => number> = [() => 1 + Math.floor(next() * 300), () => 1 + Math.floor(next() * 200_000), () => 1024 * 1024];
    for (const chunkSize of chunkings) expect(split(stream, chunkSize)).toEqual(expected);
  });

  it.each([1, 2, 3, 4])('makes exactly the last lines of a chunk when only those are asked for, and carries on whole (seed %i)', (seed) => {
    const next = random(seed);
    const stream = randomStream(next, 600_000, seed % 2 ? 0.1 : 0.00002);
    const all = reference(stream);
    const splitter = new LineSplitter();
    const lines: SplitLine[] = [];
    const expected: SplitLine[] = [];
    for (let at = 0; at < stream.length;) {
      const end = Math.min(stream.length, at + 1 + Math.floor(next() * (next() < 0.5 ? 300 : 200_000)));
      const endingHere = all.filter((line) => line.endOffset > at && line.endOffset <= end && stream[line.endOffset - 1] === 10);
      if (next() < 0.5) {
        splitter.push(stream.subarray(at, end), end, into(lines));
        expected.push(...endingHere);
      } else {
        const maxLines = [0, 1, 3, 100][Math.floor(next() * 4)]!;
        splitter.pushLast(stream.subarray(at, end), end, maxLines, into(lines));
        expected.push(...endingHere.slice(endingHere.length - Math.min(maxLines, endingHere.length)));
      }
      at = end;
    }
    splitter.flush(stream.length, into(lines));
    if (stream[stream.length - 1] !== 10) expected.push(all[all.length - 1]!);
    expect(lines).toEqual(expected);
  });

  it.each([1, 2, 3])('passes over windows nobody needs, making every needed line and keeping the tail exact (seed %i)', (seed) => {
    const next = random(seed);
    const base = randomStream(next, 600_000, seed % 2 ? 0.05 : 0.00002).toString('latin1');
    // Rare marked lines: the windows that hold one are not passed over.
    const stream = Buffer.from(base.replace(/x{70}/g, (m) => (next() < 0.01 ? `MARK${m.slice(4)}` : m)), 'latin1');
    const all = reference(stream);
    const splitter = new LineSplitter();
    const every: SplitLine[] = [];
    const made: SplitLine[] = [];
    const emit = into(every);
    // Asked by a byte search (nothing decoded) or by the window's text, as a hook with and without needles asks.
    const pass = { canPass: (window: LineWindow) => (seed === 2 ? !window.text().includes('MARK') : !window.bytes.includes('MARK')), tailLines: 100, emitTail: into(made) };
    for (let at = 0; at < stream.length;) {
      const end = Math.min(stream.length, at + 1 + Math.floor(next() * 200_000));
      splitter.push(stream.subarray(at, end), end, (text, endOffset, isCut) => { emit(text, endOffset, isCut); made.push({ text, endOffset, isCut }); }, pass);
      at = end;
      const ended = all.filter((line) => line.endOffset <= end && stream[line.endOffset - 1] === 10);
      expect(made.slice(-100)).toEqual(ended.slice(-100));
    }
    const marked = all.filter((line) => line.text.includes('MARK') && stream[line.endOffset - 1] === 10);
    expect(marked.length).toBeGreaterThan(0);
    expect(every.filter((line) => line.text.includes('MARK'))).toEqual(marked);
    expect(every.length).toBeLessThan(all.length);
  });

  it.each([1, 2, 3, 4])('keeps a tail given its lines as bytes exactly the last lines of the stream (seed %i)', (seed) => {
    const next = random(seed);
    const base = randomStream(next, 600_000, seed % 2 ? 0.05 : 0.00002).toString('latin1');
    const stream = Buffer.from(base.replace(/x{70}/g, (m) => (next() < 0.01 ? `MARK${m.slice(4)}` : m)), 'latin1');
    const all = reference(stream);
    const splitter = new LineSplitter();
    const tail = new RollingTail(100);
    // As the manager feeds its tail: every line made, and the tail's lines as bytes where they are ASCII.
    const toTail: EmitLine = (text) => tail.push('stdout', text);
    const asBytes = (bytes: Buffer, lines: number) => tail.pushAscii('stdout', bytes, lines);
    const pass = { canPass: (window: LineWindow) => !window.bytes.includes('MARK'), tailLines: 100, emitTail: toTail, emitTailBytes: asBytes };
    let reads = 0;
    for (let at = 0; at < stream.length;) {
      const end = Math.min(stream.length, at + 1 + Math.floor(next() * (next() < 0.5 ? 3_000 : 60_000)));
      if (next() < 0.5) splitter.push(stream.subarray(at, end), end, toTail, pass);
      else splitter.pushLast(stream.subarray(at, end), end, 100, toTail, asBytes);
      at = end;
      if (next() < 0.3) {
        reads += 1;
        const ended = all.filter((line) => line.endOffset <= end && stream[line.endOffset - 1] === 10);
        expect(tail.size).toBe(Math.min(100, ended.length));
        expect(tail.toArray().map((line) => line.text)).toEqual(ended.slice(-100).map((line) => line.text));
      }
    }
    expect(reads).toBeGreaterThan(5);
  });

  it('makes a tail\'s byte lines in their place among lines of both streams, keeping only the newest', () => {
    const tail = new RollingTail(4);
    tail.push('stderr', 'e1');
    tail.pushAscii('stdout', Buffer.from('a\r\nb\n'), 2);
    tail.push('stderr', 'e2');
    tail.pushAscii('stdout', Buffer.from('c\n'), 1);
    expect(tail.toArray()).toEqual([
      { stream: 'stdout', text: 'a' }, { stream: 'stdout', text: 'b' }, { stream: 'stderr', text: 'e2' }, { stream: 'stdout', text: 'c' },
    ]);
    // Bytes holding more lines than the tail: the older lines, pending or made, are gone.
    tail.pushAscii('stdout', Buffer.from('d\ne\n'), 2);
    tail.pushAscii('stderr', Buffer.from('f\ng\nh\ni\nj\n'), 5);
    expect(tail.size).toBe(4);
    expect(tail.toArray(2)).toEqual([{ stream: 'stderr', text: 'i' }, { stream: 'stderr', text: 'j' }]);
    expect(tail.toArray().map((line) => line.text)).toEqual(['g', 'h', 'i', 'j']);
  });

  it('makes, of a window holding one match, only the lines of the piece around it', () => {
    const lines = Array.from({ length: 2000 }, (_, i) => (i === 700 ? 'line 700 MARK' : `line ${i} ${'x'.repeat(50)}`));
    const chunk = Buffer.from(`${lines.join('\n')}\n`);
    const made: string[] = [];
    const tail: string[] = [];
    new LineSplitter().push(chunk, chunk.length, (text) => made.push(text), { canPass: (window) => !window.bytes.includes('MARK'), tailLines: 10, emitTail: (text) => tail.push(text) });
    expect(made).toContain('line 700 MARK');
    // A 4 KiB piece holds about 70 of these lines; the window around it would have made about 1,100.
    expect(made.length).toBeLessThan(150);
    expect([...made, ...tail].slice(-10)).toEqual(lines.slice(-10));
  });

  it('continues a line split across a read of only the last lines and a full read', () => {
    const splitter = new LineSplitter();
    const lines: SplitLine[] = [];
    const first = Buffer.from('one\ntwo\nthree\nfou');
    splitter.pushLast(first, first.length, 1, into(lines));
    splitter.push(Buffer.from('r\nfive\n'), first.length + 7, into(lines));
    expect(lines.map((l) => l.text)).toEqual(['three', 'four', 'five']);
    expect(lines[1]!.endOffset).toBe(first.length + 2);
  });

  it('gives logical offsets that continue from where the stream started', () => {
    const lines = split(Buffer.from('a\nbb\r\nccc'), () => 4, 1000);
    expect(lines).toEqual([
      { text: 'a', endOffset: 1002, isCut: false },
      { text: 'bb', endOffset: 1006, isCut: false },
      { text: 'ccc', endOffset: 1009, isCut: false },
    ]);
  });

  it('cuts an ASCII line of a window at 8 KiB and drops a CR that lands at the cut', () => {
    const line = `${'a'.repeat(MAX_LINE_BYTES - 1)}\r${'b'.repeat(10)}\n`;
    const [first] = split(Buffer.from(`${line}next\n`), () => 1024 * 1024);
    expect(first).toEqual({ text: 'a'.repeat(MAX_LINE_BYTES - 1), endOffset: line.length, isCut: true });
  });
});

import { isAscii } from 'node:buffer';

/** Lines longer than this are cut for matching and the tail; the log file keeps them whole. */
export const MAX_LINE_BYTES = 8 * 1024;

export interface SplitLine {
  text: string;
  /** Byte offset just past this line's newline, in the stream's logical position (rotations included). */
  endOffset: number;
  isCut: boolean;
}

/** Receives a line as its parts, not as a SplitLine: a million lines make no object each. */
export type EmitLine = (text: string, endOffset: number, isCut: boolean) => void;

const NEWLINE = 0x0a;
const CR = 0x0d;
/**
 * ASCII is decoded a window at a time. Lines are slices of the window's string and keep it alive while held (the
 * tail holds 100), so a window is kept small next to the read chunk.
 */
const WINDOW_BYTES = 64 * 1024;
/** A window some reader may match is asked again in pieces of this size (a few dozen lines each). */
const PIECE_BYTES = 4 * 1024;

/**
 * Whole ASCII lines (up to 64 KiB, newline-separated, CRs kept) asked about at once: their bytes, and their text,
 * decoded only when first asked for (a byte search may answer without it).
 */
export interface LineWindow {
  readonly bytes: Buffer;
  text(): string;
}

class AsciiWindow implements LineWindow {
  private decoded: string | undefined;

  constructor(readonly bytes: Buffer) {}

  text(): string {
    this.decoded ??= this.bytes.toString('latin1');
    return this.decoded;
  }
}

/**
 * Lets push pass over whole ASCII windows whose lines concern nobody (no reader's pattern can match in them): of such
 * a window only its last `tailLines` lines are made, through `emitTail`.
 */
export interface PassOver {
  canPass(window: LineWindow): boolean;
  tailLines: number;
  emitTail: EmitLine;
  /** Takes those last lines as their bytes instead (see EmitTailBytes), when given; emitTail is then not called. */
  emitTailBytes?: EmitTailBytes | undefined;
}

/**
 * Receives whole ASCII lines for a tail as their bytes (`lines` lines, each ending in a newline), valid only during
 * the call: a tail decodes them (asciiLines) only if it is read before newer lines replace them.
 */
export type EmitTailBytes = (bytes: Buffer, lines: number) => void;

/** Splits a byte stream into lines, carrying the unfinished last line (at most MAX_LINE_BYTES of it) to the next chunk. */
export class LineSplitter {
  private carry: Buffer | null = null;
  private carryIsCut = false;

  /** `chunkEndOffset` is the logical offset just past the chunk's last byte. */
  push(chunk: Buffer, chunkEndOffset: number, emit: EmitLine, pass?: PassOver): void {
    const chunkStart = chunkEndOffset - chunk.length;
    let start = 0;
    if (this.carry !== null) {
      const newline = chunk.indexOf(NEWLINE);
      if (newline < 0) {
        this.keep(chunk, 0);
        return;
      }
      this.finishLine(chunk, 0, newline, chunkStart + newline + 1, emit);
      start = newline + 1;
    }
    // The last window passed over (its bytes in the chunk): it gives the tail its last lines, unless a later window
    // gives them all. Only those lines are decoded.
    let passedAt = -1;
    let passedEnd = 0;
    const emitPassed = (): void => {
      if (passedAt < 0 || !pass) return;
      const lastStart = lastLinesStart(chunk.subarray(passedAt, passedEnd), pass.tailLines);
      const from = passedAt + Math.max(0, lastStart);
      if (pass.emitTailBytes) pass.emitTailBytes(chunk.subarray(from, passedEnd), lastStart < 0 ? countLines(chunk, from, passedEnd) : pass.tailLines);
      else emitAsciiLines(chunk.toString('latin1', from, passedEnd), chunkStart + from, pass.emitTail);
      passedAt = -1;
    };
    const passOver = (from: number, to: number): void => {
      if (lastLinesStart(chunk.subarray(from, to), pass!.tailLines) < 0) emitPassed();
      passedAt = from;
      passedEnd = to;
    };
    const last = chunk.lastIndexOf(NEWLINE);
    while (start <= last) {
      const windowEnd = start + WINDOW_BYTES >= last ? last : chunk.lastIndexOf(NEWLINE, start + WINDOW_BYTES);
      if (windowEnd < start) {
        emitPassed();
        // A line longer than a window.
        const newline = chunk.indexOf(NEWLINE, start);
        this.finishLine(chunk, start, newline, chunkStart + newline + 1, emit);
        start = newline + 1;
      } else if (isAscii(chunk.subarray(start, windowEnd + 1))) {
        // Most output is ASCII: one decode per window and a string split cost far less than one decode per line.
        if (!pass) {
          emitAsciiLines(chunk.toString('latin1', start, windowEnd + 1), chunkStart + start, emit);
        } else if (pass.canPass(new AsciiWindow(chunk.subarray(start, windowEnd + 1)))) {
          passOver(start, windowEnd + 1);
        } else {
          // A window that holds a match: its pieces are asked again, so only the lines near the match are made.
          const size = windowEnd + 1 - start;
          for (let at = 0; at < size;) {
            let pieceEnd = at + PIECE_BYTES >= size - 1 ? size - 1 : chunk.lastIndexOf(NEWLINE, start + at + PIECE_BYTES) - start;
            if (pieceEnd < at) pieceEnd = chunk.indexOf(NEWLINE, start + at) - start;
            const piece = new AsciiWindow(chunk.subarray(start + at, start + pieceEnd + 1));
            if (piece.bytes.length < size && pass.canPass(piece)) {
              passOver(start + at, start + pieceEnd + 1);
            } else {
              emitPassed();
              emitAsciiLines(piece.text(), chunkStart + start + at, emit);
            }
            at = pieceEnd + 1;
          }
        }
        start = windowEnd + 1;
      } else {
        emitPassed();
        for (let newline = chunk.indexOf(NEWLINE, start); start <= windowEnd; newline = chunk.indexOf(NEWLINE, start)) {
          this.finishLine(chunk, start, newline, chunkStart + newline + 1, emit);
          start = newline + 1;
        }
      }
    }
    emitPassed();
    if (start < chunk.length) this.keep(chunk, start);
  }

  /**
   * As push, but makes only the last `maxLines` lines that end in this chunk (for a tail), when nobody reads the others:
   * a chunk of many lines then costs a backward search for its last newlines, not a string per line. The unfinished
   * last line is carried as by push, so a later push continues it.
   */
  pushLast(chunk: Buffer, chunkEndOffset: number, maxLines: number, emit: EmitLine, emitBytes?: EmitTailBytes): void {
    const start = lastLinesStart(chunk, maxLines);
    if (start < 0) return this.push(chunk, chunkEndOffset, emit);
    // The lines before, and the carry the first of them finishes, are not made.
    this.carry = null;
    this.carryIsCut = false;
    const end = chunk.lastIndexOf(NEWLINE) + 1;
    // Whole ASCII lines go to the tail as bytes; the unfinished last line is carried.
    if (emitBytes && isAscii(chunk.subarray(start, end))) {
      emitBytes(chunk.subarray(start, end), maxLines);
      if (end < chunk.length) this.keep(chunk, end);
      return;
    }
    this.push(chunk.subarray(start), chunkEndOffset, emit);
  }

  /** The unfinished last line, when the stream has ended. */
  flush(endOffset: number, emit: EmitLine): void {
    if (this.carry === null) return;
    const text = decode(this.carry, 0, this.carry.length);
    const isCut = this.carryIsCut;
    this.carry = null;
    this.carryIsCut = false;
    emit(text, endOffset, isCut);
  }

  get hasPartial(): boolean {
    return this.carry !== null;
  }

  private finishLine(chunk: Buffer, start: number, end: number, endOffset: number, emit: EmitLine): void {
    if (this.carry === null) {
      const isCut = end - start > MAX_LINE_BYTES;
      const cutEnd = isCut ? start + MAX_LINE_BYTES : end;
      return emit(decode(chunk, start, cutEnd), endOffset, isCut);
    }
    const room = MAX_LINE_BYTES - this.carry.length;
    const isCut = this.carryIsCut || end - start > room;
    const joined = Buffer.concat([this.carry, chunk.subarray(start, start + Math.min(room, end - start))]);
    this.carry = null;
    this.carryIsCut = false;
    emit(decode(joined, 0, joined.length), endOffset, isCut);
  }

  private keep(chunk: Buffer, start: number): void {
    const length = chunk.length - start;
    if (this.carry === null) {
      this.carryIsCut = length > MAX_LINE_BYTES;
      // Copy: the chunk buffer is reused by the reader.
      this.carry = Buffer.from(chunk.subarray(start, start + Math.min(length, MAX_LINE_BYTES)));
      return;
    }
    const room = MAX_LINE_BYTES - this.carry.length;
    if (length > room) this.carryIsCut = true;
    if (room > 0) this.carry = Buffer.concat([this.carry, chunk.subarray(start, start + Math.min(room, length))]);
  }
}

/**
 * Where the last `maxLines` lines that end in `chunk` begin (just past the newline before them), or -1 when the chunk
 * has no more newlines than that: then those lines may begin in an earlier chunk.
 */
export function lastLinesStart(chunk: Buffer, maxLines: number): number {
  let start = chunk.length;
  for (let found = 0; found <= maxLines; found += 1) {
    // Guarded: a negative offset would search from the end again.
    const newline = start > 0 ? chunk.lastIndexOf(NEWLINE, start - 1) : -1;
    if (newline < 0) return -1;
    start = newline;
  }
  return start + 1;
}

/** The newlines in chunk[from, to). */
function countLines(chunk: Buffer, from: number, to: number): number {
  let lines = 0;
  for (let at = chunk.indexOf(NEWLINE, from); at >= 0 && at < to; at = chunk.indexOf(NEWLINE, at + 1)) lines += 1;
  return lines;
}

/** Whole ASCII lines given as bytes (EmitTailBytes), made as push makes them: cut at MAX_LINE_BYTES, a CR end dropped. */
export function asciiLines(bytes: Buffer): string[] {
  const lines: string[] = [];
  emitAsciiLines(bytes.toString('latin1'), 0, (text) => { lines.push(text); });
  return lines;
}

/** The lines of an ASCII window that ends with a newline; `windowStart` is the window's logical offset. */
function emitAsciiLines(text: string, windowStart: number, emit: EmitLine): void {
  let from = 0;
  for (;;) {
    const newline = text.indexOf('\n', from);
    if (newline < 0) return;
    const isCut = newline - from > MAX_LINE_BYTES;
    let end = isCut ? from + MAX_LINE_BYTES : newline;
    if (end > from && text.charCodeAt(end - 1) === CR) end -= 1;
    emit(text.slice(from, end), windowStart + newline + 1, isCut);
    from = newline + 1;
  }
}

/** UTF-8 with invalid bytes replaced (U+FFFD), and a trailing CR dropped (CRLF line ends). */
function decode(buffer: Buffer, start: number, end: number): string {
  if (end > start && buffer[end - 1] === CR) end -= 1;
  return buffer.toString('utf8', start, end);
}

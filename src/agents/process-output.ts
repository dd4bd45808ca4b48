import { closeSync, openSync, readSync } from 'node:fs';
import { AppError } from '../errors.js';
import { matchLine } from '../safe-pattern.js';
import { fileSize, logPath, readLastLines } from '../process/log-reader.js';
import type { LogStream, ProcessRecord } from '../store/process-repo.js';
import { stripTerminal } from '../process/terminal.js';

/** What one read returns at most, so a tool result stays readable. */
export const READ_BYTES_LIMIT = 24 * 1024;
/** How far back a grep without a cursor looks. */
export const GREP_SCAN_LINES = 5_000;
const GREP_SCAN_BYTES = 4 * 1024 * 1024;

export interface CursorRead {
  lines: string[];
  /** Pass back as `cursor` to read what comes after. */
  nextCursor: number;
  /** Bytes between the cursor and the oldest output still on disk (rotated away for good). */
  skippedBytes: number;
  /** Bytes written after what this read returned (more pages, or an unfinished last line). */
  remainingBytes: number;
  /** Lines scanned, before `grep` filtered them. */
  scannedLines: number;
}


function readRange(path: string, start: number, length: number): Buffer {
  if (length <= 0) return Buffer.alloc(0);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return Buffer.alloc(0);
  }
  try {
    const buffer = Buffer.alloc(length);
    let read = 0;
    while (read < length) {
      const n = readSync(fd, buffer, read, length - read, start + read);
      if (n === 0) break;
      read += n;
    }
    return buffer.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}

function rotatedBytes(record: ProcessRecord, stream: LogStream): number {
  return stream === 'stdout' ? record.stdoutRotated : record.stderrRotated;
}

/**
 * The logical end of a stream's complete lines (bytes since the process started, across rotations): a cursor taken
 * here never splits a line. An ended process's unfinished last line counts as complete.
 */
export function streamCursor(record: ProcessRecord, stream: LogStream): number {
  const path = logPath(record, stream);
  const size = fileSize(path);
  const rotated = rotatedBytes(record, stream);
  if (record.status !== 'running' || size === 0) return rotated + size;
  const tail = readRange(path, Math.max(0, size - 64 * 1024), Math.min(size, 64 * 1024));
  const lastNewline = tail.lastIndexOf(0x0a);
  // A last line longer than the window is returned whole rather than hidden.
  if (lastNewline < 0) return rotated + size;
  return rotated + size - (tail.length - lastNewline - 1);
}

/**
 * Reads what a stream got after `cursor` (a logical offset: `stdoutRotated` bytes went to `.1` before the current
 * file began), complete lines only, up to READ_BYTES_LIMIT and `maxLines` kept lines; grep filters without
 * consuming anything but what was scanned.
 */
export function readSinceCursor(
  record: ProcessRecord,
  stream: LogStream,
  cursor: number,
  options: { maxLines: number; grep?: RegExp | undefined },
): CursorRead {
  const path = logPath(record, stream);
  const rotated = rotatedBytes(record, stream);
  const size = fileSize(path);
  const end = rotated + size;
  if (cursor > end) {
    throw new AppError('INVALID_INPUT', `cursor ${cursor} is past the end of ${stream} (${end} bytes so far); pass the next_cursor of your last read of this stream, or leave cursor out to read the last lines`);
  }
  let position = cursor;
  let skippedBytes = 0;
  const parts: Buffer[] = [];
  let budget = READ_BYTES_LIMIT;
  if (position < rotated) {
    const oldPath = `${path}.1`;
    const oldSize = fileSize(oldPath);
    const oldStart = rotated - oldSize;
    if (position < oldStart) {
      skippedBytes = oldStart - position;
      position = oldStart;
    }
    const chunk = readRange(oldPath, position - oldStart, Math.min(budget, rotated - position));
    if (chunk.length === 0) {
      // `.1` ends before the recorded rotation point (bytes dropped at a rotation under a flood): skip the gap.
      skippedBytes += rotated - position;
    } else if (chunk.length < rotated - position) {
      // Budget spent (or `.1` shorter than recorded): continue in the old file next time.
      return toLines(...skipPartialLine(chunk, position, skippedBytes), end, record, options, true);
    } else {
      parts.push(chunk);
      budget -= chunk.length;
    }
    position = rotated;
  }
  parts.push(readRange(path, position - rotated, Math.min(budget, size - (position - rotated))));
  const [data, start, skipped] = skipPartialLine(Buffer.concat(parts), cursor + skippedBytes, skippedBytes);
  return toLines(data, start, skipped, end, record, options, start + data.length < end);
}

/** After a gap, the data starts in the middle of a line: that fragment is skipped too. */
function skipPartialLine(data: Buffer, start: number, skippedBytes: number): [Buffer, number, number] {
  if (skippedBytes === 0) return [data, start, skippedBytes];
  const newline = data.indexOf(0x0a);
  if (newline < 0) return [data, start, skippedBytes];
  return [data.subarray(newline + 1), start + newline + 1, skippedBytes + newline + 1];
}

function toLines(
  data: Buffer,
  start: number,
  skippedBytes: number,
  end: number,
  record: ProcessRecord,
  options: { maxLines: number; grep?: RegExp | undefined },
  isCutByBudget: boolean,
): CursorRead {
  let usable = data.length;
  const lastNewline = data.lastIndexOf(0x0a);
  const isAtEnd = !isCutByBudget && start + data.length >= end;
  if (!(isAtEnd && record.status !== 'running')) {
    // Keep the unfinished last line for the next read, unless it alone fills the budget.
    if (lastNewline >= 0) usable = lastNewline + 1;
    else if (data.length < READ_BYTES_LIMIT) usable = 0;
  }
  const lines: string[] = [];
  let scannedLines = 0;
  let consumed = 0;
  let lineStart = 0;
  while (lineStart < usable) {
    let lineEnd = data.indexOf(0x0a, lineStart);
    if (lineEnd < 0 || lineEnd >= usable) lineEnd = usable;
    let text = data.subarray(lineStart, lineEnd).toString('utf8');
    if (text.endsWith('\r')) text = text.slice(0, -1);
    if (record.isTty) text = stripTerminal(text);
    const next = Math.min(lineEnd + 1, usable);
    if (!options.grep || matchLine(options.grep, text)) {
      if (lines.length >= options.maxLines) break;
      lines.push(text);
    }
    scannedLines += 1;
    consumed = next;
    lineStart = next;
  }
  const nextCursor = start + consumed;
  return { lines, nextCursor, skippedBytes, remainingBytes: Math.max(0, end - nextCursor), scannedLines };
}

/** The last `maxLines` lines of a stream (across `.1`), or the last ones matching `grep` within a bounded window. */
export function readLastOf(record: ProcessRecord, stream: LogStream, maxLines: number, grep?: RegExp): string[] {
  const path = logPath(record, stream);
  if (!grep) return readableLines(record, readLastLines(path, maxLines, READ_BYTES_LIMIT * 4));
  return readableLines(record, readLastLines(path, GREP_SCAN_LINES, GREP_SCAN_BYTES)).filter((line) => matchLine(grep, line)).slice(-maxLines);
}

/** Lines as people and agents read them: a terminal's escape sequences stay in the file only. */
export function readableLines(record: Pick<ProcessRecord, 'isTty'>, lines: string[]): string[] {
  return record.isTty ? lines.map(stripTerminal) : lines;
}

import { closeSync, existsSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import type { LogStream, ProcessRecord } from '../store/process-repo.js';

const BLOCK = 64 * 1024;

/**
 * The last `maxLines` lines of a file (and of its rotated `.1` when the file alone has fewer), at most `maxBytes`,
 * of the bytes before `endOffset` when given (so a follower can continue exactly there).
 */
export function readLastLines(path: string, maxLines: number, maxBytes = 1024 * 1024, endOffset?: number): string[] {
  const lines = lastLinesOfFile(path, maxLines, maxBytes, endOffset);
  if (lines.length < maxLines && existsSync(`${path}.1`)) {
    return [...lastLinesOfFile(`${path}.1`, maxLines - lines.length, maxBytes), ...lines];
  }
  return lines;
}

function lastLinesOfFile(path: string, maxLines: number, maxBytes: number, endOffset = Infinity): string[] {
  if (maxLines <= 0) return [];
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return [];
  }
  try {
    const size = Math.min(fstatSync(fd).size, endOffset);
    let start = size;
    let newlines = 0;
    const chunks: Buffer[] = [];
    // Read backwards until there are enough newlines (one more than lines, for a trailing newline).
    while (start > 0 && newlines <= maxLines && size - start < maxBytes) {
      const length = Math.min(BLOCK, start);
      start -= length;
      const chunk = Buffer.alloc(length);
      readSync(fd, chunk, 0, length, start);
      for (const byte of chunk) if (byte === 0x0a) newlines += 1;
      chunks.unshift(chunk);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    if (start > 0) lines.shift();
    return lines.slice(-maxLines).map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
  } finally {
    closeSync(fd);
  }
}

export function logPath(record: ProcessRecord, stream: LogStream): string {
  return stream === 'stdout' ? record.stdoutLog : record.stderrLog;
}

/** A file's size, 0 when it does not exist (a log not yet written, or rotated away). */
export function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

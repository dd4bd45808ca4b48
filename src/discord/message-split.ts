export const DISCORD_MESSAGE_LIMIT = 2_000;

const FENCE = /^\s*(`{3,}|~{3,})/;
const CLOSE_COST = 4; // "\n```"
const MAX_REOPEN = 24;

/** Cuts one over-long line at the last space in its final fifth, else hard. */
function cutLine(line: string, max: number): string[] {
  const pieces: string[] = [];
  let rest = line;
  while (rest.length > max) {
    const space = rest.lastIndexOf(' ', max);
    const at = space > max * 0.8 ? space + 1 : max;
    pieces.push(rest.slice(0, at));
    rest = rest.slice(at);
  }
  pieces.push(rest);
  return pieces;
}

/**
 * Splits text into messages of at most `limit` characters, on line boundaries; a code block cut in two is closed
 * at the end of one part and opened again (same language) at the start of the next; lines longer than a message
 * are cut.
 */
export function splitMessage(text: string, limit = DISCORD_MESSAGE_LIMIT): string[] {
  const body = text.replace(/\s+$/, '');
  if (!body) return [];
  if (body.length <= limit) return [body];
  const maxPiece = limit - MAX_REOPEN - 1 - CLOSE_COST;
  if (maxPiece < 16) throw new RangeError(`splitMessage: limit ${limit} is too small`);

  const chunks: string[] = [];
  let open: string | null = null;
  let lines: string[] = [];
  let size = 0;
  let prefixLines = 0;

  const start = (): void => {
    lines = open === null ? [] : [open];
    size = open === null ? 0 : open.length;
    prefixLines = lines.length;
  };
  const flush = (): void => {
    if (lines.length > prefixLines) chunks.push(lines.join('\n') + (open === null ? '' : '\n```'));
    start();
  };

  for (const line of body.split('\n')) {
    const fence = FENCE.exec(line);
    const pieces = line.length > maxPiece ? cutLine(line, maxPiece) : [line];
    for (const [index, piece] of pieces.entries()) {
      // The pieces of a cut line never share a message: a newline between them would change the text.
      if (index > 0) flush();
      const isFenceLine = fence !== null && pieces.length === 1;
      const next: string | null = isFenceLine ? (open === null ? line.trim().slice(0, MAX_REOPEN) : null) : open;
      const cost = (lines.length ? 1 : 0) + piece.length + (next === null ? 0 : CLOSE_COST);
      if (size + cost > limit && lines.length > prefixLines) flush();
      size += (lines.length ? 1 : 0) + piece.length;
      lines.push(piece);
      open = next;
    }
  }
  flush();
  return chunks;
}

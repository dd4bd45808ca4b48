import { AttachmentBuilder, type APIEmbed, type MessageCreateOptions } from 'discord.js';
import type { CommandReply } from '../agents/front-end.js';
import { DISCORD_MESSAGE_LIMIT } from './message-split.js';

/** What one reply carries, before Discord decides between reply, editReply and followUp. */
export interface ReplyPayload {
  content: string;
  embeds?: APIEmbed[];
  files?: AttachmentBuilder[];
}

export const ATTACHMENT_LIMIT_BYTES = 512 * 1024;
export const EMBED_DESCRIPTION_LIMIT = 4_096;
/** Nothing a user or a process printed may ping anyone. */
export const NO_MENTIONS = { parse: [] } satisfies MessageCreateOptions['allowedMentions'];

/** The end of a text, at most `maxBytes` of UTF-8, cut on a line boundary where one is near, with a note of what went. */
export function keepTail(text: string, maxBytes = ATTACHMENT_LIMIT_BYTES): string {
  const bytes = Buffer.byteLength(text);
  if (bytes <= maxBytes) return text;
  let tail = Buffer.from(text).subarray(bytes - maxBytes).toString('utf8').replace(/^\uFFFD+/, '');
  const newline = tail.indexOf('\n');
  if (newline >= 0 && newline < 4096) tail = tail.slice(newline + 1);
  return `[… ${bytes - Buffer.byteLength(tail)} bytes cut; the last ${Buffer.byteLength(tail)} bytes follow]\n${tail}`;
}

/** Cuts text to `max` characters with an ellipsis. */
export function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, Math.max(0, max - 1))}…` : text;
}

/** Joins as many lines as fit in `maxChars`, then a "+N more" line for the rest. */
export function fitLines(lines: readonly string[], maxChars: number): string {
  const out: string[] = [];
  let size = 0;
  for (let index = 0; index < lines.length; index += 1) {
    const line = lines[index]!;
    const separator = out.length ? 1 : 0;
    const after = lines.length - index - 1;
    const reserve = after > 0 ? `\n+${after} more`.length : 0;
    if (size + separator + line.length + reserve > maxChars) {
      out.push(`+${lines.length - index} more`);
      break;
    }
    out.push(line);
    size += separator + line.length;
  }
  return out.join('\n');
}

/** A command's answer as a message: text that does not fit in one goes out as a bounded `.log` file (the tail kept). */
export function replyToPayload(reply: CommandReply): ReplyPayload {
  if (reply.attachment) {
    const name = reply.attachment.name.endsWith('.log') ? reply.attachment.name : `${reply.attachment.name}.log`;
    return {
      content: clip(reply.text || `Output attached as ${name}.`, DISCORD_MESSAGE_LIMIT),
      files: [new AttachmentBuilder(Buffer.from(keepTail(reply.attachment.content)), { name })],
    };
  }
  if (reply.text.length <= DISCORD_MESSAGE_LIMIT) return { content: reply.text || '(no output)' };
  const lines = reply.text.split('\n');
  const first = clip(lines[0] ?? '', 300);
  return {
    content: `${first}\n(${lines.length} lines, ${reply.text.length} characters: attached as output.log)`,
    files: [new AttachmentBuilder(Buffer.from(keepTail(reply.text)), { name: 'output.log' })],
  };
}

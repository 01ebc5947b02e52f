// What happens to the bytes of DATA: collected up to the size limit, checked for bare LF and bare
// CR line endings (the 2023 SMTP smuggling family: such input is refused, never reinterpreted),
// then the header block is located, size-checked and the lane tag header taken out.
import { smtpError, type SmtpReplyError } from './reply.ts';

const CR = 0x0d;
const LF = 0x0a;

export class MessageCollector {
  private chunks: Buffer[] = [];
  private previous = 0;
  length = 0;
  oversize = false;
  /** Set to 'LF' or 'CR' at the first line ending that is not CRLF. */
  bareLineEnding: 'LF' | 'CR' | undefined;
  private readonly maxSize: number;

  constructor(maxSize: number) {
    this.maxSize = maxSize;
  }

  push(chunk: Buffer): void {
    if (!this.bareLineEnding) this.scan(chunk);
    this.length += chunk.length;
    if (this.length > this.maxSize) {
      // keep reading to the end of DATA, but stop holding on to the bytes
      this.oversize = true;
      this.chunks = [];
    } else {
      this.chunks.push(chunk);
    }
  }

  private scan(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.previous === CR && chunk[0] !== LF) this.bareLineEnding = 'CR';
    for (let i = chunk.indexOf(LF); i !== -1; i = chunk.indexOf(LF, i + 1)) {
      if ((i > 0 ? chunk[i - 1] : this.previous) !== CR) {
        this.bareLineEnding = 'LF';
        return;
      }
    }
    for (let i = chunk.indexOf(CR); i !== -1 && i < chunk.length - 1; i = chunk.indexOf(CR, i + 1)) {
      if (chunk[i + 1] !== LF) {
        this.bareLineEnding = 'CR';
        return;
      }
    }
    this.previous = chunk[chunk.length - 1];
  }

  body(): Buffer {
    return this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.length);
  }
}

/** The refusal of message data that failed the collector's checks (size, line endings), if it did; for every listener. */
export function dataRefusal(collector: MessageCollector, sizeExceeded: boolean | undefined, maxSize: number): SmtpReplyError | undefined {
  if (collector.oversize || sizeExceeded) return smtpError(552, '5.3.4', `Message size exceeds fixed maximum message size of ${maxSize} bytes`);
  if (collector.bareLineEnding) return smtpError(550, '5.6.11', `Bare ${collector.bareLineEnding} line ending in message data; lines must end with CRLF`);
  return undefined;
}

export interface HeaderField { name: string; value: string; start: number; end: number }

/** Byte length of the header block including its terminating empty line (whole message if none). */
export function headerLength(message: Buffer): number {
  if (message[0] === CR && message[1] === LF) return 2;
  const end = message.indexOf('\r\n\r\n');
  return end === -1 ? message.length : end + 4;
}

/** Header fields with their byte ranges (a field runs to the end of its last continuation line). */
export function headerFields(message: Buffer, length: number): HeaderField[] {
  const fields: HeaderField[] = [];
  const text = message.toString('latin1', 0, length);
  let pos = 0;
  while (pos < text.length) {
    let end = text.indexOf('\r\n', pos);
    if (end === -1 || end === pos) break;
    // continuation lines start with white space
    while (text.charCodeAt(end + 2) === 0x20 || text.charCodeAt(end + 2) === 0x09) {
      const next = text.indexOf('\r\n', end + 2);
      if (next === -1) break;
      end = next;
    }
    const colon = text.indexOf(':', pos);
    if (colon > pos && colon < end) {
      fields.push({ name: text.slice(pos, colon).trim(), value: text.slice(colon + 1, end).replace(/\r\n[ \t]+/g, ' ').trim(), start: pos, end: end + 2 });
    }
    pos = end + 2;
  }
  return fields;
}

/** A message with its header block parsed: the bytes, the block's length and its fields. */
export interface ParsedMessage { message: Buffer; headerLength: number; fields: HeaderField[] }

export function parseMessage(message: Buffer, length = headerLength(message)): ParsedMessage {
  return { message, headerLength: length, fields: headerFields(message, length) };
}

/**
 * The message without the fields that `remove` picks, with the other fields' offsets moved to
 * match, so that nothing downstream parses the header block again (one copy, only when
 * something is removed).
 */
export function withoutFields(parsed: ParsedMessage, remove: (field: HeaderField) => boolean): ParsedMessage {
  const gone = parsed.fields.filter(remove);
  if (gone.length === 0) return parsed;
  const parts: Buffer[] = [];
  const fields: HeaderField[] = [];
  let pos = 0;
  let shift = 0;
  for (const field of parsed.fields) {
    if (remove(field)) {
      parts.push(parsed.message.subarray(pos, field.start));
      pos = field.end;
      shift += field.end - field.start;
    } else {
      fields.push({ ...field, start: field.start - shift, end: field.end - shift });
    }
  }
  parts.push(parsed.message.subarray(pos));
  return { message: Buffer.concat(parts), headerLength: parsed.headerLength - shift, fields };
}

// Just enough RFC 5322 / MIME parsing for the message checks: header fields (unfolded, in
// order, duplicates kept, which is what msg-format needs) and the decoded text parts.

export interface HeaderField { name: string; value: string }

export function splitMessage(message: Buffer): { header: string; body: Buffer } {
  const crlf = message.indexOf('\r\n\r\n');
  const lf = message.indexOf('\n\n');
  const [at, len] = crlf >= 0 && (lf < 0 || crlf < lf) ? [crlf, 4] : lf >= 0 ? [lf, 2] : [message.length, 0];
  return { header: message.subarray(0, at).toString('latin1'), body: message.subarray(at + len) };
}

export function parseHeaders(header: string): HeaderField[] {
  const fields: HeaderField[] = [];
  for (const line of header.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && fields.length) fields[fields.length - 1].value += ` ${line.trim()}`;
    else {
      const colon = line.indexOf(':');
      if (colon > 0) fields.push({ name: line.slice(0, colon).trim().toLowerCase(), value: line.slice(colon + 1).trim() });
    }
  }
  return fields;
}

export function values(fields: HeaderField[], name: string): string[] {
  return fields.filter((f) => f.name === name).map((f) => f.value);
}

/** Content-Type and friends: the main value and its parameters. */
export function structured(value: string | undefined): { main: string; params: Record<string, string> } {
  const [main = '', ...rest] = (value ?? '').split(';');
  const params: Record<string, string> = {};
  for (const p of rest) {
    const eq = p.indexOf('=');
    if (eq > 0) params[p.slice(0, eq).trim().toLowerCase()] = p.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
  }
  return { main: main.trim().toLowerCase(), params };
}

function decode(body: Buffer, encoding: string, charset: string): string {
  let bytes = body;
  if (encoding === 'base64') bytes = Buffer.from(body.toString('latin1').replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
  else if (encoding === 'quoted-printable') {
    const text = body.toString('latin1').replace(/=\r?\n/g, '');
    bytes = Buffer.from(text.replace(/=([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1');
  }
  return bytes.toString(/^(iso-8859-1|latin1|windows-1252|us-ascii)$/i.test(charset) ? 'latin1' : 'utf8');
}

/** Decoded text/plain and text/html parts, depth-first, bounded in nesting depth. */
export function textParts(fields: HeaderField[], body: Buffer, depth = 0): { type: string; text: string }[] {
  const type = structured(values(fields, 'content-type')[0] ?? 'text/plain');
  if (type.main.startsWith('multipart/') && type.params.boundary && depth < 10) {
    const delimiter = `--${type.params.boundary}`;
    const text = body.toString('latin1');
    const parts = text.split(new RegExp(`^${delimiter.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?:--)?[ \\t]*\\r?$`, 'm')).slice(1, -1);
    return parts.flatMap((part) => {
      const raw = Buffer.from(part.replace(/^\r?\n/, ''), 'latin1');
      const split = splitMessage(raw);
      return textParts(parseHeaders(split.header), split.body, depth + 1);
    });
  }
  if (type.main !== 'text/plain' && type.main !== 'text/html') return [];
  const encoding = (values(fields, 'content-transfer-encoding')[0] ?? '7bit').toLowerCase();
  return [{ type: type.main, text: decode(body, encoding, type.params.charset ?? 'utf-8') }];
}

/** Addresses in an address-list header (From, To): angle-addr or bare addr-spec, comments dropped. */
export function addresses(value: string): string[] {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  let angle = 0;
  let comment = 0;
  for (const ch of value) {
    if (quoted) { current += ch; if (ch === '"') quoted = false; continue; }
    if (ch === '"') quoted = true;
    else if (ch === '(') comment++;
    else if (ch === ')' && comment) { comment--; continue; }
    else if (ch === '<') angle++;
    else if (ch === '>') angle = Math.max(0, angle - 1);
    if (comment) continue;
    if (ch === ',' && !angle) { out.push(current); current = ''; continue; }
    current += ch;
  }
  out.push(current);
  return out.map((a) => (a.match(/<([^>]*)>/)?.[1] ?? a.replace(/"[^"]*"/g, '')).trim()).filter((a) => a.includes('@'));
}

export function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase().replace(/[>\s]/g, '');
}

// Tag-list records (RFC 6376 §3.2), shared by DKIM keys, DMARC, TLS-RPT, MTA-STS and BIMI.

export interface TagList { tags: Map<string, string>; order: string[]; errors: string[] }

export function parseTags(record: string): TagList {
  const tags = new Map<string, string>();
  const order: string[] = [];
  const errors: string[] = [];
  for (const part of record.split(';')) {
    if (!part.trim()) continue;
    const eq = part.indexOf('=');
    if (eq <= 0) {
      errors.push(`not a tag=value pair: ${JSON.stringify(part.trim())}`);
      continue;
    }
    const name = part.slice(0, eq).trim().toLowerCase();
    if (tags.has(name)) errors.push(`duplicate tag ${name}=`);
    tags.set(name, part.slice(eq + 1).trim());
    order.push(name);
  }
  return { tags, order, errors };
}

/** Joins TXT character-strings into the record (RFC 7208 §3.3, RFC 6376 §3.6.2.2). */
export function joinTxt(strings: string[]): string {
  return strings.join('');
}

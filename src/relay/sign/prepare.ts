// What the intake does to a message before it is stored: RFC 5322 fix-ups (refuse a message
// without From; add Message-ID and Date when missing), a Received trace field with the TLS state
// of the submission, and the DKIM signatures of the From domain. It runs once, at acceptance: the
// spool holds the signed bytes, so retries send exactly what was signed.
import { randomBytes } from 'node:crypto';
import type { ParsedMessage } from '../receive/message.ts';
import { smtpError } from '../receive/reply.ts';
import { dkimSignatures } from './dkim.ts';
import type { KeyTable } from './keys.ts';
import type { SignerPool } from './pool.ts';

export interface SubmissionTrace {
  /** Client address, and the name it gave in EHLO/HELO. */
  client: string;
  helo?: string;
  protocol: 'SMTP' | 'HTTP';
  /** Cipher details when the submission came over TLS. */
  tls?: { version?: string; name?: string };
  recipients: string[];
}

export interface Preparer {
  hostname: string;
  keys: KeyTable;
  /** Signing workers; without them the signing runs here (private-key operation on libuv's pool). */
  pool?: SignerPool;
}

/**
 * A Message-ID's left part, unique without asking for randomness per message (randomBytes is a
 * call into OpenSSL each time: 5 % of the relay's CPU at 2,000 msgs/s): this process's random
 * prefix, the time and a counter.
 */
const processPart = randomBytes(6).toString('hex');
let messageIdCounter = 0;
function newMessageId(): string {
  messageIdCounter = (messageIdCounter + 1) % 0x100000000;
  return `${Date.now().toString(36)}.${messageIdCounter.toString(36)}.${processPart}`;
}

export function rfc5322Date(at: Date): string {
  return at.toUTCString().replace(/GMT$/, '+0000');
}

/** The domain of the first address in a From field value ("Name" <a@b.example> → b.example). */
export function fromDomain(value: string): string | undefined {
  const angle = /<([^<>]*)>/.exec(value);
  const address = (angle ? angle[1] : value.split(',')[0]).trim();
  const at = address.lastIndexOf('@');
  if (at === -1) return undefined;
  const domain = address.slice(at + 1).replace(/[>\s;].*$/, '').toLowerCase();
  return domain || undefined;
}

function received(p: Preparer, trace: SubmissionTrace, at: Date): string {
  const from = `${trace.helo ?? 'unknown'} ([${trace.client || 'local'}])`;
  const tls = trace.tls ? ` (using ${trace.tls.version ?? 'TLS'} with cipher ${trace.tls.name ?? 'unknown'})` : '';
  const proto = trace.protocol === 'SMTP' ? (trace.tls ? 'ESMTPS' : 'ESMTP') : 'HTTP';
  const rcpt = trace.recipients.length === 1 ? `\r\n\tfor <${trace.recipients[0]}>` : '';
  return `Received: from ${from}\r\n\tby ${p.hostname} (mailops) with ${proto}${tls}${rcpt};\r\n\t${rfc5322Date(at)}\r\n`;
}

export async function prepareMessage(p: Preparer, parsed: ParsedMessage, trace: SubmissionTrace): Promise<Buffer> {
  const { message, headerLength: end, fields } = parsed;
  const hasSeparator = end !== message.length || message.subarray(-4).toString() === '\r\n\r\n';
  const has = (name: string) => fields.find((f) => f.name.toLowerCase() === name);
  const from = has('from');
  if (!from) throw smtpError(550, '5.6.0', 'Message has no From header field (RFC 5322 section 3.6 requires one)');
  const now = new Date();
  let added = '';
  if (!has('message-id')) added += `Message-ID: <${newMessageId()}@${p.hostname}>\r\n`;
  if (!has('date')) added += `Date: ${rfc5322Date(now)}\r\n`;
  // new fields go at the end of the header block, before its empty line
  const split = hasSeparator ? end - 2 : message.length;
  const body = added ? Buffer.concat([message.subarray(0, split), Buffer.from(added), hasSeparator ? message.subarray(split) : Buffer.from('\r\n')]) : message;
  const bodyHeaderEnd = end + added.length + (hasSeparator || !added ? 0 : 2);
  const trail = received(p, trace, now);
  const domain = fromDomain(from.value);
  const keys = domain ? p.keys.lookup(domain) : undefined;
  if (!keys) return Buffer.concat([Buffer.from(trail), body]);
  let signatures: string;
  try {
    signatures = p.pool ? await p.pool.sign(body, bodyHeaderEnd, keys[0].domain, now.getTime()) : await dkimSignatures(body, bodyHeaderEnd, keys, now.getTime());
  } catch (err) {
    // never send unsigned mail for a domain that signs: the client may try again later
    throw smtpError(451, '4.3.0', `DKIM signing for ${domain} failed (${(err as Error).message}); message not accepted`);
  }
  return Buffer.concat([Buffer.from(signatures + trail), body]);
}

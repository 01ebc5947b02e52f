// RFC 3464 delivery status notifications: multipart/report with a human-readable part, the
// message/delivery-status part (one per-recipient block each) and the original message's header
// (text/rfc822-headers, not the body: the sender has it, and a bounce should stay small).
import { randomBytes } from 'node:crypto';
import { rfc5322Date } from '../sign/prepare.ts';
import type { BounceClass } from './classify.ts';
import { enhancedCode } from './classify.ts';

export interface DsnRecipient {
  address: string;
  /** The reply that ended delivery (or the last one before the message expired). */
  reply: string;
  class: BounceClass;
  remoteMta?: string;
  attempts: number;
}

export interface DsnInput {
  hostname: string;
  queueId: string;
  sender: string;
  arrival: Date;
  reason: 'failed' | 'expired';
  recipients: DsnRecipient[];
  /** The original header block (up to its empty line). */
  originalHeaders: Buffer;
}

/** One line, printable, bounded: replies can be multi-line and long. */
function oneLine(text: string, max = 900): string {
  return text.replace(/\r?\n/g, ' ').replace(/[^\x20-\x7e]/g, '?').slice(0, max);
}

function status(r: DsnRecipient, reason: DsnInput['reason']): string {
  const code = enhancedCode(r.reply);
  if (code && (reason === 'failed' ? code.startsWith('5') : true)) return code;
  return reason === 'expired' ? '4.4.7' : '5.0.0';
}

export function buildDsn(input: DsnInput): Buffer {
  const boundary = `mailops-dsn-${randomBytes(9).toString('hex')}`;
  const now = new Date();
  const why = input.reason === 'expired'
    ? 'could not be delivered in the time allowed; the relay has given up.'
    : 'was refused by the receiving server; the relay will not try again.';
  const human = [
    `This is the mail relay at ${input.hostname}.`,
    '',
    `Your message (queue id ${input.queueId}) to the following recipient(s) ${why}`,
    '',
    ...input.recipients.flatMap((r) => [`<${r.address}>: ${oneLine(r.reply, 500)}`, `    (class ${r.class}, ${r.attempts} attempt(s))`]),
    '',
  ].join('\r\n');
  const perMessage = [
    `Reporting-MTA: dns; ${input.hostname}`,
    `X-Mailops-Queue-ID: ${input.queueId}`,
    `Arrival-Date: ${rfc5322Date(input.arrival)}`,
  ].join('\r\n');
  const perRecipient = input.recipients.map((r) => [
    `Final-Recipient: rfc822; ${r.address}`,
    'Action: failed',
    `Status: ${status(r, input.reason)}`,
    ...(r.remoteMta ? [`Remote-MTA: dns; ${r.remoteMta}`] : []),
    `Diagnostic-Code: smtp; ${oneLine(r.reply)}`,
    `Last-Attempt-Date: ${rfc5322Date(now)}`,
    ...(input.reason === 'expired' ? [`Will-Retry-Until: ${rfc5322Date(now)}`] : []),
    `X-Mailops-Bounce-Class: ${r.class}`,
  ].join('\r\n'));
  let headers = input.originalHeaders.toString('latin1');
  if (!headers.endsWith('\r\n')) headers += '\r\n';
  headers = headers.replace(/(\r\n)+$/, '\r\n');
  const text = [
    `From: Mail Delivery System <MAILER-DAEMON@${input.hostname}>`,
    `To: <${input.sender}>`,
    `Subject: Undelivered Mail Returned to Sender`,
    `Date: ${rfc5322Date(now)}`,
    `Message-ID: <dsn-${input.queueId}-${randomBytes(6).toString('hex')}@${input.hostname}>`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    '',
    'This is a MIME-encapsulated delivery status notification.',
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    'Content-Description: Notification',
    '',
    human,
    `--${boundary}`,
    'Content-Type: message/delivery-status',
    'Content-Description: Delivery report',
    '',
    perMessage,
    '',
    perRecipient.join('\r\n\r\n'),
    '',
    `--${boundary}`,
    'Content-Type: text/rfc822-headers',
    'Content-Description: Undelivered message headers',
    '',
    headers + `--${boundary}--`,
    '',
  ].join('\r\n');
  return Buffer.from(text, 'latin1');
}

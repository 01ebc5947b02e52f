// POST /api/v1/messages: inject a message over HTTP. JSON body: from, to[], optional lane, and
// either `raw` (an RFC 5322 message) or subject/text/html (composed here). Goes through the same
// intake as SMTP; 202 with the queue id only after the durable commit.
import type { IncomingMessage } from 'node:http';
import MailComposer from 'nodemailer/lib/mail-composer';
import { accept, type Intake } from '../receive/accept.ts';
import { checkRecipient } from '../receive/policy.ts';
import type { SmtpReplyError } from '../receive/reply.ts';
import { HttpError, readJson } from './http.ts';

function stringField(body: Record<string, unknown>, key: string, required: boolean): string | undefined {
  const value = body[key];
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'string') throw new HttpError(400, `${key}: expected a string, got ${JSON.stringify(value)}`);
  return value;
}

export async function injectMessage(intake: Intake, req: IncomingMessage, client: string, user: string) {
  const body = await readJson(req, intake.config.smtp.maxMessageSize * 2);
  const from = stringField(body, 'from', true)!;
  const to = body.to;
  if (!Array.isArray(to) || to.length === 0 || !to.every((t) => typeof t === 'string')) {
    throw new HttpError(400, `to: expected a non-empty list of addresses, got ${JSON.stringify(to)}`);
  }
  if (to.length > intake.config.smtp.maxRecipients) throw new HttpError(400, `to: more than ${intake.config.smtp.maxRecipients} recipients`);
  for (const address of to as string[]) {
    try {
      checkRecipient(address);
    } catch (err) {
      throw new HttpError(400, `to: ${(err as Error).message}`);
    }
  }
  const lane = stringField(body, 'lane', false);
  const raw = stringField(body, 'raw', false);
  let message: Buffer;
  if (raw !== undefined) {
    message = Buffer.from(raw.replace(/\r?\n/g, '\r\n'), 'utf8');
  } else {
    const subject = stringField(body, 'subject', true);
    const text = stringField(body, 'text', false);
    const html = stringField(body, 'html', false);
    if (text === undefined && html === undefined) throw new HttpError(400, 'give raw, or subject with text and/or html');
    message = await new MailComposer({ from, to: to as string[], subject, text, html }).compile().build();
  }
  try {
    return await accept(intake, { sender: from, recipients: to as string[], client, user, lane, body: message, protocol: 'HTTP' });
  } catch (err) {
    const reply = err as SmtpReplyError;
    if (!reply.responseCode) throw err;
    throw new HttpError(reply.responseCode >= 500 ? 422 : 503, `${reply.responseCode} ${reply.message}`);
  }
}

// Deferrals (4xx) and refusals (5xx) the sink gives, labelled by provider profile, SMTP phase and
// normalised reply: code, enhanced code and a short one-line text. The text is the profile's reply
// template rendered with its per-transaction placeholders left as placeholders ({ip}, {recipient},
// {domain}...), so addresses and IPs never reach the labels and one template counts as one reply
// however many recipients it went to; guessing addresses back out of the rendered text would also
// hit a template's fixed text ("Contact tobr@rx.t-online.de"). Stats keeps the counts (capped like
// its other label sets); this module only makes and reads the keys, and touches nothing else.
import { ReplyParser } from '../util/smtp-reply.ts';
import type { ReplyTemplate, ReplyVars } from './reply.ts';

/** What the session knows about a refusal it sends: whose reply it is, its template and the values it was rendered with. */
export interface RefusalSource { profile: string | undefined; reply: ReplyTemplate; vars: ReplyVars }

export interface RefusalCount { profile: string; phase: string; code: number; enhanced: string; text: string; count: number }

/** Label of replies without a profile and template: the sink's own limits (SIZE, recipients per message). */
export const SINK_LIMIT = '(sink)';
const KEY_SEPARATOR = '\0';
const MAX_TEXT = 120;
/** Placeholders whose values change with every transaction; {limit} is a profile's setting and stays. */
const TRANSACTION_PLACEHOLDERS: ReplyVars = { ip: '{ip}', sender: '{sender}', recipient: '{recipient}', domain: '{domain}', helo: '{helo}' };
const ENHANCED_PREFIX = /^[245]\.\d{1,3}\.\d{1,3}\s*/;

/** Code, enhanced code and one-line text (enhanced code of every line removed, at most 120 characters) of a reply as written on the wire. */
export function normaliseReply(wire: string): { code: number; enhanced: string; text: string } {
  let parsed = { code: Number(wire.slice(0, 3)) || 0, enhanced: '', text: wire.slice(4) };
  new ReplyParser().push(Buffer.from(wire.endsWith('\n') ? wire : `${wire}\r\n`, 'latin1'), (r) => (parsed = r));
  let text = parsed.text.split('\n').map((line) => line.replace(ENHANCED_PREFIX, '')).join(' ').replace(/\s+/g, ' ').trim();
  if (text.length > MAX_TEXT) text = `${text.slice(0, MAX_TEXT - 1)}…`;
  return { code: parsed.code, enhanced: parsed.enhanced, text };
}

/** The counting key of a 4xx/5xx reply at `phase`; without a source only its code is known (a sink limit). */
export function refusalKey(phase: string, code: number, source: RefusalSource | undefined): string {
  const reply = source ? normaliseReply(source.reply.render({ ...source.vars, ...TRANSACTION_PLACEHOLDERS })) : { enhanced: '', text: '' };
  return [source?.profile ?? SINK_LIMIT, phase, String(code), reply.enhanced, reply.text].join(KEY_SEPARATOR);
}

/** Counts by key, most frequent first. A key that is not a refusal key is the capped map's overflow label: profile, phase and text say it, code 0. */
export function refusalCounts(counts: Map<string, number>): RefusalCount[] {
  return [...counts].map(([key, count]) => {
    if (!key.includes(KEY_SEPARATOR)) return { profile: key, phase: key, code: 0, enhanced: '', text: key, count };
    const [profile, phase, code, enhanced, text] = key.split(KEY_SEPARATOR);
    return { profile, phase, code: Number(code), enhanced, text, count };
  }).sort((a, b) => b.count - a.count);
}

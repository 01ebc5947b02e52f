// `mailops audit message`: one message as a receiver sees it. mailauth does DKIM, SPF and DMARC
// (over the audit resolver); the rest reads the header fields and the decoded body.
import { readFile, stat } from 'node:fs/promises';
import { authenticate } from 'mailauth';
import type { DKIMResult } from 'mailauth';
import { ConfigError } from '../config/errors.ts';
import { spamRate } from './domain.ts';
import { addresses, domainOf, parseHeaders, splitMessage, textParts, values } from './mime.ts';
import type { HeaderField } from './mime.ts';
import { mxChecks } from './mx.ts';
import { buildReport, quote, result } from './report.ts';
import { assertReachable } from './resolver.ts';
import type { AuditResolver } from './resolver.ts';
import type { AuditReport, CheckResult, Profile } from './types.ts';

const MAX_MESSAGE = 64 * 1024 * 1024;
const SINGLE = ['date', 'from', 'sender', 'reply-to', 'to', 'cc', 'bcc', 'message-id', 'in-reply-to', 'references', 'subject'];
const UNSUB_WORDS = /unsubscri|opt[- ]?out|abmelden|abbestellen|austragen|d[ée]sabonn|d[ée]sinscri|darse de baja|cancelar (la )?suscrip|afmelden|uitschrijven|disiscriv/i;

export async function readMessage(file: string): Promise<Buffer> {
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new ConfigError(`message file ${file}: not a regular file`);
    if (info.size > MAX_MESSAGE) throw new ConfigError(`message file ${file}: ${info.size} bytes, more than the ${MAX_MESSAGE} this audit reads`);
    return await readFile(file);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`message file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export interface MessageAuditOptions { dns: AuditResolver; message: Buffer; ip?: string; helo?: string; mailFrom?: string; profile?: Profile | 'all' }

export async function auditMessage(options: MessageAuditOptions): Promise<AuditReport> {
  const { dns, message, ip } = options;
  const { header, body } = splitMessage(message);
  const fields = parseHeaders(header);
  const from = values(fields, 'from').flatMap(addresses);
  const fromDomain = from[0] ? domainOf(from[0]) : '';
  const returnPath = values(fields, 'return-path')[0]?.replace(/[<>]/g, '').trim();
  const sender = options.mailFrom ?? (returnPath || from[0] || '');
  const envelopeDomain = sender.includes('@') ? domainOf(sender) : fromDomain;
  if (fromDomain) await assertReachable(dns, fromDomain);

  const [auth, mx] = await Promise.all([
    authenticate(message, { ip, helo: options.helo ?? ip, sender: sender || undefined, mta: 'mailops-audit', resolver: dns.mailauth, disableArc: true, disableBimi: true }),
    fromDomain ? mxChecks(dns, [fromDomain, envelopeDomain].filter(Boolean)).then((m) => m.results) : Promise.resolve([result('mx-reachable', 'fail', 'no From domain to reply to')]),
  ]);
  const signatures = auth.dkim.results.filter((r) => r.signingDomain);
  const sig = signatures.find((r) => r.status.result === 'pass' && r.status.aligned)
    ?? signatures.find((r) => r.status.result === 'pass') ?? signatures[0];
  const signed = new Set((sig?.signingHeaders?.keys ?? '').split(':').map((k) => k.trim().toLowerCase()).filter(Boolean));

  const out: CheckResult[] = [
    ...dkimResults(signatures, sig, signed, fields),
    spfResult(auth.spf ? { result: auth.spf.status.result, comment: auth.spf.status.comment } : undefined, ip, envelopeDomain),
    dmarcResult(auth, fromDomain, !!ip),
    tlsResult(values(fields, 'received')),
    ...unsubResults(fields, body),
    formatResult(fields),
    fblResult(fields, signed),
    csaHeader(fields),
    ...mx,
    spamRate(),
  ];
  return buildReport(fromDomain || '(no From domain)', out, options.profile ?? 'all');
}

function dkimResults(signatures: DKIMResult[], sig: DKIMResult | undefined, signed: Set<string>, fields: HeaderField[]): CheckResult[] {
  if (!sig) {
    return [result('dkim-verify', 'fail', 'no DKIM-Signature header'),
      ...['dkim-headers', 'dkim-ltag', 'dkim-sha1', 'dkim-keysize', 'dkim-testing'].map((id) => result(id, 'skip', 'no DKIM signature'))];
  }
  const label = (r: DKIMResult) => `d=${r.signingDomain} s=${r.selector}`;
  const out: CheckResult[] = [];
  const passing = signatures.filter((r) => r.status.result === 'pass');
  if (passing.length) out.push(result('dkim-verify', 'pass', `${passing.map(label).join(', ')}: dkim=pass${sig.status.aligned ? `, aligned with From (${sig.status.aligned})` : ', not aligned with From'}`));
  else out.push(result('dkim-verify', sig.status.result === 'temperror' ? 'temperror' : 'fail', signatures.map((r) => `${label(r)}: dkim=${r.status.result}${r.status.comment ? ` (${r.status.comment})` : ''}`).join('; ')));

  const required = ['from', ...['list-unsubscribe', 'list-unsubscribe-post'].filter((n) => values(fields, n).length)];
  const missing = required.filter((n) => !signed.has(n));
  out.push(missing.length
    ? result('dkim-headers', 'fail', `${label(sig)}: h= does not cover ${missing.join(', ')}; h=${[...signed].join(':')}`)
    : result('dkim-headers', 'pass', `${label(sig)}: h= covers ${required.join(', ')}`));

  out.push(sig.canonBodyLengthLimited
    ? result('dkim-ltag', 'warn', `${label(sig)}: l=${sig.canonBodyLengthLimit}, content can be appended after the signed body${sig.status.underSized ? ` (${sig.status.underSized} bytes unsigned now)` : ''}`)
    : result('dkim-ltag', 'pass', `${label(sig)}: no l= tag`));
  out.push(sig.algo === 'rsa-sha1'
    ? result('dkim-sha1', 'fail', `${label(sig)}: a=rsa-sha1, verifiers treat it as unsigned (RFC 8301)`)
    : result('dkim-sha1', 'pass', `${label(sig)}: a=${sig.algo}`));
  const bits = sig.modulusLength;
  if (!bits) out.push(result('dkim-keysize', 'skip', `${label(sig)}: key size unknown (key not retrieved)`));
  else if (sig.algo?.startsWith('ed25519')) out.push(result('dkim-keysize', 'pass', `${label(sig)}: ed25519 key`));
  else out.push(result('dkim-keysize', bits < 1024 ? 'fail' : bits < 2048 ? 'warn' : 'pass', `${label(sig)}: RSA key of ${bits} bits${bits < 2048 ? ', 2048 recommended' : ''}`));
  out.push(sig.status.testing
    ? result('dkim-testing', 'warn', `${label(sig)}: key has t=y (testing)`)
    : result('dkim-testing', 'pass', `${label(sig)}: key not in testing mode`));
  return out;
}

function spfResult(spf: { result: string; comment?: string } | undefined, ip: string | undefined, domain: string): CheckResult {
  if (!ip) return result('spf-pass-ips', 'skip', 'no sending IP given (--ip), SPF not evaluated');
  if (!spf) return result('spf-pass-ips', 'fail', `${ip}: SPF not evaluated for ${domain || 'an empty envelope domain'}`);
  const status = spf.result === 'pass' ? 'pass' : spf.result === 'temperror' ? 'temperror' : 'fail';
  return result('spf-pass-ips', status, `${ip}: spf=${spf.result} for ${domain}${spf.comment && status !== 'pass' ? ` (${spf.comment})` : ''}`);
}

function dmarcResult(auth: Awaited<ReturnType<typeof authenticate>>, fromDomain: string, haveIp: boolean): CheckResult {
  const d = auth.dmarc;
  if (!d) return result('dmarc-aligned', 'fail', `DMARC not evaluated: ${auth.dmarcSkipReason ?? 'no From domain'}`);
  const r = d.status.result;
  const note = !haveIp && r !== 'pass' ? '; SPF not evaluated without --ip' : '';
  if (r === 'pass') return result('dmarc-aligned', 'pass', `${fromDomain}: dmarc=pass (p=${d.p ?? 'none'})`);
  if (r === 'temperror') return result('dmarc-aligned', 'temperror', `${fromDomain}: dmarc=temperror${d.status.comment ? ` (${d.status.comment})` : ''}`);
  return result('dmarc-aligned', 'fail', `${fromDomain}: dmarc=${r}${d.status.comment ? ` (${d.status.comment})` : ''}${note}`);
}

function tlsResult(received: string[]): CheckResult {
  if (!received.length) return result('tls-outbound', 'skip', 'no Received header (a message not yet relayed)');
  const top = received[0];
  const tls = /\bwith\s+(E?SMTPS\w*|UTF8SMTPS\w*|LMTPS\w*)\b|version=TLS|using TLS|\bTLSv?1\.[0-3]\b|\(TLS1/i.test(top);
  return result('tls-outbound', tls ? 'pass' : 'fail', `top Received ${tls ? 'shows' : 'does not show'} TLS: ${quote(top, 100)}`);
}

function unsubResults(fields: HeaderField[], body: Buffer): CheckResult[] {
  const out: CheckResult[] = [];
  const header = values(fields, 'list-unsubscribe');
  if (!header.length) out.push(result('unsub-header', 'fail', 'no List-Unsubscribe header'));
  else if (header.length > 1) out.push(result('unsub-header', 'fail', `${header.length} List-Unsubscribe headers`));
  else {
    const uris = [...header[0].matchAll(/<([^>]*)>/g)].map((m) => m[1].trim());
    const https = uris.filter((u) => /^https:\/\//i.test(u));
    if (https.length === 1) out.push(result('unsub-header', 'pass', `List-Unsubscribe: ${quote(header[0])}`));
    else if (https.length > 1) out.push(result('unsub-header', 'fail', `${https.length} HTTPS URIs, one is required: ${quote(header[0])}`));
    else out.push(result('unsub-header', 'fail', `no HTTPS URI (Yahoo accepts mailto, Gmail and CSA need HTTPS): ${quote(header[0])}`));
  }
  const post = values(fields, 'list-unsubscribe-post');
  if (!post.length) out.push(result('unsub-post', 'fail', 'no List-Unsubscribe-Post header (RFC 8058 one-click)'));
  else if (post.length > 1 || post[0] !== 'List-Unsubscribe=One-Click') out.push(result('unsub-post', 'fail', `expected "List-Unsubscribe=One-Click", got ${post.map((p) => quote(p)).join(', ')}`));
  else out.push(result('unsub-post', 'pass', 'List-Unsubscribe-Post: List-Unsubscribe=One-Click'));

  const parts = textParts(fields, body);
  const link = parts.map((p) => findUnsubLink(p.type, p.text)).find(Boolean);
  out.push(link
    ? result('unsub-body', 'pass', `visible unsubscribe link: ${quote(link, 80)}`)
    : result('unsub-body', 'warn', `no visible unsubscribe link in ${parts.length ? parts.map((p) => p.type).join(', ') : 'the body (no text part)'}`));
  return out;
}

function findUnsubLink(type: string, text: string): string | undefined {
  if (type === 'text/html') {
    for (const m of text.matchAll(/<a\b[^>]*href\s*=\s*["']?([^"'\s>]+)[^>]*>([\s\S]*?)<\/a>/gi)) {
      if (/^(https?:|mailto:)/i.test(m[1]) && (UNSUB_WORDS.test(m[2].replace(/<[^>]+>/g, '')) || UNSUB_WORDS.test(m[1]))) return m[1];
    }
    return undefined;
  }
  for (const line of text.split(/\r?\n/)) {
    const url = line.match(/https?:\/\/\S+/)?.[0];
    if (url && UNSUB_WORDS.test(line)) return url;
  }
  return undefined;
}

function formatResult(fields: HeaderField[]): CheckResult {
  const problems: string[] = [];
  const count = (n: string) => values(fields, n).length;
  const fromFields = values(fields, 'from');
  if (!fromFields.length) problems.push('no From header');
  else if (fromFields.length === 1 && addresses(fromFields[0]).length !== 1) problems.push(`From has ${addresses(fromFields[0]).length} addresses: ${quote(fromFields[0], 60)}`);
  const repeated = SINGLE.filter((n) => count(n) > 1).map((n) => `${n} x${count(n)}`);
  if (repeated.length) problems.push(`single-instance headers repeated: ${repeated.join(', ')}`);
  const id = values(fields, 'message-id')[0];
  if (id === undefined) problems.push('no Message-ID');
  else if (!/^<[^<>@\s]+@[^<>@\s]+>$/.test(id)) problems.push(`invalid Message-ID ${quote(id, 60)}`);
  const date = values(fields, 'date')[0];
  if (date === undefined) problems.push('no Date');
  else if (Number.isNaN(Date.parse(date.replace(/\s*\([^)]*\)\s*$/, '')))) problems.push(`invalid Date ${quote(date, 60)}`);
  if (problems.length) return result('msg-format', 'fail', problems.join('; '));
  return result('msg-format', 'pass', `one From ${addresses(fromFields[0])[0]}, Message-ID ${id}, Date ${date}`);
}

function fblResult(fields: HeaderField[], signed: Set<string>): CheckResult {
  const present = ['feedback-id', 'cfbl-address'].filter((n) => values(fields, n).length);
  if (!present.length) return result('fbl', 'info', 'no Feedback-ID or CFBL-Address header; complaint feedback loops cannot attribute mail');
  const unsigned = present.filter((n) => !signed.has(n));
  if (unsigned.length) return result('fbl', 'info', `${present.join(', ')} present but ${unsigned.join(', ')} not covered by DKIM h=`);
  return result('fbl', 'pass', present.map((n) => `${n}: ${values(fields, n)[0]}`).join('; '));
}

function csaHeader(fields: HeaderField[]): CheckResult {
  const v = values(fields, 'x-csa-complaints')[0];
  return v ? result('csa-header', 'pass', `X-CSA-Complaints: ${v}`) : result('csa-header', 'info', 'no X-CSA-Complaints header (common on CSA senders\' mail)');
}

// Message bytes built on the fly: one body template per (lane, size bucket), cached and shared,
// plus a few hundred bytes of per-message headers. A million messages cost a million small header
// strings that die young, never a million bodies. Bodies are already dot-stuffed and end with the
// SMTP end-of-data marker, so the engine writes [header, body] and is done.
import type { Lane } from '../scenario/types.ts';

const WORDS = 'mitglieder netzwerk angebot veranstaltung profil nachricht kontakt gruppe termin einladung jobs events news karriere branche unternehmen'.split(' ');
/** Buckets are 5 % apart: fine enough for a lognormal, coarse enough to keep few templates. */
const STEP = Math.log(1.05);
/** Typical per-message header bytes (measured: about 545 for a bulk message), subtracted so totals hit the target size. */
const HEADER_ESTIMATE = 545;

export function bucketOf(size: number): number {
  return Math.round(Math.log(size) / STEP);
}

/** Exactly `bytes` characters of CRLF-separated lines; no line starts with a dot. */
function filler(bytes: number, seed: number, html: boolean): string {
  const lines: string[] = [];
  let length = 0;
  let i = seed;
  while (length < bytes) {
    let line = html ? '<p>' : '';
    while (line.length < 66) line += `${WORDS[i++ % WORDS.length]} `;
    line += html ? '</p>' : '';
    lines.push(line);
    length += line.length + 2;
  }
  const text = lines.join('\r\n');
  return text.length > bytes ? text.slice(0, Math.max(0, bytes)).replace(/\r$/, ' ') : text;
}

/** A MIME body of exactly `bytes` bytes (before the end-of-data line) for the lane. */
function buildBody(lane: Lane, bytes: number): Buffer {
  const boundary = `=_mailops_${lane}_${bytes}`;
  let head: string;
  let tail: string;
  if (lane === 'transactional') {
    head = 'Content-Type: text/plain; charset=utf-8\r\n\r\nHallo,\r\n\r\nhier ist der Link zum Zuruecksetzen Ihres Passworts.\r\n';
    tail = '\r\n';
  } else {
    const text = filler(Math.max(Math.round(bytes * 0.3), 100), 1, false);
    head = `Content-Type: multipart/alternative; boundary="${boundary}"\r\n\r\n` +
      `--${boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${text}\r\n` +
      `--${boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body>\r\n`;
    tail = `\r\n</body></html>\r\n--${boundary}--\r\n`;
  }
  const body = `${head}${filler(Math.max(bytes - head.length - tail.length, 60), 7, lane !== 'transactional')}${tail}`;
  return Buffer.from(`${body}.\r\n`, 'latin1');
}

export interface MessageMeta {
  runId: string;
  seq: number;
  lane: Lane;
  from: string;
  to: string;
  campaign: string;
  unsubscribeBase: string;
}

const SUBJECTS: Record<Lane, string> = {
  bulk: 'Ihr Newsletter: Neues aus Ihrem Netzwerk',
  member: 'Neue Nachricht von einem Kontakt',
  transactional: 'Passwort zuruecksetzen',
};

let dateCache = { second: -1, value: '' };
function rfc2822Date(now: number): string {
  const second = Math.floor(now / 1000);
  if (second !== dateCache.second) dateCache = { second, value: new Date(now).toUTCString().replace('GMT', '+0000') };
  return dateCache.value;
}

export class MessageFactory {
  private readonly templates = new Map<number, Buffer>();
  /** Template bytes held: bounded by the number of buckets the size distribution reaches. */
  templateBytes = 0;

  /** `exact`: a fixed-size scenario wants exactly that many bytes, not the bucket's size. */
  body(lane: Lane, size: number, exact: boolean): Buffer {
    const bucket = exact ? -size : bucketOf(size);
    const key = bucket * 4 + (lane === 'bulk' ? 0 : lane === 'member' ? 1 : 2);
    let body = this.templates.get(key);
    if (!body) {
      const total = exact ? size : Math.round(Math.exp(bucket * STEP));
      body = buildBody(lane, Math.max(total - HEADER_ESTIMATE, 200));
      this.templates.set(key, body);
      this.templateBytes += body.length;
    }
    return body;
  }

  /** Per-message headers; `sent` is stamped now, right before the bytes are written. */
  header(m: MessageMeta, now: number): Buffer {
    const domain = m.from.slice(m.from.indexOf('@') + 1);
    let h = `From: <${m.from}>\r\nTo: <${m.to}>\r\nSubject: ${SUBJECTS[m.lane]}\r\nDate: ${rfc2822Date(now)}\r\n` +
      `Message-ID: <${m.runId}.${m.seq}@${domain}>\r\nMIME-Version: 1.0\r\n`;
    if (m.lane !== 'transactional') {
      h += `List-Unsubscribe: <${m.unsubscribeBase}/${m.runId}/${m.seq}>, <mailto:unsubscribe+${m.seq}@${domain}>\r\n` +
        'List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n' +
        `Feedback-ID: ${m.seq % 100}:${m.campaign}:${m.lane}:mailops\r\n`;
    }
    h += `X-Mailops-Lane: ${m.lane}\r\nX-Mailops-Load: run=${m.runId}; seq=${m.seq}; lane=${m.lane}; sent=${now}\r\n`;
    return Buffer.from(h, 'latin1');
  }
}

// The delivery-log record: the relay's own log event (src/relay/log.ts) for a message's journey,
// one format for the log line, the stores and the API. Which events are records, how one becomes
// rows of the stores (a `received` or `dsn` event with several recipients is a row per recipient)
// and how a stored row reads back as the event it came from, with the node that wrote it.
// Pure functions: used on the relay's thread (live followers), in the store worker and by the
// PostgreSQL store alike. May touch: nothing.
import { enhancedCode } from '../relay/bounce/classify.ts';
import type { LogEvent } from '../relay/log.ts';

/** Log event name → record event name. `failed` with `suppressed: true` is `suppressed`; a DSN sent is `bounced`. */
const RECORD_EVENTS: Record<string, string> = {
  received: 'received', delivered: 'delivered', deferred: 'deferred', failed: 'failed', expired: 'expired', dsn: 'bounced',
};

export const OUTCOMES = ['received', 'deferred', 'delivered', 'failed', 'expired', 'suppressed', 'bounced'] as const;

/** The stores' columns, in row order. Addresses are kept lower-cased (searches are case-insensitive). */
export const COLUMNS = [
  'seq', 'time', 'event', 'tenant', 'queue_id', 'lane', 'sender', 'rcpt', 'domain', 'provider', 'mx', 'ip', 'egress',
  'tls', 'reply', 'code', 'class', 'attempt', 'queued_ms', 'delivery_ms', 'detail',
] as const;

export type Row = (string | number | null)[];

/** Event fields that have a column; anything else an event carries goes to `detail` (JSON). */
const COLUMN_FIELDS = new Set(['time', 'event', 'id', 'lane', 'tenant', 'from', 'rcpt', 'domain', 'profile', 'mx', 'ip', 'egress', 'tls', 'reply', 'class', 'attempt', 'queuedMs', 'deliveryMs']);

/** Shaping profiles (the event's `profile`, src/relay/shape/) that name no provider: the recipient domain stands in. */
const NO_PROVIDER = new Set(['default', 'smarthost']);

/** A record as the API and the CLI show it: the log event's fields, with `node`. */
export interface LogRecord {
  time: string;
  node: string;
  event: string;
  id?: string;
  lane?: string;
  tenant?: string;
  from?: string;
  rcpt?: string;
  domain?: string;
  provider?: string;
  mx?: string;
  ip?: string;
  egress?: string;
  tls?: boolean;
  reply?: string;
  code?: string;
  class?: string;
  attempt?: number;
  queuedMs?: number;
  deliveryMs?: number;
  [field: string]: unknown;
}

/** How many rows an event makes (0: not a record); counted on the relay's thread, which numbers them. */
export function rowCount(event: LogEvent): number {
  if (RECORD_EVENTS[event.event] === undefined) return 0;
  return Array.isArray(event.rcpt) ? event.rcpt.length : 1;
}

const text = (value: unknown): string | null => (typeof value === 'string' && value !== '' ? value : null);
const num = (value: unknown): number | null => (typeof value === 'number' && Number.isFinite(value) ? value : null);
const lower = (value: unknown): string | null => (typeof value === 'string' ? value.toLowerCase() : null);

/** The reply's enhanced status code, else its three digits ("4.7.28", "451"): what reasons are grouped by. */
export function replyCode(reply: string | null): string | null {
  if (!reply) return null;
  return enhancedCode(reply) ?? /^\d{3}\b/.exec(reply)?.[0] ?? null;
}

/** The rows of one record event, numbered from `firstSeq` (as many as rowCount says). */
export function rowsOf(event: LogEvent, firstSeq: number): Row[] {
  let name = RECORD_EVENTS[event.event];
  if (name === undefined) return [];
  if (name === 'failed' && event.suppressed === true) name = 'suppressed';
  let detail: Record<string, unknown> | undefined;
  for (const key in event) {
    if (COLUMN_FIELDS.has(key) || (name === 'bounced' && key === 'to') || (name === 'suppressed' && key === 'suppressed')) continue;
    (detail ??= {})[key] = event[key];
  }
  const detailText = detail ? JSON.stringify(detail) : null;
  const time = Date.parse(event.time);
  const reply = text(event.reply);
  const code = replyCode(reply);
  const sender = name === 'bounced' ? lower(event.to) : lower(event.from);
  const recipients = Array.isArray(event.rcpt) ? event.rcpt : [event.rcpt];
  const tls = typeof event.tls === 'boolean' ? Number(event.tls) : null;
  const given = text(event.profile);
  return recipients.map((r, i) => {
    const rcpt = lower(r);
    const domain = text(event.domain) ?? (rcpt ? rcpt.slice(rcpt.lastIndexOf('@') + 1) : null);
    const provider = given && !NO_PROVIDER.has(given) ? given : domain;
    return [
      firstSeq + i, time, name, text(event.tenant), text(event.id), text(event.lane), sender, rcpt, domain, provider,
      text(event.mx), text(event.ip), text(event.egress), tls, reply, code, text(event.class), num(event.attempt),
      num(event.queuedMs), num(event.deliveryMs), detailText,
    ];
  });
}

/** A row as an object keyed by column name (what the stores' queries return). */
export function rowObject(row: Row): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < COLUMNS.length; i++) out[COLUMNS[i]] = row[i];
  return out;
}

/** A stored row back as the event it came from. `time`: ms, or a Date (PostgreSQL). */
export function recordOf(row: Record<string, unknown>, node: string): LogRecord {
  const t = row.time instanceof Date ? row.time.getTime() : Number(row.time);
  const out: LogRecord = { time: new Date(t).toISOString(), node: (row.node as string | undefined) ?? node, event: String(row.event) };
  const put = (key: string, value: unknown) => {
    if (value !== null && value !== undefined) out[key] = value;
  };
  put('id', row.queue_id);
  put('lane', row.lane);
  put('tenant', row.tenant);
  put('from', row.sender);
  put('rcpt', row.rcpt);
  put('domain', row.domain);
  put('provider', row.provider);
  put('mx', row.mx);
  put('ip', row.ip);
  put('egress', row.egress);
  if (row.tls !== null && row.tls !== undefined) out.tls = row.tls === true || Number(row.tls) === 1;
  put('reply', row.reply);
  put('code', row.code);
  put('class', row.class);
  put('attempt', row.attempt === null || row.attempt === undefined ? null : Number(row.attempt));
  put('queuedMs', row.queued_ms === null || row.queued_ms === undefined ? null : Number(row.queued_ms));
  put('deliveryMs', row.delivery_ms === null || row.delivery_ms === undefined ? null : Number(row.delivery_ms));
  if (typeof row.detail === 'string') Object.assign(out, JSON.parse(row.detail));
  return out;
}

// What a delivery-log search asks for, read from URL parameters (the API) or the flags of the
// same names (`mailops logs --since 1h`), and the one meaning of each filter in its three forms:
// a test on a live record (followers), and a WHERE clause for SQLite and for PostgreSQL.
// A bad value is a FilterError naming its parameter (the CLI shows it as the flag).
// May touch: nothing.
import { parseDuration } from '../util/units.ts';
import { OUTCOMES, type LogRecord } from './record.ts';

export interface LogFilter {
  tenant?: string;
  sender?: string;
  recipient?: string;
  /** Recipient domain. */
  domain?: string;
  lane?: string;
  /** Any of these record events. */
  event?: string[];
  class?: string;
  /** Text the reply contains (case-insensitive). */
  reply?: string;
  /** Queue id. */
  id?: string;
  /** ms since the epoch, inclusive / exclusive. */
  since?: number;
  until?: number;
}

export class FilterError extends Error {
  /** The parameter (and flag) that was wrong. */
  readonly param: string;
  constructor(param: string, message: string) {
    super(`${param}: ${message}`);
    this.param = param;
  }
}

export const FILTER_PARAMS = ['tenant', 'sender', 'recipient', 'domain', 'lane', 'event', 'class', 'reply', 'id', 'since', 'until'] as const;

/** A point in time: a duration back from `now` (1h, 30m, 2d), or an ISO date or time (2026-11-30, 2026-11-30T12:00Z). */
export function parseTime(param: string, value: string, now: number): number {
  const ago = /^\d+(\.\d+)?(ms|s|m|h|d)$/.test(value) ? parseDuration(value) : undefined;
  if (ago !== undefined) return now - ago;
  const at = /^\d{4}-\d\d-\d\d/.test(value) ? Date.parse(value) : NaN;
  if (Number.isFinite(at)) return at;
  throw new FilterError(param, `expected a duration back from now such as 1h or 2d, or a date or time such as 2026-11-30 or 2026-11-30T12:00:00Z, got ${JSON.stringify(value)}`);
}

export function parseFilter(params: URLSearchParams, now: number): LogFilter {
  const filter: LogFilter = {};
  const get = (key: string) => {
    const value = params.get(key)?.trim();
    return value ? value : undefined;
  };
  filter.tenant = get('tenant')?.toLowerCase();
  filter.sender = get('sender')?.toLowerCase();
  filter.recipient = get('recipient')?.toLowerCase();
  filter.domain = get('domain')?.toLowerCase().replace(/^@/, '');
  filter.lane = get('lane');
  filter.class = get('class');
  filter.reply = get('reply')?.toLowerCase();
  filter.id = get('id')?.toUpperCase();
  const events = get('event');
  if (events) {
    filter.event = events.split(',').map((e) => e.trim().toLowerCase()).filter(Boolean);
    for (const e of filter.event) {
      if (!(OUTCOMES as readonly string[]).includes(e)) throw new FilterError('event', `expected one or more of ${OUTCOMES.join(', ')} (comma-separated), got ${JSON.stringify(e)}`);
    }
  }
  if (filter.id && !/^[0-9A-F]{1,16}$/.test(filter.id)) throw new FilterError('id', `expected a queue id such as 0000002A, got ${JSON.stringify(filter.id)}`);
  const since = get('since');
  const until = get('until');
  if (since) filter.since = parseTime('since', since, now);
  if (until) filter.until = parseTime('until', until, now);
  if (filter.since !== undefined && filter.until !== undefined && filter.since >= filter.until) {
    throw new FilterError('until', `${new Date(filter.until).toISOString()} is not after --since ${new Date(filter.since).toISOString()}`);
  }
  for (const key of Object.keys(filter) as (keyof LogFilter)[]) if (filter[key] === undefined) delete filter[key];
  return filter;
}

/** The filter as URL parameters again (times as ISO), for a call to another node or store. */
export function filterParams(filter: LogFilter): URLSearchParams {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(filter)) {
    if (value === undefined) continue;
    if (key === 'since' || key === 'until') params.set(key, new Date(value as number).toISOString());
    else params.set(key, Array.isArray(value) ? value.join(',') : String(value));
  }
  return params;
}

/** Whether a live record passes (the same tests as the SQL below). */
export function matches(record: LogRecord, filter: LogFilter): boolean {
  if (filter.tenant !== undefined && record.tenant !== filter.tenant) return false;
  if (filter.sender !== undefined && record.from !== filter.sender) return false;
  if (filter.recipient !== undefined && record.rcpt !== filter.recipient) return false;
  if (filter.domain !== undefined && record.domain !== filter.domain) return false;
  if (filter.lane !== undefined && record.lane !== filter.lane) return false;
  if (filter.event !== undefined && !filter.event.includes(record.event)) return false;
  if (filter.class !== undefined && record.class !== filter.class) return false;
  if (filter.id !== undefined && record.id !== filter.id) return false;
  if (filter.reply !== undefined && !(record.reply ?? '').toLowerCase().includes(filter.reply)) return false;
  if (filter.since !== undefined || filter.until !== undefined) {
    const t = Date.parse(record.time);
    if (filter.since !== undefined && t < filter.since) return false;
    if (filter.until !== undefined && t >= filter.until) return false;
  }
  return true;
}

export type Dialect = 'sqlite' | 'postgres';

/**
 * The filter as a WHERE clause (without the word) and its arguments. Times are ms in SQLite and
 * timestamptz in PostgreSQL; `args` may hold arguments placed before (PostgreSQL's $n count on).
 */
export function whereSql(filter: LogFilter, dialect: Dialect, args: unknown[] = []): { sql: string; args: unknown[] } {
  const parts: string[] = [];
  const arg = (value: unknown) => {
    args.push(value);
    return dialect === 'sqlite' ? '?' : `$${args.length}`;
  };
  const time = (ms: number) => (dialect === 'sqlite' ? arg(ms) : `${arg(new Date(ms).toISOString())}::timestamptz`);
  const equal: [string, string | undefined][] = [
    ['tenant', filter.tenant], ['sender', filter.sender], ['rcpt', filter.recipient], ['domain', filter.domain],
    ['lane', filter.lane], ['class', filter.class], ['queue_id', filter.id],
  ];
  for (const [column, value] of equal) if (value !== undefined) parts.push(`${column} = ${arg(value)}`);
  if (filter.event) parts.push(`event IN (${filter.event.map(arg).join(', ')})`);
  if (filter.reply !== undefined) parts.push(`${dialect === 'sqlite' ? 'instr' : 'strpos'}(lower(reply), ${arg(filter.reply)}) > 0`);
  if (filter.since !== undefined) parts.push(`time >= ${time(filter.since)}`);
  if (filter.until !== undefined) parts.push(`time < ${time(filter.until)}`);
  return { sql: parts.length ? parts.join(' AND ') : 'TRUE', args };
}

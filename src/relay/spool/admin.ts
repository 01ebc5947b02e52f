// Operator views and actions on the spool: list, qshape-like summary, retry now, delete. Views
// aggregate in SQL so that a million queued recipients never become a million objects here.
// Actions touch only recipients that are waiting; those in a delivery attempt finish it first.
import type { DatabaseSync } from 'node:sqlite';
import { STATE_ACTIVE, STATE_WAITING } from './schema.ts';
import { queueId, type Spool } from './spool.ts';

/** qshape's age buckets, in minutes: a column counts messages younger than its bound. */
export const AGE_BUCKETS_MIN = [5, 10, 20, 40, 80, 160, 320, 640, 1280];

export interface Selector { id?: number; domain?: string }

function where(selector: Selector): { sql: string; args: (string | number)[] } {
  if (selector.id !== undefined) return { sql: 'message_id = ?', args: [selector.id] };
  return { sql: 'domain = ?', args: [selector.domain!.toLowerCase()] };
}

/** `tenant`: only that tenant's messages (a tenant's read token, src/relay/api/access.ts). */
export function listQueue(spool: Spool, options: { lane?: string; domain?: string; tenant?: string; limit: number }) {
  const conditions: string[] = [];
  const args: (string | number)[] = [];
  if (options.lane) { conditions.push('r.lane = ?'); args.push(options.lane); }
  if (options.domain) { conditions.push('r.domain = ?'); args.push(options.domain.toLowerCase()); }
  if (options.tenant) { conditions.push('r.message_id IN (SELECT id FROM messages WHERE tenant = ?)'); args.push(options.tenant); }
  const rows = spool.db.prepare(`
    SELECT m.id, m.lane, m.sender, m.received_at, m.size, r.address, r.state, r.attempts, r.next_at, r.last_reply
    FROM (SELECT DISTINCT message_id FROM recipients r ${conditions.length ? `WHERE ${conditions.join(' AND ')}` : ''}
          ORDER BY message_id LIMIT ?) AS pick
    JOIN messages m ON m.id = pick.message_id JOIN recipients r ON r.message_id = m.id
    ORDER BY m.id, r.id`).all(...args, options.limit);
  const messages = new Map<number, { id: string; lane: string; from: string; receivedAt: string; size: number; recipients: unknown[] }>();
  for (const row of rows) {
    const id = Number(row.id);
    let message = messages.get(id);
    if (!message) {
      message = { id: queueId(id), lane: String(row.lane), from: String(row.sender), receivedAt: new Date(Number(row.received_at)).toISOString(), size: Number(row.size), recipients: [] };
      messages.set(id, message);
    }
    message.recipients.push({
      address: row.address, state: Number(row.state) === STATE_ACTIVE ? 'active' : Number(row.attempts) > 0 ? 'deferred' : 'queued',
      attempts: Number(row.attempts), nextAttempt: new Date(Number(row.next_at)).toISOString(), lastReply: row.last_reply ?? undefined,
    });
  }
  return { messages: [...messages.values()] };
}

/**
 * Recipients per lane and destination domain by age, the busiest `top` domains of each lane.
 * Message ids grow with arrival, so each age bound becomes the first message id received after
 * it (one index lookup each) and the count is one pass over the recipients, without visiting a
 * single message row. It still reads every queued recipient: run it off the event loop
 * (summary-worker.ts), never on the relay's main thread.
 */
export type QueueSummary = ReturnType<typeof queueSummary>;

export function queueSummary(db: DatabaseSync, now: number, top = 20) {
  const firstAfter = db.prepare('SELECT id FROM messages WHERE received_at >= ? ORDER BY received_at LIMIT 1');
  const bounds = AGE_BUCKETS_MIN.map((m) => Number(firstAfter.get(now - m * 60_000)?.id ?? Number.MAX_SAFE_INTEGER));
  const bucket = `CASE ${bounds.map((_, i) => `WHEN message_id >= ? THEN ${i}`).join(' ')} ELSE ${bounds.length} END`;
  const rows = db.prepare(`SELECT lane, domain, ${bucket} AS bucket, count(*) AS n FROM recipients GROUP BY lane, domain, bucket`).all(...bounds);
  const lanes: Record<string, { total: number; buckets: number[]; domains: { domain: string; total: number; buckets: number[] }[] }> = {};
  const width = AGE_BUCKETS_MIN.length + 1;
  const domains = new Map<string, { domain: string; total: number; buckets: number[] }>();
  for (const row of rows) {
    const lane = String(row.lane);
    const n = Number(row.n);
    const b = Number(row.bucket);
    const laneEntry = (lanes[lane] ??= { total: 0, buckets: new Array(width).fill(0), domains: [] });
    laneEntry.total += n;
    laneEntry.buckets[b] += n;
    const key = `${lane} ${row.domain}`;
    let domain = domains.get(key);
    if (!domain) {
      domain = { domain: String(row.domain), total: 0, buckets: new Array(width).fill(0) };
      domains.set(key, domain);
      laneEntry.domains.push(domain);
    }
    domain.total += n;
    domain.buckets[b] += n;
  }
  for (const lane of Object.values(lanes)) lane.domains = lane.domains.sort((a, b) => b.total - a.total).slice(0, top);
  return { bucketsMinutes: AGE_BUCKETS_MIN, lanes };
}

/** Makes waiting recipients due now. Returns how many. */
export function retryNow(spool: Spool, selector: Selector): Promise<number> {
  const { sql, args } = where(selector);
  return spool.commits.run(() => Number(spool.db.prepare(`UPDATE recipients SET next_at = 0 WHERE state = ${STATE_WAITING} AND ${sql}`).run(...args).changes));
}

/** Removes waiting recipients (and messages left with none) without delivery. */
export function deleteQueued(spool: Spool, selector: Selector): Promise<{ deleted: number; inDelivery: number; lanes: Record<string, number> }> {
  const { sql, args } = where(selector);
  return spool.commits.run(() => {
    const rows = spool.db.prepare(`DELETE FROM recipients WHERE state = ${STATE_WAITING} AND ${sql} RETURNING message_id, lane, attempts`).all(...args);
    const lanes: Record<string, number> = {};
    for (const row of rows) {
      const lane = String(row.lane);
      const counts = spool.counts.get(lane);
      if (counts) Number(row.attempts) > 0 ? counts.deferred-- : counts.queued--;
      lanes[lane] = (lanes[lane] ?? 0) + 1;
      spool.recipientGone(Number(row.message_id));
    }
    const inDelivery = Number(spool.db.prepare(`SELECT count(*) AS n FROM recipients WHERE state = ${STATE_ACTIVE} AND ${sql}`).get(...args)!.n);
    return { deleted: rows.length, inDelivery, lanes };
  });
}

// The central delivery-log store of a cluster: one PostgreSQL table, `mailops_log`, partitioned by
// day (declarative range partitions `mailops_log_YYYYMMDD`, UTC days). Partitions are made ahead
// (`log.postgres.partitionsAhead` days) and retention drops whole partitions (never a DELETE of
// millions of rows). Indexes on the parent, so on every partition: (time), (tenant, time) for a
// tenant's last hour, (rcpt, time) for a recipient's history, (queue_id) for a message.
// Nodes write in batches: one INSERT ... SELECT FROM unnest(<one array per column>) per batch
// (a fixed statement whatever the batch size, and no COPY client library needed), in the same
// transaction as the node's shipped mark in `mailops_log_shipped`: a batch is in the store
// exactly once, however often the node had to try it. Schema changes and partition upkeep run
// under an advisory lock, so that nodes starting together do not trip over each other.
// May touch: the tables mailops_log, mailops_log_YYYYMMDD and mailops_log_shipped of its database.
import pg from 'pg';
import { whereSql, type LogFilter } from './filter.ts';
import { COLUMNS, type Row } from './record.ts';
import type { SummaryGroups } from './summary.ts';

export const TABLE = 'mailops_log';
const SHIPPED = 'mailops_log_shipped';
/** The advisory lock that serialises schema and partition changes (any number; "mlog" in ASCII). */
const DDL_LOCK = 0x6d6c6f67;
const DAY = 86_400_000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ${TABLE} (
  time        timestamptz NOT NULL,
  node        text NOT NULL,
  seq         bigint NOT NULL,
  event       text NOT NULL,
  tenant      text,
  queue_id    text,
  lane        text,
  sender      text,
  rcpt        text,
  domain      text,
  provider    text,
  mx          text,
  ip          text,
  egress      text,
  tls         boolean,
  reply       text,
  code        text,
  class       text,
  attempt     integer,
  queued_ms   bigint,
  delivery_ms bigint,
  detail      text
) PARTITION BY RANGE (time);
CREATE INDEX IF NOT EXISTS ${TABLE}_time ON ${TABLE} (time);
CREATE INDEX IF NOT EXISTS ${TABLE}_tenant_time ON ${TABLE} (tenant, time);
CREATE INDEX IF NOT EXISTS ${TABLE}_rcpt_time ON ${TABLE} (rcpt, time);
CREATE INDEX IF NOT EXISTS ${TABLE}_queue_id ON ${TABLE} (queue_id);
CREATE TABLE IF NOT EXISTS ${SHIPPED} (
  node  text NOT NULL,
  store text NOT NULL,
  seq   bigint NOT NULL,
  at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (node, store)
);
`;

/** The row columns after seq (time and seq lead the unnest), with their array types. */
const TYPES: Record<string, string> = {
  event: 'text', tenant: 'text', queue_id: 'text', lane: 'text', sender: 'text', rcpt: 'text', domain: 'text', provider: 'text',
  mx: 'text', ip: 'text', egress: 'text', tls: 'boolean', reply: 'text', code: 'text', class: 'text', attempt: 'integer',
  queued_ms: 'bigint', delivery_ms: 'bigint', detail: 'text',
};
const REST = COLUMNS.slice(2) as readonly string[];
// $1 node, $2 time[], $3 seq[], $4.. the rest; then store and the mark
const INSERT = `INSERT INTO ${TABLE} (time, node, seq, ${REST.join(', ')})
  SELECT to_timestamp(u.t::float8 / 1000), $1, u.s, ${REST.map((c) => `u.${c}`).join(', ')}
  FROM unnest($2::bigint[], $3::bigint[], ${REST.map((c, i) => `$${i + 4}::${TYPES[c]}[]`).join(', ')}) AS u(t, s, ${REST.join(', ')})`;
const MARK = `INSERT INTO ${SHIPPED} (node, store, seq, at) VALUES ($1, $2, $3, now())
  ON CONFLICT (node, store) DO UPDATE SET seq = excluded.seq, at = now()`;

/** The UTC day of a time, as the partition suffix: 20261130. */
export function dayOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10).replace(/-/g, '');
}

function dayStart(day: string): number {
  return Date.UTC(Number(day.slice(0, 4)), Number(day.slice(4, 6)) - 1, Number(day.slice(6, 8)));
}

const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

export class PostgresStore {
  readonly pool: pg.Pool;
  /** Day partitions known to exist (made or seen here). */
  private readonly days = new Set<string>();

  /** `onError`: a pooled connection failed while idle (the next call opens another). */
  constructor(url: string, onError: (err: Error) => void = () => {}) {
    this.pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 5000, idleTimeoutMillis: 30_000, application_name: 'mailops-logs' });
    this.pool.on('error', onError);
  }

  /** Tables and indexes, if not there yet. */
  async ensureSchema(): Promise<void> {
    await this.locked(async (c) => {
      await c.query(SCHEMA);
    });
  }

  private async locked(work: (c: pg.PoolClient) => Promise<void>): Promise<void> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      await c.query('SELECT pg_advisory_xact_lock($1)', [DDL_LOCK]);
      await work(c);
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      c.release();
    }
  }

  /** The day partitions that exist, by suffix. */
  async partitions(): Promise<string[]> {
    const { rows } = await this.pool.query(`SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = $1 ORDER BY 1`, [TABLE]);
    return rows.map((r) => String(r.name).slice(TABLE.length + 1)).filter((d) => /^\d{8}$/.test(d));
  }

  /** Makes the partitions of these days if missing. */
  async ensureDays(days: Iterable<string>): Promise<void> {
    const missing = [...new Set(days)].filter((d) => !this.days.has(d));
    if (missing.length === 0) return;
    await this.locked(async (c) => {
      for (const day of missing) {
        const start = dayStart(day);
        // bounds in UTC whatever the session's time zone
        await c.query(`CREATE TABLE IF NOT EXISTS ${TABLE}_${day} PARTITION OF ${TABLE} FOR VALUES FROM ('${isoDay(start)} 00:00:00+00') TO ('${isoDay(start + DAY)} 00:00:00+00')`);
      }
    });
    for (const day of missing) this.days.add(day);
  }

  /** Today's partition and `ahead` more; drops those that ended `retention` ago or earlier. Returns the days dropped. */
  async maintain(now: number, ahead: number, retention: number): Promise<string[]> {
    const wanted: string[] = [];
    for (let i = 0; i <= ahead; i++) wanted.push(dayOf(now + i * DAY));
    await this.ensureDays(wanted);
    const cutoff = now - retention;
    const old = (await this.partitions()).filter((day) => dayStart(day) + DAY <= cutoff);
    if (old.length === 0) return [];
    await this.locked(async (c) => {
      for (const day of old) await c.query(`DROP TABLE IF EXISTS ${TABLE}_${day}`);
    });
    for (const day of old) this.days.delete(day);
    return old;
  }

  /** Where this node's store `store` is shipped up to (0: nothing yet). */
  async shippedMark(node: string, store: string): Promise<number> {
    const { rows } = await this.pool.query(`SELECT seq FROM ${SHIPPED} WHERE node = $1 AND store = $2`, [node, store]);
    return rows.length ? Number(rows[0].seq) : 0;
  }

  /** Writes a batch (rows in seq order) and the node's shipped mark, in one transaction. */
  async ship(node: string, store: string, rows: Row[], mark: number): Promise<void> {
    await this.ensureDays(rows.map((r) => dayOf(Number(r[1]))));
    const columns = COLUMNS.map((_, i) => rows.map((r) => r[i]));
    const tls = COLUMNS.indexOf('tls');
    columns[tls] = columns[tls].map((v) => (v === null ? null : v === 1) as never);
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      if (rows.length) await c.query({ name: 'mailops-log-insert', text: INSERT, values: [node, columns[1], columns[0], ...columns.slice(2)] });
      await c.query({ name: 'mailops-log-mark', text: MARK, values: [node, store, mark] });
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      c.release();
    }
  }

  /** The newest `limit` records that pass, oldest first. */
  async query(filter: LogFilter, limit: number): Promise<Record<string, unknown>[]> {
    const where = whereSql(filter, 'postgres');
    const { rows } = await this.pool.query(`SELECT * FROM ${TABLE} WHERE ${where.sql} ORDER BY time DESC LIMIT ${Math.floor(limit)}`, where.args);
    return rows.reverse();
  }

  async summary(filter: LogFilter, bucketMs: number): Promise<SummaryGroups> {
    const run = async (select: string, extra: string, group: string, lead: unknown[] = []) => {
      const where = whereSql(filter, 'postgres', [...lead]);
      return (await this.pool.query(`SELECT ${select} FROM ${TABLE} WHERE ${where.sql}${extra} GROUP BY ${group}`, where.args)).rows as never[];
    };
    const bucket = '(floor(extract(epoch FROM time) * 1000 / $1) * $1)::bigint AS bucket';
    const b = Math.round(bucketMs);
    const [byBucket, byProvider, reasons, latency] = await Promise.all([
      run(`${bucket}, event, count(*) AS n`, '', 'bucket, event', [b]),
      run('provider, event, count(*) AS n', '', 'provider, event'),
      run('event, class, code, count(*) AS n, min(reply) AS example', " AND event IN ('deferred', 'failed', 'expired')", 'event, class, code'),
      run(`${bucket}, lane, count(*) AS n, sum(queued_ms) AS total, max(queued_ms) AS max`, " AND event = 'delivered' AND queued_ms IS NOT NULL", 'bucket, lane', [b]),
    ]);
    return { byBucket, byProvider, reasons, latency };
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

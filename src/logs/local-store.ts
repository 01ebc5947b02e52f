// A node's own delivery-log store: SQLite (node:sqlite) in `<spool.dir>/logs.sqlite`, beside the
// spool and apart from it (its writes never share the spool's transactions or fsyncs). Rows are
// numbered (`seq`) by the relay's thread in the order the events happened and written here in
// batches by the store worker (store-worker.ts), never on the relay's thread. It answers the same
// searches and summaries as the central store, keeps records for `log.store.retention` and within
// `log.store.maxSize` (oldest first, a slice at a time), and is the outbox of the shipping to
// PostgreSQL (shipper.ts): rows after the shipped mark are what is still to go.
// May touch: its own database file only.
import { randomBytes } from 'node:crypto';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { whereSql, type LogFilter } from './filter.ts';
import { COLUMNS, type Row } from './record.ts';
import type { SummaryGroups } from './summary.ts';

export const LOCAL_STORE_FILE = 'logs.sqlite';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
  seq         INTEGER PRIMARY KEY,
  time        INTEGER NOT NULL,
  event       TEXT NOT NULL,
  tenant      TEXT,
  queue_id    TEXT,
  lane        TEXT,
  sender      TEXT,
  rcpt        TEXT,
  domain      TEXT,
  provider    TEXT,
  mx          TEXT,
  ip          TEXT,
  egress      TEXT,
  tls         INTEGER,
  reply       TEXT,
  code        TEXT,
  class       TEXT,
  attempt     INTEGER,
  queued_ms   INTEGER,
  delivery_ms INTEGER,
  detail      TEXT
);
-- a time range; a tenant's latest; a recipient's history; a message
CREATE INDEX IF NOT EXISTS records_time ON records (time);
CREATE INDEX IF NOT EXISTS records_tenant ON records (tenant, time);
CREATE INDEX IF NOT EXISTS records_rcpt ON records (rcpt, time);
CREATE INDEX IF NOT EXISTS records_queue ON records (queue_id);
`;

/** Rows removed per trim step: one short transaction, then the worker takes new batches again. */
const TRIM_SLICE = 20_000;

export interface LocalStatus { records: number; bytes: number; firstSeq: number; lastSeq: number; oldest?: string; newest?: string }

export class LocalStore {
  readonly db: DatabaseSync;
  /** Identifies this file's numbering: a new file starts at 1 again, and the central store must know it is new. */
  readonly storeId: string;
  private readonly insertRow: StatementSync;

  constructor(file: string) {
    this.db = new DatabaseSync(file);
    for (const pragma of ['PRAGMA page_size = 8192', 'PRAGMA auto_vacuum = INCREMENTAL', 'PRAGMA journal_mode = WAL', 'PRAGMA synchronous = NORMAL', 'PRAGMA busy_timeout = 5000']) {
      this.db.exec(pragma);
    }
    this.db.exec(SCHEMA);
    const id = this.db.prepare("SELECT value FROM meta WHERE key = 'store_id'").get()?.value;
    this.storeId = typeof id === 'string' ? id : randomBytes(8).toString('hex');
    if (id === undefined) this.db.prepare("INSERT INTO meta (key, value) VALUES ('store_id', ?)").run(this.storeId);
    this.insertRow = this.db.prepare(`INSERT OR IGNORE INTO records (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})`);
  }

  lastSeq(): number {
    return Number(this.db.prepare('SELECT max(seq) AS s FROM records').get()?.s ?? 0);
  }

  /** One transaction for the batch. A row whose number exists already (a batch sent twice) is skipped. */
  insert(rows: Row[]): void {
    if (rows.length === 0) return;
    this.db.exec('BEGIN');
    try {
      for (const row of rows) this.insertRow.run(...row);
      this.db.exec('COMMIT');
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
  }

  /** The newest `limit` records that pass, oldest first. */
  query(filter: LogFilter, limit: number): Record<string, unknown>[] {
    const where = whereSql(filter, 'sqlite');
    return this.db.prepare(`SELECT * FROM records WHERE ${where.sql} ORDER BY time DESC, seq DESC LIMIT ?`).all(...(where.args as number[]), limit).reverse();
  }

  summary(filter: LogFilter, bucketMs: number): SummaryGroups {
    const run = (select: string, extra: string, group: string, lead: number[] = []) => {
      const where = whereSql(filter, 'sqlite', [...lead]);
      return this.db.prepare(`SELECT ${select} FROM records WHERE ${where.sql}${extra} GROUP BY ${group}`).all(...(where.args as number[])) as never[];
    };
    // `%` works on integers whatever the binding (node:sqlite binds a JS number as a double, and `/` would not floor)
    const b = Math.round(bucketMs);
    return {
      byBucket: run('time - time % ? AS bucket, event, count(*) AS n', '', 'bucket, event', [b]),
      byProvider: run('provider, event, count(*) AS n', '', 'provider, event'),
      reasons: run('event, class, code, count(*) AS n, min(reply) AS example', " AND event IN ('deferred', 'failed', 'expired')", 'event, class, code'),
      latency: run('time - time % ? AS bucket, lane, count(*) AS n, sum(queued_ms) AS total, max(queued_ms) AS max', " AND event = 'delivered' AND queued_ms IS NOT NULL", 'bucket, lane', [b]),
    };
  }

  /** Rows after `afterSeq` and no older than `minTime`, in order, at most `limit` (the outbox). */
  after(afterSeq: number, limit: number): Row[] {
    return this.db.prepare(`SELECT ${COLUMNS.join(', ')} FROM records WHERE seq > ? ORDER BY seq LIMIT ?`).all(afterSeq, limit)
      .map((r) => COLUMNS.map((c) => r[c] as string | number | null));
  }

  /** Rows waiting after `afterSeq` (numbers are contiguous: no count over the table). */
  pendingAfter(afterSeq: number): number {
    return Math.max(0, this.lastSeq() - Math.max(afterSeq, this.firstSeq() - 1));
  }

  firstSeq(): number {
    return Number(this.db.prepare('SELECT min(seq) AS s FROM records').get()?.s ?? 0);
  }

  bytes(): number {
    const pages = Number(this.db.prepare('PRAGMA page_count').get()!.page_count);
    const free = Number(this.db.prepare('PRAGMA freelist_count').get()!.freelist_count);
    const size = Number(this.db.prepare('PRAGMA page_size').get()!.page_size);
    return (pages - free) * size;
  }

  /**
   * One step of retention: the oldest slice of rows older than `cutoff`, or, past `maxBytes`, the
   * oldest slice whatever its age. Returns the seq range removed (none: nothing to do), so that the
   * caller can tell how many of them had not been shipped yet.
   */
  trimStep(cutoff: number, maxBytes: number): { from: number; to: number } | undefined {
    // rows are numbered in time order: the old ones are at the front (a look at the first slice, never a scan)
    let to = Number(this.db.prepare('SELECT max(seq) AS s FROM (SELECT seq, time FROM records ORDER BY seq LIMIT ?) WHERE time < ?').get(TRIM_SLICE, cutoff)?.s ?? 0);
    if (!to && this.bytes() > maxBytes) {
      to = Number(this.db.prepare('SELECT max(seq) AS s FROM (SELECT seq FROM records ORDER BY seq LIMIT ?)').get(TRIM_SLICE)?.s ?? 0);
    }
    if (!to) return undefined;
    const from = this.firstSeq();
    this.db.prepare('DELETE FROM records WHERE seq <= ?').run(to);
    this.db.exec(`PRAGMA incremental_vacuum(${TRIM_SLICE / 4})`);
    return { from, to };
  }

  status(): LocalStatus {
    const first = this.firstSeq();
    const last = this.lastSeq();
    const times = this.db.prepare('SELECT (SELECT time FROM records ORDER BY seq LIMIT 1) AS oldest, (SELECT time FROM records ORDER BY seq DESC LIMIT 1) AS newest').get()!;
    return {
      records: last ? last - first + 1 : 0, bytes: this.bytes(), firstSeq: first, lastSeq: last,
      oldest: times.oldest === null ? undefined : new Date(Number(times.oldest)).toISOString(),
      newest: times.newest === null ? undefined : new Date(Number(times.newest)).toISOString(),
    };
  }

  close(): void {
    this.db.close();
  }
}

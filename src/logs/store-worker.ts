// The delivery log's worker thread: owns the node's local store (local-store.ts) and, with
// `log.postgres`, the shipping to the central store (shipper.ts). The relay's thread sends it the
// record events' JSON lines in batches, already numbered, and asks it searches, summaries and its
// status; everything that parses, writes, trims, ships or aggregates happens here, so none of it
// takes time from SMTP or delivery. A batch is written before any request that came after it is
// answered from the local store (messages are handled in order), so a search sees every record
// the relay had handed over when it asked.
// May touch: the local store file, the central store, notes to the relay's thread.
import { parentPort, workerData } from 'node:worker_threads';
import type { PostgresLogConfig } from '../config/logs.ts';
import type { LogEvent } from '../relay/log.ts';
import type { LogFilter } from './filter.ts';
import { LocalStore } from './local-store.ts';
import type { PostgresStore } from './postgres-store.ts';
import { recordOf, rowsOf, type LogRecord, type Row } from './record.ts';
import type { Shipper, ShipperStatus } from './shipper.ts';
import { assembleSummary, summaryRange, type LogSummary } from './summary.ts';

export interface StoreWorkerData {
  file: string;
  node: string;
  retention: number;
  maxSize: number;
  postgres?: PostgresLogConfig;
}

export type StoreRequest =
  | { kind: 'insert'; firstSeq: number; lines: string[] }
  | { kind: 'query'; filter: LogFilter; limit: number; localOnly?: boolean }
  | { kind: 'summary'; filter: LogFilter; bucketMs: number; now: number }
  | { kind: 'status' }
  | { kind: 'close'; graceMs: number };

export interface QueryAnswer { store: 'local' | 'postgres'; partial?: string; records: LogRecord[] }
export interface StoreStatus { node: string; local: ReturnType<LocalStore['status']>; postgres?: ShipperStatus }

/** How often retention runs (each run removes slices until within bounds). */
const TRIM_EVERY_MS = 10_000;

const data = workerData as StoreWorkerData;
const local = new LocalStore(data.file);
const note = (event: string, fields: Record<string, unknown>) => parentPort!.postMessage({ note: event, fields });

let pg: PostgresStore | undefined;
let shipper: Shipper | undefined;
if (data.postgres) {
  // pg is loaded only by nodes that ship
  const { PostgresStore } = await import('./postgres-store.ts');
  const { Shipper } = await import('./shipper.ts');
  pg = new PostgresStore(data.postgres.url, (err) => note('logs-postgres-error', { error: err.message }));
  shipper = new Shipper({ local, pg, node: data.node, config: data.postgres, notify: note });
  shipper.start();
}

function insert(firstSeq: number, lines: string[]): number {
  const rows: Row[] = [];
  let seq = firstSeq;
  for (const line of lines) {
    const made = rowsOf(JSON.parse(line) as LogEvent, seq);
    seq += made.length;
    for (const row of made) rows.push(row);
  }
  local.insert(rows);
  shipper?.kick();
  return rows.length;
}

/** The central store while it answers; else this node's own records, saying so. */
async function fromStore<T>(central: (pg: PostgresStore) => Promise<T>, own: () => T, localOnly = false): Promise<{ store: 'local' | 'postgres'; partial?: string; value: T }> {
  if (pg && shipper && !localOnly) {
    if (shipper.state === 'up') {
      try {
        return { store: 'postgres', value: await central(pg) };
      } catch (err) {
        return { store: 'local', partial: `PostgreSQL failed (${(err as Error).message}): this node's records only`, value: own() };
      }
    }
    return { store: 'local', partial: `PostgreSQL is unreachable (${shipper.status().lastError ?? 'connecting'}): this node's records only`, value: own() };
  }
  return { store: 'local', value: own() };
}

async function query(filter: LogFilter, limit: number, localOnly?: boolean): Promise<QueryAnswer> {
  const found = await fromStore((p) => p.query(filter, limit), () => local.query(filter, limit), localOnly);
  return { store: found.store, partial: found.partial, records: found.value.map((row) => recordOf(row, data.node)) };
}

async function summary(filter: LogFilter, bucketMs: number, now: number): Promise<LogSummary & { partial?: string }> {
  const range = summaryRange(filter, bucketMs, now);
  const ranged = { ...filter, since: range.since, until: range.until };
  const found = await fromStore((p) => p.summary(ranged, range.bucketMs), () => local.summary(ranged, range.bucketMs));
  return { ...assembleSummary(found.store, range, found.value), partial: found.partial };
}

let closed = false;

function trim(): void {
  const cutoff = Date.now() - data.retention;
  const step = () => {
    if (closed) return;
    const removed = local.trimStep(cutoff, data.maxSize);
    if (!removed) return;
    shipper?.trimmed(removed.from, removed.to);
    setImmediate(step); // a slice at a time: batches and requests go between slices
  };
  step();
}
const trimmer = setInterval(trim, TRIM_EVERY_MS);
trim();

async function handle(request: StoreRequest): Promise<unknown> {
  switch (request.kind) {
    case 'insert': return insert(request.firstSeq, request.lines);
    case 'query': return query(request.filter, request.limit, request.localOnly);
    case 'summary': return summary(request.filter, request.bucketMs, request.now);
    case 'status': return { node: data.node, local: local.status(), postgres: shipper?.status() } satisfies StoreStatus;
    case 'close':
      closed = true;
      clearInterval(trimmer);
      await shipper?.stop(request.graceMs);
      await pg?.close().catch(() => {});
      local.close();
      return true;
  }
}

// Requests are taken in order; each is answered as soon as it is done (a PostgreSQL search does
// not hold up the batches that come after it).
parentPort!.on('message', (requests: (StoreRequest & { id: number })[]) => {
  for (const request of requests) {
    handle(request).then(
      (value) => parentPort!.postMessage({ id: request.id, value }),
      (err: Error) => parentPort!.postMessage({ id: request.id, error: err.message }),
    );
  }
});

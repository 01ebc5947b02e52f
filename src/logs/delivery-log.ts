// A node's delivery log, on the relay's thread: takes every record event from the event log
// (src/relay/log.ts) as it is emitted, numbers its rows, tells live followers at once, and hands
// the JSON lines to the store worker (store-worker.ts) in batches, one message per 100 ms or per
// 2,000 lines, never a write of its own. Per event the relay's thread does a table lookup and an
// array push; parsing, storing, shipping and searching are the worker's. If the worker falls
// behind by more than MAX_IN_FLIGHT batches (a failing disk), new lines are dropped and counted
// (`logs-dropped`) rather than kept in memory without bound.
// May touch: the event log (subscribes, and logs its own notes), the store worker.
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { RelayConfig } from '../config/types.ts';
import type { EventLog, LogEvent } from '../relay/log.ts';
import { WorkerCalls } from '../util/worker-calls.ts';
import type { LogFilter } from './filter.ts';
import { LOCAL_STORE_FILE, LocalStore } from './local-store.ts';
import { recordOf, rowCount, rowObject, rowsOf, type LogRecord } from './record.ts';
import type { QueryAnswer, StoreRequest, StoreStatus, StoreWorkerData } from './store-worker.ts';
import type { LogSummary } from './summary.ts';

const FLUSH_MS = 100;
const FLUSH_LINES = 2000;
const MAX_IN_FLIGHT = 64;
/** At a stop, how long the worker may go on shipping what PostgreSQL has not got yet. */
const CLOSE_GRACE_MS = 3000;

/** A live follower: the records of one event, as it happens. */
export type Follower = (records: LogRecord[]) => void;

/** The name a node's records carry: its cluster name, else its SMTP host name. */
export function nodeName(config: RelayConfig): string {
  return config.cluster?.node ?? config.smtp.hostname;
}

export class DeliveryLog {
  readonly node: string;
  /** Number of the last row handed out. */
  private lastSeq: number;
  /** Stopping: the worker's end is expected, not an error. */
  private closing = false;
  private lines: string[] = [];
  private firstSeq = 0;
  private timer?: NodeJS.Timeout;
  private inFlight = 0;
  private dropped = 0;
  private readonly followers = new Set<Follower>();
  private readonly calls: WorkerCalls<StoreRequest, unknown>;
  private readonly log: EventLog;
  private readonly unsubscribe: () => void;

  /** Opens (or makes) `<spool.dir>/logs.sqlite` and starts the store worker; the spool directory exists already. */
  constructor(log: EventLog, config: RelayConfig) {
    this.log = log;
    this.node = nodeName(config);
    const file = join(config.spool.dir, LOCAL_STORE_FILE);
    // once, at start: where numbering goes on (and the schema, before the worker opens the file)
    const store = new LocalStore(file);
    this.lastSeq = store.lastSeq();
    store.close();
    const workerData: StoreWorkerData = { file, node: this.node, retention: config.log.store.retention, maxSize: config.log.store.maxSize, postgres: config.log.postgres };
    const worker = new Worker(new URL('./store-worker.ts', import.meta.url), { workerData });
    worker.unref();
    worker.on('message', (m: { note?: string; fields?: Record<string, unknown> }) => {
      if (m.note && !this.closing) log.emit(m.note, m.fields);
    });
    this.calls = new WorkerCalls(worker, { name: 'delivery log store worker', onFail: (err) => {
      if (!this.closing) log.emit('logs-error', { error: err.message });
    } });
    this.unsubscribe = log.subscribe((event, line) => this.take(event, line));
  }

  private take(event: LogEvent, line: string): void {
    const n = rowCount(event);
    if (n === 0) return;
    if (this.inFlight >= MAX_IN_FLIGHT) {
      this.dropped += n;
      return;
    }
    const first = this.lastSeq + 1;
    if (this.lines.length === 0) this.firstSeq = first;
    this.lastSeq += n;
    // the log has made this line already; the worker parses it again, off this thread
    this.lines.push(line);
    if (this.followers.size) {
      const records = rowsOf(event, first).map((row) => recordOf(rowObject(row), this.node));
      for (const follower of this.followers) follower(records);
    }
    if (this.lines.length >= FLUSH_LINES) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), FLUSH_MS).unref();
  }

  /** Hands the lines gathered so far to the worker (before a search, so that it sees them). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.dropped) {
      this.log.emit('logs-dropped', { records: this.dropped, note: 'the delivery log store fell behind' });
      this.dropped = 0;
    }
    if (this.lines.length === 0) return;
    const request: StoreRequest = { kind: 'insert', firstSeq: this.firstSeq, lines: this.lines };
    this.lines = [];
    this.inFlight++;
    this.calls.call(request).then(
      () => this.inFlight--,
      (err: Error) => {
        this.inFlight--;
        this.log.emit('logs-error', { error: err.message, records: request.lines.length });
      },
    );
  }

  /** Live records from now on; returns the unsubscribe. */
  follow(follower: Follower): () => void {
    this.followers.add(follower);
    return () => this.followers.delete(follower);
  }

  /** The newest `limit` records that pass (oldest first): the central store if there is one and it answers, else this node's. */
  query(filter: LogFilter, limit: number, localOnly = false): Promise<QueryAnswer> {
    this.flush();
    return this.calls.call({ kind: 'query', filter, limit, localOnly }) as Promise<QueryAnswer>;
  }

  summary(filter: LogFilter, bucketMs: number, now: number): Promise<LogSummary & { partial?: string }> {
    this.flush();
    return this.calls.call({ kind: 'summary', filter, bucketMs, now }) as Promise<LogSummary & { partial?: string }>;
  }

  status(): Promise<StoreStatus> {
    this.flush();
    return this.calls.call({ kind: 'status' }) as Promise<StoreStatus>;
  }

  /** Stores what is pending, ships for a moment if PostgreSQL answers, and ends the worker. */
  async close(): Promise<void> {
    this.unsubscribe();
    this.flush();
    try {
      await this.calls.call({ kind: 'close', graceMs: CLOSE_GRACE_MS });
    } catch {
      // the worker is gone already: nothing more to write
    }
    this.closing = true;
    await this.calls.worker.terminate();
  }
}

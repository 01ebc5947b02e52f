// Group commit: every change to the spool is an operation queued here; all operations queued
// during one turn of the event loop run in a single transaction, and each caller's promise
// settles only after that transaction is on disk. Many concurrent DATA ends thus share one disk
// sync, and a 250 is never sent before its message is durable.
//
// The fsync runs on libuv's thread pool, not on the event loop: SQLite is in WAL mode with
// synchronous=NORMAL (its COMMIT only writes the WAL), and this class fsyncs the WAL file itself
// after each COMMIT and before settling. That is the durability of synchronous=FULL (the WAL is
// synced after every commit) without blocking receiving and delivery for the length of a disk
// flush; transactions committed while one fsync runs share the next one.
import { fsync } from 'node:fs';
import type { DatabaseSync } from 'node:sqlite';

interface Pending {
  op: () => unknown;
  /** Settle only once on disk (true), or as soon as committed (changes nobody must rely on after a crash). */
  durable: boolean;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

interface Committed { item: Pending; ok: boolean; value: unknown }

export class GroupCommit {
  private pending: Pending[] = [];
  private scheduled = false;
  private unsynced: Committed[] = [];
  private syncing = false;
  private readonly db: DatabaseSync;
  private readonly walFd: number;
  private readonly maxBatch: number;
  private readonly interval: number;
  commits = 0;
  syncs = 0;

  /** Called after a failed COMMIT was rolled back, so that in-memory tallies can be rebuilt. */
  onRollback: () => void = () => {};

  constructor(db: DatabaseSync, walFd: number, maxBatch: number, interval: number) {
    this.db = db;
    this.walFd = walFd;
    this.maxBatch = maxBatch;
    this.interval = interval;
  }

  /**
   * Queues `op` for the next transaction; resolves with its result once committed and synced,
   * or with `durable: false` once committed (a claim: after a crash every claim is undone anyway).
   */
  run<T>(op: () => T, { durable = true } = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ op, durable, resolve: resolve as (value: unknown) => void, reject });
      if (this.pending.length >= this.maxBatch) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        if (this.interval > 0) setTimeout(() => this.flush(), this.interval);
        else setImmediate(() => this.flush());
      }
    });
  }

  /** Runs everything queued so far in one transaction (synchronous, no fsync), then syncs. */
  flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    const done: Committed[] = [];
    try {
      this.db.exec('BEGIN IMMEDIATE');
      for (const item of batch) {
        // A savepoint per operation: one failing operation (a constraint, say) is undone alone.
        this.db.exec('SAVEPOINT op');
        try {
          done.push({ item, ok: true, value: item.op() });
          this.db.exec('RELEASE op');
        } catch (err) {
          this.db.exec('ROLLBACK TO op');
          this.db.exec('RELEASE op');
          done.push({ item, ok: false, value: err });
        }
      }
      this.db.exec('COMMIT');
    } catch (err) {
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      this.onRollback();
      for (const item of batch) item.reject(err as Error);
      return;
    }
    this.commits++;
    for (const entry of done) {
      if (entry.item.durable) this.unsynced.push(entry);
      else if (entry.ok) entry.item.resolve(entry.value);
      else entry.item.reject(entry.value as Error);
    }
    this.sync();
  }

  /** One fsync at a time; whatever committed meanwhile waits for the next. */
  private sync(): void {
    if (this.syncing || this.unsynced.length === 0) return;
    const batch = this.unsynced;
    this.unsynced = [];
    this.syncing = true;
    fsync(this.walFd, (err) => {
      this.syncing = false;
      this.syncs++;
      for (const { item, ok, value } of batch) {
        if (err) item.reject(err);
        else if (ok) item.resolve(value);
        else item.reject(value as Error);
      }
      this.sync();
    });
  }

  /** Flushes and waits until everything queued so far is durable (for shutdown). */
  async drain(): Promise<void> {
    while (this.pending.length || this.unsynced.length || this.syncing) {
      this.flush();
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }
}

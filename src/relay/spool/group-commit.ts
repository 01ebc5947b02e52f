// Group commit: every change to the spool is an operation queued here; all operations queued
// during one turn of the event loop run in a single transaction with a single fsync, and each
// caller's promise settles only after that COMMIT returned. Many concurrent DATA ends thus share
// one disk sync, and a 250 is never sent before its message is on disk.
import type { DatabaseSync } from 'node:sqlite';

interface Pending {
  op: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

export class GroupCommit {
  private pending: Pending[] = [];
  private scheduled = false;
  private readonly db: DatabaseSync;
  private readonly maxBatch: number;
  private readonly interval: number;
  commits = 0;
  operations = 0;

  /** Called after a failed COMMIT was rolled back, so that in-memory tallies can be rebuilt. */
  onRollback: () => void = () => {};

  constructor(db: DatabaseSync, maxBatch: number, interval: number) {
    this.db = db;
    this.maxBatch = maxBatch;
    this.interval = interval;
  }

  /** Queues `op` for the next transaction; resolves with its result once committed. */
  run<T>(op: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ op, resolve: resolve as (value: unknown) => void, reject });
      if (this.pending.length >= this.maxBatch) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        if (this.interval > 0) setTimeout(() => this.flush(), this.interval);
        else setImmediate(() => this.flush());
      }
    });
  }

  /** Runs everything queued so far in one transaction. Synchronous: the COMMIT's fsync blocks. */
  flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    const results: { ok: boolean; value: unknown }[] = [];
    try {
      this.db.exec('BEGIN IMMEDIATE');
      for (const item of batch) {
        // A savepoint per operation: one failing operation (a constraint, say) is undone alone.
        this.db.exec('SAVEPOINT op');
        try {
          results.push({ ok: true, value: item.op() });
          this.db.exec('RELEASE op');
        } catch (err) {
          this.db.exec('ROLLBACK TO op');
          this.db.exec('RELEASE op');
          results.push({ ok: false, value: err });
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
    this.operations += batch.length;
    batch.forEach((item, i) => (results[i].ok ? item.resolve(results[i].value) : item.reject(results[i].value as Error)));
  }
}

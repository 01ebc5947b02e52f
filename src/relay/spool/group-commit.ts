// Group commit: every change to the spool is an operation queued here; all operations queued
// during one turn of the event loop run in a single transaction, and each caller's promise
// settles only after that transaction is on disk. Many concurrent DATA ends thus share one disk
// sync, and a 250 is never sent before its message is durable.
//
// The fsync runs on libuv's thread pool, not on the event loop: SQLite is in WAL mode with
// synchronous=NORMAL (its COMMIT only writes the WAL), and this class fsyncs the WAL file itself
// after each COMMIT and before settling. That is the durability of synchronous=FULL (the WAL is
// synced after every commit) without blocking receiving and delivery for the length of a disk
// flush. While an fsync is under way, new operations gather rather than commit: they could not be
// on disk before the next fsync anyway, and one bigger transaction costs far less than several
// small ones (each COMMIT rewrites every page it touched to the WAL; measured in
// bench/relay-dkim.sh: a third fewer commits, 8 % more messages per second). A 250 thus waits for
// at most the end of the running fsync plus its own. Only a full batch commits at once, with a
// second fsync beside the running one. Claims (not durable: a crash undoes every claim anyway)
// do not gather: they commit at once, ahead of the durable changes waiting for the next fsync, so
// that a reminder committed during a newsletter's heavy writes is claimed without waiting for
// another disk flush. Running ahead is safe for a claim: the changes it overtakes (finish, defer,
// release, insert) only ever add rows it may claim on its next turn, never take rows it claimed.
// Urgent changes (the highest lane's new messages) do not gather either while a second fsync may
// start: they commit ahead of the newsletter's gathered inserts, and their own fsync runs beside
// the one under way, so a reminder's 250 waits for one flush, not for the end of another plus
// its own. An insert overtakes nothing it depends on.
import { fsync } from 'node:fs';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { Histogram } from '../metrics.ts';

interface Pending {
  op: () => unknown;
  /** Settle only once on disk (true), or as soon as committed (changes nobody must rely on after a crash). */
  durable: boolean;
  /** Commit ahead of gathered changes, with a second fsync beside a running one (see the header). */
  urgent: boolean;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

interface Committed { item: Pending; ok: boolean; value: unknown; seq: number }

const MAX_SYNCS_IN_FLIGHT = 2;

export class GroupCommit {
  private pending: Pending[] = [];
  private scheduled = false;
  private unsynced: Committed[] = [];
  private syncsInFlight = 0;
  /** Commits so far, and the newest commit that an fsync under way or done covers. */
  private committedSeq = 0;
  private syncStartedSeq = 0;
  private readonly db: DatabaseSync;
  private readonly walFd: number;
  private readonly maxBatch: number;
  private readonly interval: number;
  commits = 0;
  /** How long each WAL fsync took (ms): the floor under every 250's latency. */
  readonly syncTimes = new Histogram();

  /** Called after a failed COMMIT was rolled back, so that in-memory tallies can be rebuilt. */
  onRollback: () => void = () => {};

  /** Transaction control, prepared once (exec would parse them for every operation). */
  private readonly tx: Record<'begin' | 'commit' | 'rollback' | 'savepoint' | 'release' | 'undo', StatementSync>;

  constructor(db: DatabaseSync, walFd: number, maxBatch: number, interval: number) {
    this.db = db;
    const p = (sql: string) => db.prepare(sql);
    this.tx = {
      begin: p('BEGIN IMMEDIATE'), commit: p('COMMIT'), rollback: p('ROLLBACK'),
      savepoint: p('SAVEPOINT op'), release: p('RELEASE op'), undo: p('ROLLBACK TO op'),
    };
    this.walFd = walFd;
    this.maxBatch = maxBatch;
    this.interval = interval;
  }

  /**
   * Queues `op` for the next transaction; resolves with its result once committed and synced,
   * or with `durable: false` once committed (a claim: after a crash every claim is undone anyway).
   */
  run<T>(op: () => T, { durable = true, urgent = false } = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ op, durable, urgent, resolve: resolve as (value: unknown) => void, reject });
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
    if (this.syncsInFlight > 0 && batch.length < this.maxBatch) { // the fsync's end flushes the rest
      const secondSync = this.syncsInFlight < MAX_SYNCS_IN_FLIGHT;
      const goesAhead = (item: Pending) => !item.durable || (item.urgent && secondSync);
      if (batch.some(goesAhead)) this.commitAhead(batch, goesAhead);
      return;
    }
    this.pending = [];
    const done = this.commitBatch(batch);
    if (!done) return;
    for (const entry of done) {
      if (entry.item.durable) this.unsynced.push(entry);
      else if (entry.ok) entry.item.resolve(entry.value);
      else entry.item.reject(entry.value as Error);
    }
    this.sync();
  }

  /** Commits what `goesAhead` picks (claims, urgent changes) now, in a transaction of their own, and leaves the rest of the batch queued. */
  private commitAhead(batch: Pending[], goesAhead: (item: Pending) => boolean): void {
    const ahead: Pending[] = [];
    const rest: Pending[] = [];
    for (const item of batch) (goesAhead(item) ? ahead : rest).push(item);
    this.pending = rest;
    let durable = false;
    for (const entry of this.commitBatch(ahead) ?? []) {
      if (entry.item.durable) {
        durable = true;
        this.unsynced.push(entry);
      } else if (entry.ok) entry.item.resolve(entry.value);
      else entry.item.reject(entry.value as Error);
    }
    if (durable) this.sync(); // beside the one under way; claims alone wait for the next fsync to cover them, nobody waits for that
  }

  /** Runs and commits a batch; when the commit itself fails, every operation is rejected (undefined). */
  private commitBatch(batch: Pending[]): Committed[] | undefined {
    try {
      const done = this.execute(batch, false) ?? this.execute(batch, true)!;
      this.commits++;
      this.committedSeq++;
      return done;
    } catch (err) {
      if (this.db.isTransaction) this.tx.rollback.run();
      this.onRollback();
      for (const item of batch) item.reject(err as Error);
      return undefined;
    }
  }

  /**
   * Runs the batch in one transaction and commits it. Operations rarely fail, so they first run
   * side by side; if one throws, the whole batch is rolled back (undefined) and runs again
   * `isolated`: a savepoint per operation, so that a failing one is undone alone.
   */
  private execute(batch: Pending[], isolated: boolean): Committed[] | undefined {
    const { begin, commit, rollback, savepoint, release, undo } = this.tx;
    const seq = this.committedSeq + 1;
    const done: Committed[] = [];
    begin.run();
    for (const item of batch) {
      if (!isolated) {
        try {
          done.push({ item, ok: true, value: item.op(), seq });
        } catch {
          rollback.run();
          this.onRollback();
          return undefined;
        }
        continue;
      }
      savepoint.run();
      try {
        done.push({ item, ok: true, value: item.op(), seq });
        release.run();
      } catch (err) {
        undo.run();
        release.run();
        done.push({ item, ok: false, value: err, seq });
      }
    }
    commit.run();
    return done;
  }

  /** Starts an fsync covering every commit so far, unless one already covers them or two are running. */
  private sync(): void {
    if (this.syncsInFlight >= MAX_SYNCS_IN_FLIGHT || this.syncStartedSeq === this.committedSeq) return;
    const covers = (this.syncStartedSeq = this.committedSeq);
    this.syncsInFlight++;
    const started = performance.now();
    fsync(this.walFd, (err) => {
      this.syncsInFlight--;
      this.syncTimes.observe(performance.now() - started);
      // everything committed before this fsync began is on disk now (or failed with it)
      let settled = 0;
      while (settled < this.unsynced.length && this.unsynced[settled].seq <= covers) settled++;
      for (const { item, ok, value } of this.unsynced.splice(0, settled)) {
        if (err) item.reject(err);
        else if (ok) item.resolve(value);
        else item.reject(value as Error);
      }
      if (this.pending.length) this.flush();
      this.sync();
    });
  }

  /** Operations queued or committed but not yet on disk. */
  get backlog(): number {
    return this.pending.length + this.unsynced.length;
  }

  /**
   * Resolves once fewer than `limit` operations wait for the disk. Producers that do not wait
   * for each of their own writes (the scheduler's outcomes) wait here, so that a burst of work
   * (a whole backlog deferred at once) is paced by the disk instead of piling up in memory.
   */
  async whenBelow(limit: number): Promise<void> {
    while (this.backlog >= limit) await new Promise((resolve) => setTimeout(resolve, 2));
  }

  /** Flushes and waits until everything queued so far is durable (for shutdown). */
  async drain(): Promise<void> {
    while (this.pending.length || this.unsynced.length || this.syncsInFlight) {
      this.flush();
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }
}

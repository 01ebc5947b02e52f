// Group commit: every change to the spool is an operation queued here; all operations queued
// during one turn of the event loop run in a single transaction, and each caller's promise
// settles only after that transaction is on disk. Many concurrent DATA ends thus share one disk
// sync, and a 250 is never sent before its message is durable.
//
// The fsync runs on libuv's thread pool, not on the event loop: SQLite is in WAL mode with
// synchronous=NORMAL (its COMMIT only writes the WAL), and this class fsyncs the WAL file itself
// after each COMMIT and before settling (fdatasync, as SQLite itself syncs on Linux: the data and
// the size, not the modification time). That is the durability of synchronous=FULL (the WAL is
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
// Changes that record what happened outside (`ahead`: a delivered recipient's finish, whose
// receiver has answered 250) do not gather either: they commit at once, ahead of the gathered
// changes, and settle when the next fsync covers them, without starting one of their own. A
// kill -9 loses only what the process had not yet written, and a COMMIT is in the WAL (the OS
// page cache) at once, so the window in which a kill sends a delivered message again shrinks from
// "until the running fsync ends" to "until the next turn of the loop", at no extra fsync (a power
// loss before that fsync still sends it again, as before). A delivered finish overtakes nothing
// it depends on: its recipient was claimed (committed) before the attempt, and the other changes
// to its message that may be gathered (other recipients' outcomes) do not depend on the order.
// A failure's finish keeps gathering, so that it mostly commits with the DSN insert made for it
// rather than ahead of it.
//
// SQLite runs on the event loop, so a transaction blocks it for as long as its operations and
// COMMIT take: a batch gathered during one fsync of a newsletter's 40 KB messages (a few hundred
// inserts) would hold every other session, a reminder's included, for tens of milliseconds. A
// batch thus commits in slices of at most SLICE_MS of work, one per turn of the loop, and the
// fsync starts after the last slice: the loop serves sockets between slices, and the batch still
// shares one disk flush. How long each slice held the loop is in `commitTimes`.
import { fdatasync } from 'node:fs';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { Histogram } from '../metrics.ts';

interface Pending {
  op: () => unknown;
  /** Settle only once on disk (true), or as soon as committed (changes nobody must rely on after a crash). */
  durable: boolean;
  /** Commit ahead of gathered changes, with a second fsync beside a running one (see the header). */
  urgent: boolean;
  /** Commit ahead of gathered changes, settle with the next fsync (see the header). */
  ahead: boolean;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

interface Committed { item: Pending; ok: boolean; value: unknown; seq: number }

const MAX_SYNCS_IN_FLIGHT = 2;
/** The most work (ms) one transaction may take of the event loop before the rest of its batch waits a turn. */
const SLICE_MS = 4;
/** A slice runs at least this many operations: a small batch is one transaction, however slow the machine is that moment. */
const MIN_SLICE_OPS = 16;

export class GroupCommit {
  private pending: Pending[] = [];
  private scheduled = false;
  /** A batch being committed slice by slice (see the header); new operations gather meanwhile. */
  private slicing: Pending[] = [];
  private sliced: Committed[] = [];
  private unsynced: Committed[] = [];
  private syncsInFlight = 0;
  /** Closed for shutdown: nothing more is taken (see close()). */
  private closed = false;
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
  /** How long each transaction held the event loop (ms): operations and COMMIT. */
  readonly commitTimes = new Histogram();

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
   * `urgent` and `ahead` commit without gathering (see the header).
   */
  run<T>(op: () => T, { durable = true, urgent = false, ahead = false } = {}): Promise<T> {
    if (this.closed) return Promise.reject(new SpoolClosedError());
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ op, durable, urgent, ahead, resolve: resolve as (value: unknown) => void, reject });
      if (this.pending.length >= this.maxBatch) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        if (this.interval > 0) setTimeout(() => this.flush(), this.interval);
        else setImmediate(() => this.flush());
      }
    });
  }

  /** Commits everything queued so far (in slices, see the header), then syncs. */
  flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    if (batch.length === 0) return;
    if ((this.syncsInFlight > 0 || this.slicing.length > 0) && batch.length < this.maxBatch) { // the fsync's (or the slices') end flushes the rest
      const secondSync = this.syncsInFlight < MAX_SYNCS_IN_FLIGHT;
      const goesAhead = (item: Pending) => !item.durable || item.ahead || (item.urgent && secondSync);
      if (batch.some(goesAhead)) this.commitAhead(batch, goesAhead);
      return;
    }
    this.pending = [];
    if (this.slicing.length > 0) { // a full batch while slicing: it joins the slices
      for (const item of batch) this.slicing.push(item);
      return;
    }
    this.slicing = batch;
    this.commitSlice();
  }

  /** Commits the next slice of the batch; the next turn takes the rest, and the last slice starts the fsync. */
  private commitSlice(): void {
    const done = this.commitBatch(this.slicing, SLICE_MS);
    if (done) {
      for (const entry of done) {
        if (entry.item.durable) this.unsynced.push(entry);
        else if (entry.ok) entry.item.resolve(entry.value);
        else entry.item.reject(entry.value as Error);
      }
    }
    if (this.slicing.length > 0) {
      setImmediate(() => this.commitSlice());
      return;
    }
    this.sync();
    if (this.syncsInFlight === 0 && this.pending.length) this.flush(); // nothing to sync (a failed batch): go on
  }

  /** Commits what `goesAhead` picks (claims, urgent and `ahead` changes) now, in a transaction of their own, and leaves the rest of the batch queued. */
  private commitAhead(batch: Pending[], goesAhead: (item: Pending) => boolean): void {
    const ahead: Pending[] = [];
    const rest: Pending[] = [];
    for (const item of batch) (goesAhead(item) ? ahead : rest).push(item);
    this.pending = rest;
    let urgent = false;
    for (const entry of this.commitBatch(ahead) ?? []) {
      if (entry.item.durable) {
        urgent ||= entry.item.urgent;
        this.unsynced.push(entry);
      } else if (entry.ok) entry.item.resolve(entry.value);
      else entry.item.reject(entry.value as Error);
    }
    // urgent changes: an fsync beside the one under way. Claims and `ahead` changes wait for the
    // next fsync to cover them (the one under way starts it when it ends, see sync()).
    if (urgent) this.sync();
  }

  /**
   * Runs and commits the front of `batch` (all of it, or as much as `sliceMs` of work allows, at
   * least MIN_SLICE_OPS operations) and takes what it ran off the array; when the commit itself fails,
   * every operation it ran is rejected (undefined).
   */
  private commitBatch(batch: Pending[], sliceMs = Infinity): Committed[] | undefined {
    const started = performance.now();
    let ran = batch.length;
    try {
      const deadline = started + sliceMs;
      const first = this.execute(batch, MIN_SLICE_OPS, deadline);
      // again with savepoints: at least what the failed attempt ran, and MIN_SLICE_OPS as it did
      // (a small batch with a failing operation stays one transaction, however slow the moment)
      const done = typeof first === 'number' ? this.execute(batch, Math.max(first, MIN_SLICE_OPS), deadline, true) as Committed[] : first;
      ran = done.length;
      this.commits++;
      this.committedSeq++;
      return done;
    } catch (err) {
      if (this.db.isTransaction) this.tx.rollback.run();
      this.onRollback();
      for (let i = 0; i < ran; i++) batch[i].reject(err as Error);
      return undefined;
    } finally {
      batch.splice(0, ran);
      this.commitTimes.observe(performance.now() - started);
    }
  }

  /**
   * Runs operations from the front of the batch in one transaction, at least `atLeast`, then up
   * to `deadline`, and commits. Operations rarely fail, so they first run side by side; if one
   * throws, the transaction is rolled back and the count of operations up to and including the
   * failing one returned, to run again `isolated`: a savepoint per operation, so that a failing
   * one is undone alone.
   */
  private execute(batch: Pending[], atLeast: number, deadline: number, isolated = false): Committed[] | number {
    const { begin, commit, rollback, savepoint, release, undo } = this.tx;
    const seq = this.committedSeq + 1;
    const done: Committed[] = [];
    begin.run();
    for (let i = 0; i < batch.length; i++) {
      const item = batch[i];
      if (!isolated) {
        try {
          done.push({ item, ok: true, value: item.op(), seq });
        } catch {
          rollback.run();
          this.onRollback();
          return i + 1;
        }
      } else {
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
      if (i + 1 >= atLeast && performance.now() >= deadline) break;
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
    fdatasync(this.walFd, (err) => {
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
    return this.pending.length + this.slicing.length + this.unsynced.length;
  }

  /**
   * Resolves once fewer than `limit` operations wait for the disk. Producers that do not wait
   * for each of their own writes (the scheduler's outcomes) wait here, so that a burst of work
   * (a whole backlog deferred at once) is paced by the disk instead of piling up in memory.
   */
  async whenBelow(limit: number): Promise<void> {
    while (this.backlog >= limit) await new Promise((resolve) => setTimeout(resolve, 2));
  }

  /**
   * Flushes and waits until everything queued so far is durable, then takes nothing more: a
   * change that comes later (a delivery's outcome after the stop) is refused with
   * SpoolClosedError instead of running on a closed database; what it would have recorded is
   * recovered at the next start (claimed recipients go back to the queue, delivered ones are in
   * the delivered journal).
   */
  async close(): Promise<void> {
    await this.drain();
    this.closed = true;
  }

  /** Flushes and waits until everything queued so far is durable. */
  async drain(): Promise<void> {
    while (this.pending.length || this.slicing.length || this.unsynced.length || this.syncsInFlight) {
      this.flush();
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }
}

/** A change offered to the spool after it was closed (see GroupCommit.close). */
export class SpoolClosedError extends Error {
  readonly code = 'ESPOOLCLOSED';
  constructor() {
    super('the spool is closed');
  }
}

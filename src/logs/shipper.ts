// Ships a node's records from its local store (the outbox) to the central PostgreSQL store, in the
// store worker, never on the relay's thread: SMTP and delivery neither wait for PostgreSQL nor
// notice when it is down or slow. Batches of up to `log.postgres.batch` rows go in seq order, each
// with the node's shipped mark in the same transaction (postgres-store.ts), and the mark read back
// from PostgreSQL at every (re)connection is where shipping resumes: a batch interrupted by a
// failure is sent again whole and stored once. While PostgreSQL is away the outbox grows on the
// node's disk, bounded by the local store's limits (log.store.maxSize and retention): rows
// trimmed before they were shipped are counted and logged (`logs-outbox-dropped`), never silently.
// Once a connection works again, partitions are checked (made ahead, old ones dropped) and the
// backlog goes out as fast as PostgreSQL takes it.
// May touch: the local store (read), the PostgreSQL store (write), notes to the relay's log.
import type { PostgresLogConfig } from '../config/logs.ts';
import type { LocalStore } from './local-store.ts';
import type { PostgresStore } from './postgres-store.ts';

const MAINTAIN_EVERY_MS = 3_600_000;
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5000;
/** Caught up: look again after this long even without news of new rows. */
const IDLE_MS = 1000;
/**
 * After a batch that was not full, rows gather this long before the next one goes: fewer, larger
 * transactions (each costs PostgreSQL a commit and the node a round trip) for a delay nobody
 * waits on (live followers get records from the nodes, not from the store).
 */
const GATHER_MS = 1000;

export interface ShipperStatus {
  state: 'starting' | 'up' | 'down';
  shippedSeq: number;
  pending: number;
  shipped: number;
  batches: number;
  droppedUnshipped: number;
  lastError?: string;
  downSince?: string;
}

export interface ShipperParts {
  local: LocalStore;
  pg: PostgresStore;
  node: string;
  config: PostgresLogConfig;
  /** An operational event for the relay's log (postgres down/up, partitions dropped, outbox trimmed). */
  notify: (event: string, fields: Record<string, unknown>) => void;
}

export class Shipper {
  private readonly local: LocalStore;
  private readonly pg: PostgresStore;
  private readonly node: string;
  private readonly config: PostgresLogConfig;
  private readonly notify: ShipperParts['notify'];
  state: ShipperStatus['state'] = 'starting';
  private shippedSeq = 0;
  private shipped = 0;
  private batches = 0;
  private droppedUnshipped = 0;
  private lastError?: string;
  private downSince?: number;
  private nextMaintain = 0;
  private wake?: () => void;
  private kicked = false;
  /** False while waiting a fixed time (to try PostgreSQL again, to gather a batch): new rows do not cut it short. */
  private wakeOnKick = true;
  private stopAt?: number;
  private running?: Promise<void>;

  constructor(parts: ShipperParts) {
    this.local = parts.local;
    this.pg = parts.pg;
    this.node = parts.node;
    this.config = parts.config;
    this.notify = parts.notify;
  }

  start(): void {
    this.running = this.run();
  }

  /** New rows are in the outbox. */
  kick(): void {
    this.kicked = true;
    if (this.wakeOnKick) this.wake?.();
  }

  /** Rows `from`..`to` left the local store (retention): those not shipped yet are lost to the central store. */
  trimmed(from: number, to: number): void {
    const lost = Math.max(0, to - Math.max(from - 1, this.shippedSeq));
    if (lost === 0) return;
    this.droppedUnshipped += lost;
    this.notify('logs-outbox-dropped', { records: lost, note: 'the local store reached log.store.maxSize or retention before PostgreSQL took them' });
  }

  /** Ships what is pending for at most `graceMs` (while PostgreSQL answers), then stops. */
  async stop(graceMs: number): Promise<void> {
    this.stopAt = Date.now() + graceMs;
    this.wake?.();
    await this.running;
  }

  status(): ShipperStatus {
    return {
      state: this.state, shippedSeq: this.shippedSeq, pending: this.local.pendingAfter(this.shippedSeq), shipped: this.shipped,
      batches: this.batches, droppedUnshipped: this.droppedUnshipped, lastError: this.lastError,
      downSince: this.downSince ? new Date(this.downSince).toISOString() : undefined,
    };
  }

  /** Waits `ms`, or less when new rows come (at once if they came while a batch was under way), unless `fixed`. */
  private pause(ms: number, fixed = false): Promise<void> {
    this.wakeOnKick = !fixed;
    if (this.kicked && !fixed) {
      this.kicked = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.wake?.(), ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        this.kicked = false;
        resolve();
      };
    });
  }

  private stopping(): boolean {
    return this.stopAt !== undefined && (Date.now() >= this.stopAt || this.state !== 'up' || this.local.pendingAfter(this.shippedSeq) === 0);
  }

  private async run(): Promise<void> {
    let retry = RETRY_MIN_MS;
    while (!this.stopping()) {
      try {
        if (this.state !== 'up') await this.connect();
        if (Date.now() >= this.nextMaintain) await this.maintain();
        const rows = this.local.after(this.shippedSeq, this.config.batch);
        if (rows.length === 0) {
          await this.pause(IDLE_MS);
          continue;
        }
        const cutoff = Date.now() - this.config.retention;
        const keep = (rows[0][1] as number) >= cutoff ? rows : rows.filter((r) => (r[1] as number) >= cutoff); // older than retention: its partition is gone
        const mark = rows[rows.length - 1][0] as number;
        await this.pg.ship(this.node, this.local.storeId, keep, mark);
        this.shippedSeq = mark;
        this.shipped += keep.length;
        this.batches++;
        retry = RETRY_MIN_MS;
        if (rows.length < this.config.batch && this.stopAt === undefined) await this.pause(GATHER_MS, true);
      } catch (err) {
        this.down(err as Error);
        if (this.stopAt !== undefined) break;
        await this.pause(retry, true);
        retry = Math.min(retry * 1.5, RETRY_MAX_MS);
      }
    }
  }

  private async connect(): Promise<void> {
    await this.pg.ensureSchema();
    // PostgreSQL's mark is the truth: a batch whose commit we never heard of is not sent twice
    this.shippedSeq = await this.pg.shippedMark(this.node, this.local.storeId);
    this.nextMaintain = 0;
    const wasDown = this.state === 'down';
    this.state = 'up';
    this.lastError = undefined;
    this.notify(wasDown ? 'logs-postgres-up' : 'logs-postgres-connected', {
      pending: this.local.pendingAfter(this.shippedSeq), downMs: this.downSince ? Date.now() - this.downSince : undefined,
    });
    this.downSince = undefined;
  }

  private async maintain(): Promise<void> {
    const dropped = await this.pg.maintain(Date.now(), this.config.partitionsAhead, this.config.retention);
    this.nextMaintain = Date.now() + MAINTAIN_EVERY_MS;
    if (dropped.length) this.notify('logs-partitions-dropped', { days: dropped });
  }

  private down(err: Error): void {
    this.lastError = err.message;
    if (this.state === 'down') return;
    this.state = 'down';
    this.downSince = Date.now();
    this.notify('logs-postgres-down', { error: err.message, pending: this.local.pendingAfter(this.shippedSeq), note: 'records wait in the local store' });
  }
}

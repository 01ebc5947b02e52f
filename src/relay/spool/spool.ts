// The durable spool: messages and per-recipient delivery state in SQLite (node:sqlite, WAL mode,
// synchronous=FULL). All changes go through the group commit; reads are synchronous and cheap.
// The scheduler claims work in bounded batches and bodies are read only when a connection is
// ready to send them; messages accepted lately are also kept in a bounded memory cache for their
// first attempt (recent-messages.ts). A receiver's 250 is written to the delivered journal the
// moment it is handled, ahead of its commit, and finished from there at the next start if a kill
// came first (delivered-journal.ts).
import { SuppressedTable } from './suppressed.ts';
import { SuspendedTable } from './suspended.ts';
import { GreylistTable } from './greylist.ts';
import { DeliveredJournal } from './delivered-journal.ts';
import { closeSync, fstatSync, fsyncSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { WorkerCalls } from '../../util/worker-calls.ts';
import type { QueueSummary } from './admin.ts';
import { GroupCommit } from './group-commit.ts';
export { SpoolClosedError } from './group-commit.ts';
import { RecentMessages } from './recent-messages.ts';
import { ADDED_COLUMNS, PRAGMAS, SCHEMA, STATE_ACTIVE, STATE_WAITING } from './schema.ts';
import type { SummaryRequest } from './summary-worker.ts';

export interface NewMessage {
  lane: string;
  sender: string;
  recipients: string[];
  client: string;
  receivedAt: number;
  body: Buffer;
  /** Whose it is, for the delivery logs (src/logs/tenants.ts). */
  tenant?: string;
}

/** One recipient handed to delivery. */
export interface ClaimedRecipient {
  id: number;
  messageId: number;
  address: string;
  domain: string;
  attempts: number;
}

export interface StoredMessage {
  id: number;
  lane: string;
  sender: string;
  receivedAt: number;
  body: Buffer;
  tenant?: string;
}

/** Memory for bodies of messages accepted lately (a few seconds of intake at full speed). */
const RECENT_BYTES = 32 * 1024 * 1024;

export interface LaneCounts { queued: number; deferred: number; active: number }

export function queueId(id: number): string {
  return id.toString(16).toUpperCase().padStart(8, '0');
}

export function parseQueueId(text: string): number | undefined {
  return /^[0-9A-Fa-f]{1,13}$/.test(text) ? parseInt(text, 16) : undefined;
}

export function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}

/** Commit options of the highest lane's inserts, made once (see group-commit.ts). */
const URGENT = { urgent: true };
/** Commit options of a delivered recipient's finish: at once, so that a kill -9 soon after its receiver's 250 does not send it again (group-commit.ts). */
const AHEAD = { ahead: true };

export class Spool {
  readonly db: DatabaseSync;
  readonly commits: GroupCommit;
  /** Recipients per lane and state, kept in step with every change (no COUNT(*) on the hot path). */
  readonly counts = new Map<string, LaneCounts>();
  messages = 0;
  /** Recipients that were in a delivery attempt when the previous process died (possible duplicates). */
  readonly recoveredActive: number;
  /** Recipients in a delivery attempt when the previous process died whose receiver's 250 the delivered journal had: finished at start, not sent again. */
  readonly recoveredDelivered: number;
  /** Receivers' 250s written down before their commit (delivered-journal.ts). */
  private readonly journal: DeliveredJournal;
  /** The highest-priority lane, whose new messages commit ahead of others (group-commit.ts). */
  private readonly urgentLane: string | undefined;
  /** The suppression list and the operators' suspensions, kept beside the queue. */
  readonly suppressed: SuppressedTable;
  readonly suspensions: SuspendedTable;
  /** The inbound MX's greylisting state (a single node's; a cluster keeps it in Redis). */
  readonly greylist: GreylistTable;
  private readonly sql: Record<string, StatementSync>;
  private readonly recent = new RecentMessages(RECENT_BYTES);

  private readonly walFd: number;
  private readonly checkpointer: Worker;
  private readonly file: string;
  private summaries?: WorkerCalls<SummaryRequest, QueueSummary>;
  /** One summary at a time per `top`: dashboards polling a large queue share the one running. */
  private readonly summaryRunning = new Map<number, Promise<QueueSummary>>();

  /** `lanes`: the lane names in priority order. */
  constructor(dir: string, options: { commitBatch: number; commitInterval: number; lanes: string[] }) {
    mkdirSync(dir, { recursive: true });
    const file = (this.file = join(dir, 'spool.sqlite'));
    this.db = new DatabaseSync(file);
    for (const pragma of PRAGMAS) this.db.exec(pragma);
    this.db.exec(SCHEMA);
    for (const { table, column, type } of ADDED_COLUMNS) {
      const has = this.db.prepare(`SELECT 1 FROM pragma_table_info('${table}') WHERE name = ?`).get(column);
      if (!has) this.db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
    }
    // The WAL exists once something was written: record the start, then open the WAL for the
    // group commit's fsyncs and make its directory entry durable once.
    this.db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('started', ?)").run(Date.now());
    this.walFd = openSync(`${file}-wal`, 'r');
    const dirFd = openSync(dir, 'r');
    fsyncSync(dirFd);
    closeSync(dirFd);
    this.checkpointer = new Worker(new URL('./checkpointer.ts', import.meta.url), { workerData: { file, everyMs: 100 } });
    this.checkpointer.unref();
    this.commits = new GroupCommit(this.db, this.walFd, options.commitBatch, options.commitInterval);
    const p = (sql: string) => this.db.prepare(sql);
    this.sql = {
      insertMessage: p('INSERT INTO messages (lane, sender, received_at, client, size, remaining, body, tenant) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      insertRecipient: p('INSERT INTO recipients (message_id, address, domain, lane, next_at) VALUES (?, ?, ?, ?, ?)'),
      claim: p(`UPDATE recipients SET state = ${STATE_ACTIVE} WHERE id IN (
          SELECT id FROM recipients WHERE lane = ? AND state = ${STATE_WAITING} AND next_at <= ? ORDER BY next_at LIMIT ?)
        RETURNING id, message_id, address, domain, attempts`),
      finishRecipient: p('DELETE FROM recipients WHERE id = ?'),
      decrementMessage: p('UPDATE messages SET remaining = remaining - 1 WHERE id = ?'),
      deleteLast: p('DELETE FROM messages WHERE id = ? AND remaining <= 1'),
      defer: p(`UPDATE recipients SET state = ${STATE_WAITING}, attempts = attempts + 1, next_at = ?, last_reply = ? WHERE id = ?`),
      release: p(`UPDATE recipients SET state = ${STATE_WAITING} WHERE id = ?`),
      messageMeta: p('SELECT sender, received_at, tenant FROM messages WHERE id = ?'),
      readMessage: p('SELECT id, lane, sender, received_at, body, tenant FROM messages WHERE id = ?'),
      oldest: p('SELECT received_at FROM messages WHERE id = (SELECT min(id) FROM messages WHERE lane = ?)'),
      nextDue: p(`SELECT min(next_at) AS next_at FROM recipients WHERE lane = ? AND state = ${STATE_WAITING}`),
    };
    this.urgentLane = options.lanes[0];
    this.suppressed = new SuppressedTable(this.db, this.commits);
    this.suspensions = new SuspendedTable(this.db, this.commits);
    this.greylist = new GreylistTable(this.db, this.commits);
    for (const lane of options.lanes) this.counts.set(lane, { queued: 0, deferred: 0, active: 0 });
    this.commits.onRollback = () => this.recount();
    this.journal = new DeliveredJournal(dir);
    this.recoveredDelivered = this.finishJournaled();
    this.recoveredActive = Number(this.db.prepare(`UPDATE recipients SET state = ${STATE_WAITING} WHERE state = ${STATE_ACTIVE}`).run().changes);
    this.recount();
  }

  /**
   * Finishes the recipients whose receiver's 250 the previous process wrote down but did not
   * commit (delivered-journal.ts), makes that durable, then empties the journal. A record whose
   * recipient is gone already (its finish was committed) changes nothing.
   */
  private finishJournaled(): number {
    const records = this.journal.leftOver();
    let finished = 0;
    if (records.length > 0) {
      const finish = this.db.prepare('DELETE FROM recipients WHERE id = ? AND message_id = ?');
      this.db.exec('BEGIN IMMEDIATE');
      for (const { messageId, recipientId } of records) {
        if (finish.run(recipientId, messageId).changes === 0) continue;
        finished++;
        if (!this.sql.deleteLast.run(messageId).changes) this.sql.decrementMessage.run(messageId);
      }
      this.db.exec('COMMIT');
      fsyncSync(this.walFd);
    }
    this.journal.clear();
    return finished;
  }

  private recount(): void {
    for (const counts of this.counts.values()) Object.assign(counts, { queued: 0, deferred: 0, active: 0 });
    const rows = this.db.prepare(`SELECT lane, attempts > 0 AS retried, count(*) AS n FROM recipients GROUP BY lane, retried`).all();
    for (const row of rows) {
      const counts = this.laneCounts(String(row.lane));
      if (row.retried) counts.deferred += Number(row.n);
      else counts.queued += Number(row.n);
    }
    this.messages = Number(this.db.prepare('SELECT count(*) AS n FROM messages').get()!.n);
  }

  private laneCounts(lane: string): LaneCounts {
    let counts = this.counts.get(lane);
    if (!counts) this.counts.set(lane, (counts = { queued: 0, deferred: 0, active: 0 }));
    return counts;
  }

  /** Stores a message with its recipients; resolves with its id once durably committed. */
  insert(message: NewMessage): Promise<number> {
    // the highest lane's messages commit ahead of the gathered bulk (group-commit.ts)
    return this.commits.run(() => {
      const { lastInsertRowid } = this.sql.insertMessage.run(message.lane, message.sender, message.receivedAt, message.client,
        message.body.length, message.recipients.length, message.body, message.tenant ?? null);
      const id = Number(lastInsertRowid);
      for (const address of message.recipients) {
        this.sql.insertRecipient.run(id, address, domainOf(address), message.lane, message.receivedAt);
      }
      this.messages++;
      this.laneCounts(message.lane).queued += message.recipients.length;
      return id;
    }, message.lane === this.urgentLane ? URGENT : undefined).then((id) => {
      // only once committed: a rolled-back insert's id may be given out again
      this.recent.add({ id, lane: message.lane, sender: message.sender, receivedAt: message.receivedAt, body: message.body, tenant: message.tenant });
      return id;
    });
  }

  /** Marks up to `limit` due recipients of a lane as active and returns them, oldest due first. */
  claim(lane: string, now: number, limit: number): Promise<ClaimedRecipient[]> {
    return this.commits.run(() => {
      const rows = this.sql.claim.all(lane, now, limit);
      const counts = this.laneCounts(lane);
      const claimed = rows.map((row) => {
        const attempts = Number(row.attempts);
        if (attempts > 0) counts.deferred--;
        else counts.queued--;
        counts.active++;
        return { id: Number(row.id), messageId: Number(row.message_id), address: String(row.address), domain: String(row.domain), attempts };
      });
      return claimed.sort((a, b) => a.id - b.id);
    }, { durable: false });
  }

  /**
   * Delivered, failed or expired: the recipient leaves the spool, and the message with its last
   * recipient. `delivered` (the receiver answered 250): committed at once, ahead of gathered
   * changes (group-commit.ts). A failure's finish gathers, so that it mostly commits with the
   * DSN insert made for it rather than ahead of it.
   */
  finish(lane: string, recipients: ClaimedRecipient[], { delivered = false } = {}): Promise<void> {
    // a receiver's 250 is written down at once, before its commit (delivered-journal.ts)
    const journaled = delivered ? this.journal.record(recipients) : undefined;
    const done = this.commits.run(() => {
      for (const r of recipients) {
        this.sql.finishRecipient.run(r.id);
        this.recipientGone(r.messageId);
      }
      this.laneCounts(lane).active -= recipients.length;
    }, delivered ? AHEAD : undefined);
    if (journaled !== undefined) {
      const settled = () => this.journal.settled(journaled);
      done.then(settled, settled);
    }
    return done;
  }

  /** A temporary failure: the recipient waits until `nextAt` and counts one more attempt. */
  defer(lane: string, recipients: ClaimedRecipient[], nextAt: number, reply: string): Promise<void> {
    return this.commits.run(() => {
      for (const r of recipients) this.sql.defer.run(nextAt, reply, r.id);
      const counts = this.laneCounts(lane);
      counts.active -= recipients.length;
      counts.deferred += recipients.length;
    });
  }

  /** Hands claimed recipients back unattempted (shutdown, or a destination paused before trying). */
  release(lane: string, recipients: ClaimedRecipient[]): Promise<void> {
    return this.commits.run(() => {
      for (const r of recipients) this.sql.release.run(r.id);
      const counts = this.laneCounts(lane);
      counts.active -= recipients.length;
      for (const r of recipients) {
        if (r.attempts > 0) counts.deferred++;
        else counts.queued++;
      }
    });
  }

  /**
   * One recipient of a message left the spool (inside a commit operation): the message goes with
   * its last, and its cached copy with it. The common case, the last recipient, is one statement.
   */
  recipientGone(messageId: number): void {
    if (this.sql.deleteLast.run(messageId).changes) {
      this.messages--;
      this.recent.delete(messageId);
    } else {
      this.sql.decrementMessage.run(messageId);
    }
  }

  readMessage(id: number): StoredMessage | undefined {
    const recent = this.recent.get(id);
    if (recent) return recent;
    const row = this.sql.readMessage.get(id);
    if (!row) return undefined;
    const body = row.body as Uint8Array;
    return {
      id, lane: String(row.lane), sender: String(row.sender), receivedAt: Number(row.received_at),
      body: Buffer.from(body.buffer, body.byteOffset, body.byteLength), tenant: (row.tenant as string | null) ?? undefined,
    };
  }

  /** Sender, arrival time and tenant without the body (for outcomes and logs). */
  messageMeta(id: number): { sender: string; receivedAt: number; tenant?: string } | undefined {
    const row = this.sql.messageMeta.get(id);
    return row ? { sender: String(row.sender), receivedAt: Number(row.received_at), tenant: (row.tenant as string | null) ?? undefined } : undefined;
  }

  /** Age in seconds of the oldest unfinished message of a lane (0 when empty). */
  oldestAgeSeconds(lane: string, now: number): number {
    const row = this.sql.oldest.get(lane);
    return row ? Math.max(0, Math.round((now - Number(row.received_at)) / 1000)) : 0;
  }

  /** When the lane's next waiting recipient becomes due (undefined when nothing waits). */
  nextDue(lane: string): number | undefined {
    const row = this.sql.nextDue.get(lane);
    return row && row.next_at !== null ? Number(row.next_at) : undefined;
  }

  /** The queue summary by lane, domain and age (admin.ts), computed in a worker thread. */
  summary(now: number, top: number): Promise<QueueSummary> {
    const running = this.summaryRunning.get(top);
    if (running) return running;
    if (!this.summaries) {
      const worker = new Worker(new URL('./summary-worker.ts', import.meta.url), { workerData: { file: this.file } });
      worker.unref();
      const calls: WorkerCalls<SummaryRequest, QueueSummary> = new WorkerCalls(worker, {
        name: 'queue summary worker',
        onFail: () => { if (this.summaries === calls) this.summaries = undefined; }, // the next request starts a new one
      });
      this.summaries = calls;
    }
    const result = this.summaries.call({ now, top }).finally(() => this.summaryRunning.delete(top));
    this.summaryRunning.set(top, result);
    return result;
  }

  /** Size of the WAL file: it is never cut back while the spool is open (schema.ts). */
  get walBytes(): number {
    return fstatSync(this.walFd).size;
  }

  /** Returns up to `pages` free pages to the file system; called now and then, never all at once. */
  reclaim(pages: number): number {
    const free = Number(this.db.prepare('PRAGMA freelist_count').get()!.freelist_count);
    if (free > 0) this.db.exec(`PRAGMA incremental_vacuum(${Math.min(free, pages)})`);
    return free;
  }

  /** Waits for pending changes to be durable, then closes (the last close checkpoints the WAL). */
  async close(): Promise<void> {
    await this.commits.close();
    await this.checkpointer.terminate();
    await this.summaries?.worker.terminate();
    closeSync(this.walFd);
    this.journal.close();
    this.db.close();
  }
}

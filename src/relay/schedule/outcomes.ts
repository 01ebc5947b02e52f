// What becomes of a delivery attempt (Postfix's qmgr_deliver/qmgr_defer/qmgr_bounce in one place):
// the spool change (finish, defer on the lane's retry schedule or expire, release), the metrics,
// the log line, and for permanent failures the bounce handling (class, suppression, DSN). Each
// settled recipient is signalled to the scheduler, which claims more for the lane.
// May touch: the spool (outcome writes), metrics, the log, bounce handling, lane signals.
import type { AttemptInfo, Job, OutcomeSink } from '../deliver/job.ts';
import type { Bounces } from '../bounce/handler.ts';
import type { EventLog } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { queueId, SpoolClosedError, type ClaimedRecipient, type Spool } from '../spool/spool.ts';
import type { LaneSignals } from './lane-signals.ts';
import { nextAttempt } from './retry.ts';

/** A delivered recipient's finish commits at once (spool.finish). */
const DELIVERED = { delivered: true };

export interface OutcomeParts { spool: Spool; metrics: Metrics; log: EventLog; bounces: Bounces; signals: LaneSignals }

export class Outcomes implements OutcomeSink {
  private readonly spool: Spool;
  private readonly metrics: Metrics;
  private readonly log: EventLog;
  private readonly bounces: Bounces;
  private readonly signals: LaneSignals;

  constructor(parts: OutcomeParts) {
    this.spool = parts.spool;
    this.metrics = parts.metrics;
    this.log = parts.log;
    this.bounces = parts.bounces;
    this.signals = parts.signals;
  }

  /** Suppressed recipients fail at once, without an attempt and without a DSN; returns the rest of the job. */
  screen(job: Job): Job {
    const held = this.bounces.suppressed(job);
    if (held.length === 0) return job;
    const now = Date.now();
    const meta = this.metaOf(job);
    const rs = held.map((h) => h.recipient);
    this.persist(() => this.spool.finish(job.lane.name, rs));
    this.metrics.count(job.lane.name, 'failed', rs.length);
    for (const h of held) {
      this.bounces.classify(job.lane.name, 'failed', h.reply);
      this.event('failed', job, h.recipient, h.reply, {}, meta, now, { class: 'bad-mailbox', suppressed: true });
    }
    this.signals.settled(job.lane.name, rs.length);
    return { ...job, recipients: job.recipients.filter((r) => !rs.includes(r)) };
  }

  private metaOf(job: Job): Job['meta'] {
    return (job.meta ??= this.spool.messageMeta(job.messageId));
  }

  private event(name: string, job: Job, r: ClaimedRecipient, reply: string, attempt: AttemptInfo, meta: Job['meta'], now: number, extra: Record<string, unknown> = {}): void {
    // the delivery-log record (src/logs/record.ts): these fields are its columns
    this.log.emit(name, {
      id: queueId(job.messageId), lane: job.lane.name, tenant: meta?.tenant, from: meta?.sender, rcpt: r.address, domain: job.domain,
      mx: attempt.mx, ip: attempt.address, egress: attempt.egress, profile: attempt.profile, tls: attempt.tls, reply, attempt: r.attempts + 1,
      queuedMs: meta ? now - meta.receivedAt : undefined,
      deliveryMs: attempt.startedAt ? now - attempt.startedAt : undefined, ...extra,
    });
  }

  delivered(job: Job, recipients: ClaimedRecipient[], reply: string, attempt: AttemptInfo): void {
    const now = Date.now();
    const meta = this.metaOf(job);
    this.persist(() => this.spool.finish(job.lane.name, recipients, DELIVERED));
    const lane = this.metrics.lane(job.lane.name);
    for (const r of recipients) {
      lane.counters.delivered++;
      if (meta) lane.latency.observe(now - meta.receivedAt);
      this.event('delivered', job, r, reply, attempt, meta, now, job.notNow ? { notNow: job.notNow } : {});
    }
    this.signals.settled(job.lane.name, recipients.length);
  }

  failed(job: Job, recipients: ClaimedRecipient[], reply: string, attempt: AttemptInfo): void {
    const now = Date.now();
    const meta = this.metaOf(job);
    const cls = this.bounces.classify(job.lane.name, 'failed', reply, recipients.length);
    this.bounces.permanent(job, recipients, reply, attempt, cls, 'failed'); // before finish: the DSN reads the message
    this.persist(() => this.spool.finish(job.lane.name, recipients));
    this.metrics.count(job.lane.name, 'failed', recipients.length);
    for (const r of recipients) this.event('failed', job, r, reply, attempt, meta, now, { class: cls });
    this.signals.settled(job.lane.name, recipients.length);
  }

  deferred(job: Job, recipients: ClaimedRecipient[], reply: string, attempt: AttemptInfo, notBefore = 0): void {
    const now = Date.now();
    const meta = this.metaOf(job);
    for (const r of recipients) {
      const decision = nextAttempt(job.lane, r.attempts + 1, meta?.receivedAt ?? now, now);
      if (decision.expired) {
        const cls = this.bounces.classify(job.lane.name, 'expired', reply);
        this.bounces.permanent(job, [r], reply, attempt, cls, 'expired');
        this.persist(() => this.spool.finish(job.lane.name, [r]));
        this.metrics.count(job.lane.name, 'expired');
        this.event('expired', job, r, reply, attempt, meta, now, { class: cls });
      } else {
        const nextAt = Math.max(decision.nextAt, notBefore);
        this.persist(() => this.spool.defer(job.lane.name, [r], nextAt, reply));
        this.metrics.count(job.lane.name, 'deferred');
        const cls = this.bounces.classify(job.lane.name, 'deferred', reply);
        this.event('deferred', job, r, reply, attempt, meta, now, { nextAttempt: new Date(nextAt).toISOString(), class: cls });
      }
    }
    this.signals.settled(job.lane.name, recipients.length);
  }

  released(job: Job): void {
    this.persist(() => this.spool.release(job.lane.name, job.recipients));
    this.signals.settled(job.lane.name, job.recipients.length);
  }

  vanished(job: Job): void {
    this.persist(() => this.spool.finish(job.lane.name, job.recipients));
    this.signals.settled(job.lane.name, job.recipients.length);
  }

  /**
   * Outcome writes are fire-and-forget for delivery, but must not get lost: if a commit fails
   * (disk trouble), the same change is tried again a second later. Each change is idempotent.
   */
  private persist(write: () => Promise<unknown>, tries = 0): void {
    write().catch((err: Error) => {
      if (err instanceof SpoolClosedError) return; // stopping: the next start recovers it (group-commit.ts)
      this.log.emit('spool-error', { error: err.message, retry: tries < 60 });
      if (tries < 60) setTimeout(() => this.persist(write, tries + 1), 1000).unref();
    });
  }
}

// The lanes' scheduler. Each lane claims its due recipients from the spool in bounded batches
// (at most `window` in flight per lane, so a million queued messages never become a million
// objects), groups them into jobs per message and domain, and hands them to the router. Outcomes
// come back here and become spool changes, metrics and log lines. Lanes never share a queue: a
// transactional message is claimed by its own lane whatever bulk has waiting.
import type { LaneConfig, RelayConfig } from '../../config/types.ts';
import type { AttemptInfo, Job, OutcomeSink } from '../deliver/job.ts';
import type { Router } from '../deliver/router.ts';
import type { EventLog } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { queueId, type ClaimedRecipient, type Spool } from '../spool/spool.ts';
import { nextAttempt } from './retry.ts';
import type { Bounces } from '../bounce/handler.ts';

interface LaneState {
  lane: LaneConfig;
  window: number;
  inFlight: number;
  refilling: boolean;
  timer?: NodeJS.Timeout;
}

/** Spool writes waiting for the disk above which lanes stop claiming more work for a moment. */
const WRITE_BACKLOG = 4_000;

/** The longest a lane sleeps without looking for due work (deferred mail coming due). */
const MAX_SLEEP_MS = 1000;

export class Scheduler implements OutcomeSink {
  private readonly lanes = new Map<string, LaneState>();
  private readonly spool: Spool;
  private readonly metrics: Metrics;
  private readonly log: EventLog;
  router!: Router;
  /** Failure classes, DSNs and the suppression list (bounce/handler.ts). */
  bounces?: Bounces;
  private stopping = false;

  constructor(config: RelayConfig, spool: Spool, metrics: Metrics, log: EventLog) {
    this.spool = spool;
    this.metrics = metrics;
    this.log = log;
    for (const lane of config.lanes) {
      this.lanes.set(lane.name, { lane, window: Math.max(200, lane.concurrency * 20), inFlight: 0, refilling: false });
    }
  }

  start(): void {
    for (const state of this.lanes.values()) void this.refill(state);
  }

  /** New mail for a lane: look for due work now rather than at the next timer. */
  wake(lane: string): void {
    const state = this.lanes.get(lane);
    if (state) void this.refill(state);
  }

  wakeAll(): void {
    for (const state of this.lanes.values()) void this.refill(state);
  }

  private async refill(state: LaneState): Promise<void> {
    if (this.stopping || state.refilling || state.inFlight >= state.window / 2) return;
    state.refilling = true;
    clearTimeout(state.timer);
    // pace claiming by what the disk and the log can absorb (bounded memory in bursts)
    await this.spool.commits.whenBelow(WRITE_BACKLOG);
    await this.log.whenWritable();
    const want = state.window - state.inFlight;
    let claimed: ClaimedRecipient[] = [];
    try {
      claimed = await this.spool.claim(state.lane.name, Date.now(), want);
    } catch (err) {
      this.log.emit('spool-error', { lane: state.lane.name, error: (err as Error).message });
    }
    state.refilling = false;
    if (this.stopping) {
      if (claimed.length) this.persist(() => this.spool.release(state.lane.name, claimed));
      return;
    }
    state.inFlight += claimed.length;
    for (const job of this.jobs(state.lane, claimed)) {
      if (this.bounces) this.screen(job);
      if (job.recipients.length) this.router.submit(job);
    }
    if (claimed.length === want) return; // more is due: outcomes call refill again as they free the window
    const due = this.spool.nextDue(state.lane.name);
    const sleep = due === undefined ? MAX_SLEEP_MS : Math.min(MAX_SLEEP_MS, Math.max(10, due - Date.now()));
    state.timer = setTimeout(() => void this.refill(state), sleep);
  }

  /** Recipients of one message at one domain travel together in one SMTP transaction. */
  private jobs(lane: LaneConfig, claimed: ClaimedRecipient[]): Job[] {
    const jobs = new Map<string, Job>();
    for (const r of claimed) {
      const key = `${r.messageId} ${r.domain}`;
      const job = jobs.get(key);
      if (job) job.recipients.push(r);
      else jobs.set(key, { lane, messageId: r.messageId, domain: r.domain, recipients: [r] });
    }
    return [...jobs.values()];
  }

  /** Suppressed recipients fail at once, without an attempt and without a DSN. */
  private screen(job: Job): void {
    const held = this.bounces!.suppressed(job);
    if (held.length === 0) return;
    const now = Date.now();
    const meta = this.metaOf(job);
    const rs = held.map((h) => h.recipient);
    job.recipients = job.recipients.filter((r) => !rs.includes(r));
    this.persist(() => this.spool.finish(job.lane.name, rs));
    this.metrics.count(job.lane.name, 'failed', rs.length);
    for (const h of held) {
      this.bounces!.classify(job.lane.name, 'failed', h.reply);
      this.event('failed', job, h.recipient, h.reply, {}, meta, now, { class: 'bad-mailbox', suppressed: true });
    }
    this.settled(job, rs.length);
  }

  private metaOf(job: Job): Job['meta'] {
    return (job.meta ??= this.spool.messageMeta(job.messageId));
  }

  private settled(job: Job, n: number): void {
    const state = this.lanes.get(job.lane.name)!;
    state.inFlight -= n;
    if (state.inFlight < state.window / 2) void this.refill(state);
  }

  private event(name: string, job: Job, r: ClaimedRecipient, reply: string, attempt: AttemptInfo, meta: { sender: string; receivedAt: number } | undefined, now: number, extra: Record<string, unknown> = {}): void {
    this.log.emit(name, {
      id: queueId(job.messageId), lane: job.lane.name, from: meta?.sender, rcpt: r.address, domain: job.domain,
      mx: attempt.mx, tls: attempt.tls, reply, attempt: r.attempts + 1,
      queuedMs: meta ? now - meta.receivedAt : undefined,
      deliveryMs: attempt.startedAt ? now - attempt.startedAt : undefined, ...extra,
    });
  }

  delivered(job: Job, recipients: ClaimedRecipient[], reply: string, attempt: AttemptInfo): void {
    const now = Date.now();
    const meta = this.metaOf(job);
    this.persist(() => this.spool.finish(job.lane.name, recipients));
    const lane = this.metrics.lane(job.lane.name);
    for (const r of recipients) {
      lane.counters.delivered++;
      if (meta) lane.latency.observe(now - meta.receivedAt);
      this.event('delivered', job, r, reply, attempt, meta, now);
    }
    this.settled(job, recipients.length);
  }

  failed(job: Job, recipients: ClaimedRecipient[], reply: string, attempt: AttemptInfo): void {
    const now = Date.now();
    const meta = this.metaOf(job);
    const cls = this.bounces?.classify(job.lane.name, 'failed', reply, recipients.length);
    if (cls) this.bounces!.permanent(job, recipients, reply, attempt, cls, 'failed'); // before finish: the DSN reads the message
    this.persist(() => this.spool.finish(job.lane.name, recipients));
    this.metrics.count(job.lane.name, 'failed', recipients.length);
    for (const r of recipients) this.event('failed', job, r, reply, attempt, meta, now, { class: cls });
    this.settled(job, recipients.length);
  }

  deferred(job: Job, recipients: ClaimedRecipient[], reply: string, attempt: AttemptInfo, notBefore = 0): void {
    const now = Date.now();
    const meta = this.metaOf(job);
    for (const r of recipients) {
      const decision = nextAttempt(job.lane, r.attempts + 1, meta?.receivedAt ?? now, now);
      if (decision.expired) {
        const cls = this.bounces?.classify(job.lane.name, 'expired', reply);
        if (cls) this.bounces!.permanent(job, [r], reply, attempt, cls, 'expired');
        this.persist(() => this.spool.finish(job.lane.name, [r]));
        this.metrics.count(job.lane.name, 'expired');
        this.event('expired', job, r, reply, attempt, meta, now, { class: cls });
      } else {
        const nextAt = Math.max(decision.nextAt, notBefore);
        this.persist(() => this.spool.defer(job.lane.name, [r], nextAt, reply));
        this.metrics.count(job.lane.name, 'deferred');
        const cls = this.bounces?.classify(job.lane.name, 'deferred', reply);
        this.event('deferred', job, r, reply, attempt, meta, now, { nextAttempt: new Date(nextAt).toISOString(), class: cls });
      }
    }
    this.settled(job, recipients.length);
  }

  released(job: Job): void {
    this.persist(() => this.spool.release(job.lane.name, job.recipients));
    this.settled(job, job.recipients.length);
  }

  vanished(job: Job): void {
    this.persist(() => this.spool.finish(job.lane.name, job.recipients));
    this.settled(job, job.recipients.length);
  }

  /**
   * Outcome writes are fire-and-forget for delivery, but must not get lost: if a commit fails
   * (disk trouble), the same change is tried again a second later. Each change is idempotent.
   */
  private persist(write: () => Promise<unknown>, tries = 0): void {
    write().catch((err: Error) => {
      this.log.emit('spool-error', { error: err.message, retry: tries < 60 });
      if (tries < 60) setTimeout(() => this.persist(write, tries + 1), 1000).unref();
    });
  }

  stop(): void {
    this.stopping = true;
    for (const state of this.lanes.values()) clearTimeout(state.timer);
  }
}

// The SMTP load engine: a pool of pipelining connections fed by an open-loop dispatcher. A
// connection that is free asks for the next message; if it is not due yet, the connection waits
// and one shared timer wakes waiting connections as messages fall due. Latency is measured from
// the intended send time, so a slow target cannot hide its stalls (coordinated omission).
import { hostname } from 'node:os';
import type { Plan } from '../generate/plan.ts';
import type { Recipients } from '../generate/recipients.ts';
import type { MessageFactory } from '../generate/message.ts';
import type { Metrics, Phase } from '../measure/metrics.ts';
import type { Job } from './job.ts';
import type { Reply } from '../../util/smtp-reply.ts';
import { SmtpConnection, type ConnectionHost } from './smtp-connection.ts';

/** What every engine (SMTP, HTTP) runs with: the run's plan, its generators and its clock. */
export interface EngineRun {
  runId: string;
  plan: Plan;
  recipients: Recipients;
  factory: MessageFactory;
  metrics: Metrics;
  /** Run clock in ms (performance.now() at start subtracted). */
  now: () => number;
  /** Wall-clock epoch ms at run clock 0, for the `sent=` stamp. */
  epoch: number;
}

export interface SmtpEngineOptions extends EngineRun {
  host: string;
  port: number;
  commandTimeout?: number;
}

export class SmtpEngine implements ConnectionHost {
  readonly host: string;
  readonly port: number;
  readonly heloName = hostname() || 'mailops-load';
  readonly pipeliningAllowed: boolean;
  readonly messagesPerConnection: number;
  readonly commandTimeout: number;
  private readonly o: SmtpEngineOptions;
  private readonly waiting: SmtpConnection[] = [];
  private readonly open = new Set<SmtpConnection>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private everConnected = false;
  private failedConnects = 0;
  private finished!: () => void;
  private failedRun!: (err: Error) => void;
  inFlight = 0;

  constructor(o: SmtpEngineOptions) {
    this.o = o;
    this.host = o.host;
    this.port = o.port;
    this.pipeliningAllowed = o.plan.scenario.pipelining;
    this.messagesPerConnection = o.plan.scenario.messagesPerConnection;
    this.commandTimeout = o.commandTimeout ?? 60_000;
  }

  now(): number {
    return this.o.now();
  }

  run(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.finished = resolve;
      this.failedRun = reject;
      for (let i = 0; i < this.o.plan.scenario.connections; i++) this.spawn();
    });
  }

  /** Stops handing out messages; in-flight transactions complete. */
  stop(): void {
    this.stopped = true;
    this.wake();
  }

  private spawn(): void {
    const conn = new SmtpConnection(this);
    this.open.add(conn);
    conn.open();
  }

  phase(phase: Phase, ms: number): void {
    this.o.metrics.phase(phase, ms * 1000);
  }

  next(conn: SmtpConnection, wait: boolean): Job | undefined {
    const now = this.o.now();
    const due = this.stopped ? Infinity : this.o.plan.peek(now);
    if (due === Infinity) {
      if (wait) queueMicrotask(() => conn.retire());
      return undefined;
    }
    if (due <= now) return this.job(now);
    if (wait) {
      this.waiting.push(conn);
      this.arm(due - now);
    }
    return undefined;
  }

  private job(now: number): Job {
    const p = this.o.plan.take(now);
    const r = this.o.recipients.next(p.seq);
    if (r.unknown) this.o.metrics.unknownRecipients++;
    const s = this.o.plan.scenario;
    const from = p.lane === 'bulk' ? s.bulk.from : (p.lane === 'transactional' ? s.transactional?.from : s.member?.from) ?? s.bulk.from;
    this.inFlight++;
    return { seq: p.seq, lane: p.lane, intended: p.intended, size: p.size, from, to: r.address, provider: r.provider, writtenAt: 0, doneAt: 0, bytes: 0 };
  }

  private arm(delay: number): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.wake();
    }, Math.max(0, Math.floor(delay)));
  }

  /** Hands due messages to waiting connections; retires them all when the plan is exhausted. */
  private wake(): void {
    const now = this.o.now();
    while (this.waiting.length > 0) {
      const due = this.stopped ? Infinity : this.o.plan.peek(now);
      if (due === Infinity) {
        for (const conn of this.waiting.splice(0)) conn.retire();
        return;
      }
      if (due > now) return this.arm(due - now);
      this.waiting.shift()!.give(this.job(now));
    }
  }

  payload(job: Job): [Buffer, Buffer] {
    const s = this.o.plan.scenario;
    const header = this.o.factory.header({
      runId: this.o.runId, seq: job.seq, lane: job.lane, from: job.from, to: job.to,
      campaign: s.bulk.campaign, unsubscribeBase: s.unsubscribeBase,
    }, this.o.epoch + Math.round(job.writtenAt));
    return [header, this.o.factory.body(job.lane, job.size, this.o.plan.isFixed(job.lane))];
  }

  done(job: Job, reply: Reply | undefined, phase: string, error?: string): void {
    this.inFlight--;
    const m = this.o.metrics;
    if (!error && reply && reply.code === 250 && !job.failure) {
      m.ok(job.lane, (job.doneAt - job.intended) * 1000, (job.doneAt - job.writtenAt) * 1000, job.bytes);
    } else {
      m.fail(job.lane, phase, error ?? String(reply?.code ?? 'none'), reply?.enhanced ?? '', job.provider, error ?? reply?.text ?? '');
    }
  }

  connected(): void {
    this.everConnected = true;
    this.o.metrics.connections++;
  }

  closed(conn: SmtpConnection, error: string | undefined, everReady: boolean): void {
    this.open.delete(conn);
    const idx = this.waiting.indexOf(conn);
    if (idx >= 0) this.waiting.splice(idx, 1);
    if (error && !everReady) {
      this.o.metrics.connectError(error);
      this.failedConnects++;
      if (!this.everConnected && this.failedConnects >= 3 * this.o.plan.scenario.connections) {
        this.stopped = true;
        for (const c of this.open) c.retire();
        this.failedRun(new Error(`cannot connect to smtp://${this.host}:${this.port}: ${error}`));
        return;
      }
    }
    const more = !this.stopped && this.o.plan.peek(this.o.now()) !== Infinity;
    if (more) {
      // Reconnect; back off briefly after a failure so a dead target is not hammered.
      if (error) setTimeout(() => this.spawnIfNeeded(), Math.min(50 * 2 ** Math.min(this.failedConnects, 5), 2000));
      else this.spawn();
    } else if (this.open.size === 0) {
      clearTimeout(this.timer);
      this.finished();
    }
  }

  private spawnIfNeeded(): void {
    if (!this.stopped && this.o.plan.peek(this.o.now()) !== Infinity) this.spawn();
    else if (this.open.size === 0) this.finished();
  }
}

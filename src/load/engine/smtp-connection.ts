// One client SMTP connection of the load engine. With PIPELINING it sends MAIL, RCPT and DATA as
// one write, and after the 354 it sends the message together with the next transaction's
// MAIL/RCPT/DATA: one round trip per message. Each reply's latency is measured from when its
// command was written or, if later, from the previous reply (the server answers in order).
import { connect, type Socket } from 'node:net';
import { ReplyParser, type Reply } from '../../util/smtp-reply.ts';
import type { Phase } from '../measure/metrics.ts';
import type { Job } from './job.ts';

type Kind = 'banner' | 'ehlo' | 'mail' | 'rcpt' | 'data' | 'eod' | 'rset' | 'quit';
interface Expect { kind: Kind; job?: Job; sentAt: number }

export interface ConnectionHost {
  readonly host: string;
  readonly port: number;
  readonly heloName: string;
  readonly pipeliningAllowed: boolean;
  readonly messagesPerConnection: number;
  readonly commandTimeout: number;
  now(): number;
  phase(phase: Phase, ms: number): void;
  /** Next job if one is due now; otherwise undefined (and, when `wait`, this connection is woken later). */
  next(conn: SmtpConnection, wait: boolean): Job | undefined;
  /** Job bytes for the DATA phase: [per-message header, shared body]. */
  payload(job: Job): [Buffer, Buffer];
  done(job: Job, reply: Reply | undefined, phase: string, error?: string): void;
  connected(conn: SmtpConnection): void;
  closed(conn: SmtpConnection, error: string | undefined, everReady: boolean): void;
}

export class SmtpConnection {
  private readonly host: ConnectionHost;
  private socket!: Socket;
  private readonly parser = new ReplyParser();
  private readonly expects: Expect[] = [];
  private pipelining = false;
  private ready = false;
  private retired = false;
  private lastReplyAt = 0;
  private startedAt = 0;
  /** Transactions started on this connection (for messagesPerConnection). */
  private started = 0;
  /** Jobs between MAIL and the end-of-data reply. */
  private inFlight = 0;
  private writableWait: Job | undefined;
  /** The last transaction failed after MAIL: the server may still hold its envelope. */
  private needRset = false;

  constructor(host: ConnectionHost) {
    this.host = host;
  }

  open(): void {
    this.startedAt = this.host.now();
    this.socket = connect({ host: this.host.host, port: this.host.port, noDelay: true });
    this.socket.setTimeout(this.host.commandTimeout);
    this.socket.on('connect', () => {
      const now = this.host.now();
      this.host.phase('connect', now - this.startedAt);
      this.expects.push({ kind: 'banner', sentAt: now });
      this.lastReplyAt = now;
    });
    this.socket.on('data', (chunk: Buffer) => this.parser.push(chunk, (reply) => this.onReply(reply)));
    this.socket.on('timeout', () => this.abort('timeout'));
    this.socket.on('error', (err: NodeJS.ErrnoException) => this.abort(err.code ?? err.message));
    this.socket.on('close', () => this.abort('closed'));
    this.socket.on('drain', () => {
      const job = this.writableWait;
      this.writableWait = undefined;
      if (job) this.begin(job);
    });
  }

  /** Starts a transaction for a job the dispatcher hands over (when this connection waited). */
  give(job: Job): void {
    if (this.socket.writableNeedDrain) this.writableWait = job;
    else this.begin(job);
  }

  private write(data: string | Buffer): void {
    this.socket.write(data);
  }

  private begin(job: Job): void {
    this.started++;
    this.inFlight++;
    const now = this.host.now();
    job.writtenAt = now;
    if (this.needRset) {
      // smtp-server, for one, keeps the envelope after a refused RCPT: a new MAIL would be "nested".
      this.needRset = false;
      this.write('RSET\r\n');
      if (!this.pipelining) {
        // Without PIPELINING, MAIL waits for the RSET reply (see onReply).
        this.expects.push({ kind: 'rset', job, sentAt: now });
        return;
      }
      this.expects.push({ kind: 'rset', sentAt: now });
    }
    if (this.pipelining) {
      this.write(`MAIL FROM:<${job.from}>\r\nRCPT TO:<${job.to}>\r\nDATA\r\n`);
      this.expects.push({ kind: 'mail', job, sentAt: now }, { kind: 'rcpt', job, sentAt: now }, { kind: 'data', job, sentAt: now });
    } else {
      this.write(`MAIL FROM:<${job.from}>\r\n`);
      this.expects.push({ kind: 'mail', job, sentAt: now });
    }
  }

  private onReply(reply: Reply): void {
    const now = this.host.now();
    const expect = this.expects.shift();
    if (!expect) return; // an unsolicited reply (421 before close): the close handler follows
    const ms = now - Math.max(expect.sentAt, this.lastReplyAt);
    this.lastReplyAt = now;
    const ok = reply.code >= 200 && reply.code < 400;
    if (expect.kind !== 'rset' && expect.kind !== 'quit') this.host.phase(expect.kind, ms);
    const job = expect.job;
    switch (expect.kind) {
      case 'banner':
        if (reply.code !== 220) return this.abort(`${reply.code}`, reply);
        this.write(`EHLO ${this.host.heloName}\r\n`);
        this.expects.push({ kind: 'ehlo', sentAt: now });
        return;
      case 'ehlo':
        if (reply.code !== 250) return this.abort(`${reply.code}`, reply);
        this.pipelining = this.host.pipeliningAllowed && /^PIPELINING\b/im.test(reply.text);
        this.ready = true;
        this.host.connected(this);
        return this.pull();
      case 'mail':
        if (!ok) job!.failure ??= { phase: 'mail', reply };
        if (!this.pipelining) {
          if (ok) this.command(`RCPT TO:<${job!.to}>\r\n`, 'rcpt', job!, now);
          else this.finish(job!, now);
        }
        return;
      case 'rcpt':
        if (!ok) job!.failure ??= { phase: 'rcpt', reply };
        if (!this.pipelining) {
          if (ok) this.command('DATA\r\n', 'data', job!, now);
          else this.finish(job!, now);
        }
        return;
      case 'data':
        if (reply.code !== 354) {
          job!.failure ??= { phase: 'data', reply };
          return this.finish(job!, now);
        }
        return this.sendContent(job!, now);
      case 'eod':
        if (reply.code !== 250) job!.failure ??= { phase: 'eod', reply };
        return this.finish(job!, now, reply);
      case 'rset':
        if (job) this.command(`MAIL FROM:<${job.from}>\r\n`, 'mail', job, now);
        return;
      case 'quit':
        return;
    }
  }

  private command(line: string, kind: Kind, job: Job, now: number): void {
    this.write(line);
    this.expects.push({ kind, job, sentAt: now });
  }

  private sendContent(job: Job, now: number): void {
    if (job.failure) {
      // 354 although MAIL or RCPT failed: end the empty transaction cleanly.
      this.command('.\r\n', 'eod', job, now);
      return;
    }
    const [header, body] = this.host.payload(job);
    job.bytes = header.length + body.length;
    this.socket.cork();
    this.write(header);
    this.write('\r\n');
    this.write(body);
    this.expects.push({ kind: 'eod', job, sentAt: now });
    // Piggyback the next transaction on the message (RFC 2920 allows content then commands).
    if (this.pipelining && this.started < this.host.messagesPerConnection && !this.socket.writableNeedDrain) {
      const next = this.host.next(this, false);
      if (next) this.begin(next);
    }
    this.socket.uncork();
  }

  private finish(job: Job, now: number, reply?: Reply): void {
    this.inFlight--;
    job.doneAt = now;
    const failure = job.failure;
    if (failure && failure.phase !== 'eod') this.needRset = true;
    this.host.done(job, failure?.reply ?? reply, failure?.phase ?? 'eod');
    if (this.inFlight > 0) return;
    if (this.started >= this.host.messagesPerConnection) return this.retire();
    this.pull();
  }

  private pull(): void {
    if (this.inFlight > 0 || this.retired) return;
    const job = this.host.next(this, true);
    if (job) this.begin(job);
  }

  /** The dispatcher has no more work for this connection, or its message budget is spent. */
  retire(): void {
    if (this.retired) return;
    this.retired = true;
    if (this.ready && !this.socket.destroyed) {
      this.write('QUIT\r\n');
      this.expects.push({ kind: 'quit', sentAt: this.host.now() });
      this.socket.end();
    } else {
      this.socket.destroy();
    }
    this.host.closed(this, undefined, this.ready);
  }

  private abort(reason: string, reply?: Reply): void {
    if (this.retired) return;
    this.retired = true;
    const now = this.host.now();
    // Every job still waiting for a reply is lost with this connection.
    const seen = new Set<Job>();
    for (const e of this.expects) {
      if (e.job && !seen.has(e.job)) {
        seen.add(e.job);
        e.job.doneAt = now;
        this.host.done(e.job, e.job.failure?.reply ?? reply, e.job.failure?.phase ?? e.kind, e.job.failure ? undefined : reason);
      }
    }
    this.expects.length = 0;
    if (this.writableWait) {
      this.host.done(this.writableWait, undefined, 'mail', reason);
      this.writableWait = undefined;
    }
    this.socket.destroy();
    this.host.closed(this, reason, this.ready);
  }
}

// What happens after a delivery failed for good: the reply is classified, a hard bounce puts the
// address on the suppression list, and the envelope sender gets a DSN through the relay's own
// intake (null envelope sender, so a DSN that fails is never bounced again; mail from the null
// sender never gets one). Also screens claimed recipients against the suppression list, and keeps
// that list in step with the cluster when there is one: a hard bounce here suppresses the address
// on every node, and theirs here.
import type { BouncesConfig } from '../../config/sending-types.ts';
import type { AttemptInfo, Job } from '../deliver/job.ts';
import type { EventLog } from '../log.ts';
import { accept, type Intake } from '../receive/accept.ts';
import { headerLength } from '../receive/message.ts';
import { queueId, type ClaimedRecipient, type Spool } from '../spool/spool.ts';
import { BOUNCE_CLASSES, classifyReply, type BounceClass } from './classify.ts';
import { buildDsn } from './dsn.ts';
import type { SuppressedTable } from '../spool/suppressed.ts';
import type { Cluster } from '../cluster/cluster.ts';

type Outcome = 'failed' | 'deferred' | 'expired';

export class Bounces {
  /** The suppression list (the spool's table). */
  readonly suppression: SuppressedTable;
  /** Failures by lane, outcome and class (for /metrics). */
  readonly counts = new Map<string, number>();
  private readonly intake: Intake;
  private readonly config: BouncesConfig;
  private readonly spool: Spool;
  private readonly log: EventLog;
  private readonly hostname: string;
  private readonly cluster?: Cluster;

  /** DSNs enter the relay through `intake`, like any other message. */
  constructor(config: BouncesConfig, hostname: string, spool: Spool, log: EventLog, intake: Intake, cluster?: Cluster) {
    this.intake = intake;
    this.config = config;
    this.hostname = hostname;
    this.spool = spool;
    this.log = log;
    this.suppression = spool.suppressed;
    this.cluster = cluster;
    cluster?.on('suppress', (s) => {
      if (this.suppression.get(s.address)) return;
      this.suppression.add(s.address, s.reason, s.source).then(
        () => this.log.emit('suppressed', { address: s.address, reason: s.reason, by: 'cluster' }),
        (err: Error) => this.log.emit('spool-error', { error: err.message, suppress: s.address }),
      );
    });
    cluster?.on('unsuppress', (address) => {
      void this.suppression.remove(address).then((removed) => removed && this.log.emit('unsuppressed', { address, by: 'cluster' }), () => {});
    });
  }

  /** Puts an address on the suppression list (on every node of a cluster); resolves once on disk here. */
  async suppress(address: string, reason: string, source: string): Promise<void> {
    await this.suppression.add(address, reason, source);
    this.cluster?.shareSuppression({ address: address.toLowerCase(), reason, source });
  }

  /** Takes an address off the suppression list (on every node); whether it was on it here. */
  async unsuppress(address: string): Promise<boolean> {
    const removed = await this.suppression.remove(address);
    this.cluster?.shareUnsuppression(address.toLowerCase());
    return removed;
  }

  /** Classifies a failure reply and counts it. */
  classify(lane: string, outcome: Outcome, reply: string, n = 1): BounceClass {
    const cls = classifyReply(reply);
    const key = `${lane}\t${outcome}\t${cls}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + n);
    return cls;
  }

  /** Recipients of a job that are suppressed, with the reply they fail with. */
  suppressed(job: Job): { recipient: ClaimedRecipient; reply: string }[] {
    const out: { recipient: ClaimedRecipient; reply: string }[] = [];
    for (const r of job.recipients) {
      const entry = this.suppression.get(r.address);
      if (entry) out.push({ recipient: r, reply: `550 5.1.1 <${r.address}> is on the suppression list since ${entry.addedAt} (${entry.reason})` });
    }
    return out;
  }

  /**
   * A permanent failure or expiry of `recipients` of one message. Must run before the recipients
   * are finished in the spool (the message may go with its last recipient).
   */
  permanent(job: Job, recipients: ClaimedRecipient[], reply: string, attempt: AttemptInfo, cls: BounceClass, reason: 'failed' | 'expired'): void {
    if (reason === 'failed' && cls === 'bad-mailbox' && this.config.suppress) {
      for (const r of recipients) {
        this.suppress(r.address, reply, `bounce ${queueId(job.messageId)}`).then(
          () => this.log.emit('suppressed', { address: r.address.toLowerCase(), reason: reply, id: queueId(job.messageId) }),
          (err: Error) => this.log.emit('spool-error', { error: err.message, suppress: r.address }),
        );
      }
    }
    if (!this.config.dsn) return;
    const message = this.spool.readMessage(job.messageId);
    if (!message || message.sender === '') return; // never to the null sender: no bounce loops
    const dsn = buildDsn({
      hostname: this.hostname, queueId: queueId(job.messageId), sender: message.sender, arrival: new Date(message.receivedAt), reason,
      recipients: recipients.map((r) => ({ address: r.address, reply, class: cls, remoteMta: attempt.mx, attempts: r.attempts + 1 })),
      originalHeaders: message.body.subarray(0, headerLength(message.body)),
    });
    const original = queueId(job.messageId);
    // the DSN is the original's tenant's mail, and so is the `dsn` event (a `bounced` record per recipient, src/logs/record.ts)
    accept(this.intake, { sender: '', recipients: [message.sender], lane: this.config.lane, client: '127.0.0.1', helo: this.hostname, protocol: 'SMTP', body: dsn, generatedHere: true, tenant: message.tenant })
      .then(({ id }) => this.log.emit('dsn', { id: original, dsn: id, lane: job.lane.name, tenant: message.tenant, to: message.sender, rcpt: recipients.map((r) => r.address), class: cls, reason }))
      .catch((err: Error) => this.log.emit('dsn-error', { id: original, to: message.sender, error: err.message }));
  }

  prometheus(): string {
    const lines = ['# HELP mailops_failures_total Failed, deferred and expired recipients by reply class.', '# TYPE mailops_failures_total counter'];
    for (const [key, n] of this.counts) {
      const [lane, outcome, cls] = key.split('\t');
      lines.push(`mailops_failures_total{lane="${lane}",outcome="${outcome}",class="${cls}"} ${n}`);
    }
    lines.push('# HELP mailops_suppressed_addresses Addresses on the suppression list.', '# TYPE mailops_suppressed_addresses gauge', `mailops_suppressed_addresses ${this.suppression.size}`);
    return lines.join('\n') + '\n';
  }
}

export { BOUNCE_CLASSES };

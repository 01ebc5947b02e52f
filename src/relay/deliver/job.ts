// A delivery job: the recipients of one message at one destination domain, sent in one SMTP
// transaction. Jobs are small (ids and addresses); the body is read when the job is sent.
import type { LaneConfig } from '../../config/types.ts';
import type { ClaimedRecipient } from '../spool/spool.ts';

export interface Job {
  lane: LaneConfig;
  messageId: number;
  domain: string;
  recipients: ClaimedRecipient[];
  /** Sender and arrival time, kept once read (by the connection that sends it, or for a log line). */
  meta?: { sender: string; receivedAt: number; tenant?: string };
  /** "Not now" refusals this job took so far (connections, session, rate): bounded, then it is deferred. */
  notNow?: number;
}

/** Where and how an attempt was made, for the log: the MX host and its address, the egress path's sending address and shaping profile. */
export interface AttemptInfo { mx?: string; address?: string; tls?: boolean; startedAt?: number; egress?: string; profile?: string }

/** What delivery reports back; the scheduler turns it into spool changes, metrics and log lines. */
export interface OutcomeSink {
  delivered(job: Job, recipients: ClaimedRecipient[], reply: string, attempt: AttemptInfo): void;
  /** A 5xx or another permanent failure. */
  failed(job: Job, recipients: ClaimedRecipient[], reply: string, attempt: AttemptInfo): void;
  /** A 4xx, a connection problem or a timeout: retried on the lane's schedule, or expired. */
  deferred(job: Job, recipients: ClaimedRecipient[], reply: string, attempt: AttemptInfo, notBefore?: number): void;
  /** Not attempted (shutdown): back to the queue as it was. */
  released(job: Job): void;
  /** The message is gone from the spool (deleted by an operator while queued). */
  vanished(job: Job): void;
}

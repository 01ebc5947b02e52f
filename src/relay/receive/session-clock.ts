// How long an SMTP session may take, the way Postfix's smtpd does with smtpd_per_record_deadline
// and smtpd_min_data_rate: a client that owes the relay a command may stay silent for the idle
// timeout; once it has started a command line, the whole line must arrive within the command
// deadline (every byte does not start the time again, so one byte every 200 ms does not hold a
// slot for ever); message data must keep up a minimum rate on average, with a stall of at most
// the idle timeout. While the relay owes the client a reply (a handler has not answered, the
// message is being committed) the client's clocks stand still.
//
// Pure bookkeeping: it is told the bytes a client sent and what the server is doing, and says
// whether and why the session has run out of time. May touch: nothing but its own fields;
// admission.ts watches the sockets and ends the sessions.
import type { SessionCut } from '../metrics.ts';

export interface SessionLimits {
  /** A client that owes a command may send nothing for this long. */
  idleTimeout: number;
  /** First byte to end of one command line. */
  commandDeadline: number;
  /** Bytes per second that message data must average. */
  minDataRate: number;
}

/** What the session is doing, as smtp-server sees it (admission.ts reads it from the connection). */
export type SessionState = 'command' | 'data' | 'server';

export type Overrun = Exclude<SessionCut, 'shed'>;

export class SessionClock {
  /** Since when the client has owed a command: session start, its last complete line, or the end of the server's wait. */
  private waitingSince: number;
  /** First byte of a command line that has not ended yet. */
  private lineStartedAt: number | undefined;
  /** Message data: when the data must have arrived by, given what came so far at the minimum rate. */
  private dataDeadline: number | undefined;
  private lastByteAt: number;

  constructor(now: number) {
    this.waitingSince = now;
    this.lastByteAt = now;
  }

  /** The time since which the client has done nothing useful (the longest-waiting are shed first). */
  get quietSince(): number {
    return this.waitingSince;
  }

  /** A chunk from the client; `inData` while smtp-server reads message data. */
  received(bytes: Buffer, inData: boolean, now: number, limits: SessionLimits): void {
    this.lastByteAt = now;
    if (inData) {
      // Postfix's rule: each read adds bytes / rate to the deadline, which never lies further
      // ahead than the idle timeout
      const deadline = this.dataDeadline ?? this.waitingSince + limits.idleTimeout;
      this.dataDeadline = Math.min(deadline + (bytes.length * 1000) / limits.minDataRate, now + limits.idleTimeout);
      this.lineStartedAt = undefined;
      return;
    }
    this.dataDeadline = undefined;
    const lastLineEnd = bytes.lastIndexOf(0x0a);
    if (lastLineEnd === -1) {
      this.lineStartedAt ??= now;
      return;
    }
    this.waitingSince = now;
    this.lineStartedAt = lastLineEnd === bytes.length - 1 ? undefined : now;
  }

  /** Whether the session has run out of time at `now`, and how. */
  overrun(state: SessionState, now: number, limits: SessionLimits): Overrun | undefined {
    if (state === 'server') {
      // the client is waiting for us: its time starts again once we have answered
      this.waitingSince = now;
      if (this.lineStartedAt !== undefined) this.lineStartedAt = now;
      this.dataDeadline = undefined;
      return undefined;
    }
    if (state === 'data') {
      if (now - Math.max(this.lastByteAt, this.waitingSince) > limits.idleTimeout) return 'idle';
      return this.dataDeadline !== undefined && now > this.dataDeadline ? 'data-rate' : undefined;
    }
    if (this.lineStartedAt !== undefined) return now - this.lineStartedAt > limits.commandDeadline ? 'command-deadline' : undefined;
    return now - this.waitingSince > limits.idleTimeout ? 'idle' : undefined;
  }
}

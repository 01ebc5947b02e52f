// One outbound SMTP connection (nodemailer's SMTP client): connect to the first next hop that
// answers, then send the lane's jobs for this destination one after another until the queue
// stays empty for the idle timeout or the per-connection message limit is reached. Opportunistic
// STARTTLS, as a public MX expects; certificates are not verified (there is no name to verify
// against that the sender could trust without DANE or MTA-STS).
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { RelayConfig, LaneConfig } from '../../config/types.ts';
import type { Spool } from '../spool/spool.ts';
import type { Destination } from './destination.ts';
import type { AttemptInfo, Job, OutcomeSink } from './job.ts';
import type { NextHop } from './mx.ts';

export interface ConnectionContext {
  config: RelayConfig;
  spool: Spool;
  outcomes: OutcomeSink;
  stopping: () => boolean;
  /** Called when a destination could not be reached at all: pause it and defer what it has queued. */
  unreachable: (destination: Destination, reply: string, permanent: boolean) => void;
}

type SmtpError = Error & { code?: string; responseCode?: number; response?: string; recipient?: string };

const BROKEN = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EPROTOCOL', 'ETLS', 'EDNS']);

function connectTo(hop: NextHop, config: RelayConfig, lane: LaneConfig): Promise<SMTPConnection> {
  const d = config.delivery;
  const conn = new SMTPConnection({
    host: hop.address, port: hop.port, name: lane.egress?.helo ?? config.smtp.hostname, localAddress: lane.egress?.address, secure: false, opportunisticTLS: true,
    tls: { rejectUnauthorized: false, servername: hop.mx }, connectionTimeout: d.connectTimeout,
    greetingTimeout: d.connectTimeout, socketTimeout: d.commandTimeout, socketCloseTimeout: 0,
  });
  return new Promise((resolve, reject) => {
    conn.once('error', reject);
    conn.connect(() => {
      conn.removeListener('error', reject);
      conn.on('error', () => {}); // later errors arrive through send()'s callback
      resolve(conn);
    });
  });
}

function describe(err: SmtpError): string {
  return err.response ?? `${err.code ?? 'error'}: ${err.message}`;
}

/** Sends one job; resolves false when the connection cannot be used any more. */
function sendJob(conn: SMTPConnection, job: Job, attempt: AttemptInfo, ctx: ConnectionContext): Promise<boolean> {
  const message = ctx.spool.readMessage(job.messageId);
  if (!message) {
    ctx.outcomes.vanished(job);
    return Promise.resolve(true);
  }
  job.meta = { sender: message.sender, receivedAt: message.receivedAt };
  const byAddress = new Map(job.recipients.map((r) => [r.address.toLowerCase(), r]));
  const envelope = { from: message.sender || false, to: job.recipients.map((r) => r.address) } as const;
  attempt = { ...attempt, startedAt: Date.now() };
  return new Promise((resolve) => {
    conn.send(envelope, message.body, (err, info) => {
      const rejected: SmtpError[] = (err ? (err as SmtpError & { rejectedErrors?: SmtpError[] }).rejectedErrors : info?.rejectedErrors) ?? [];
      const settled = new Set<string>();
      for (const rcptErr of rejected) {
        const r = rcptErr.recipient && byAddress.get(rcptErr.recipient.toLowerCase());
        if (!r) continue;
        settled.add(r.address.toLowerCase());
        if ((rcptErr.responseCode ?? 0) >= 500) ctx.outcomes.failed(job, [r], describe(rcptErr), attempt);
        else ctx.outcomes.deferred(job, [r], describe(rcptErr), attempt);
      }
      const rest = job.recipients.filter((r) => !settled.has(r.address.toLowerCase()));
      if (!err) {
        if (rest.length) ctx.outcomes.delivered(job, rest, info!.response, attempt);
        return resolve(true);
      }
      const e = err as SmtpError;
      if (rest.length) {
        if ((e.responseCode ?? 0) >= 500) ctx.outcomes.failed(job, rest, describe(e), attempt);
        else ctx.outcomes.deferred(job, rest, describe(e), attempt);
      }
      if (BROKEN.has(e.code ?? '') || e.responseCode === 421 || !e.responseCode) return resolve(false);
      conn.reset((resetErr) => resolve(!resetErr));
    });
  });
}

/** Runs one connection of `lane` to `destination` until there is nothing more for it to do. */
export async function runConnection(destination: Destination, lane: LaneConfig, ctx: ConnectionContext): Promise<void> {
  const d = ctx.config.delivery;
  let conn: SMTPConnection | undefined;
  let hop: NextHop | undefined;
  try {
    const answer = await destination.resolve();
    if (!answer.ok) return ctx.unreachable(destination, answer.reply, answer.permanent);
    let lastError = '';
    for (const candidate of answer.hops) {
      try {
        conn = await connectTo(candidate, ctx.config, lane);
        hop = candidate;
        break;
      } catch (err) {
        lastError = `${candidate.mx}[${candidate.address}]:${candidate.port}: ${describe(err as SmtpError)}`;
      }
    }
    if (!conn || !hop) return ctx.unreachable(destination, `451 4.4.1 Connection failed: ${lastError}`, false);
    const attempt: AttemptInfo = { mx: hop.mx, address: hop.address, tls: conn.secure };
    // the site's shaping: messages per connection, idle time, message rate, pauses
    const site = destination.site;
    const perConnection = site?.profile.messagesPerConnection ?? d.messagesPerConnection;
    for (let sent = 0; sent < perConnection && !ctx.stopping() && !site?.paused(); sent++) {
      const job = destination.take(lane) ?? await destination.waitForJob(lane, site?.profile.idleTimeout ?? d.idleTimeout);
      if (!job) break;
      const wait = site?.rate.reserve(Date.now()) ?? 0;
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      if (!(await sendJob(conn, job, attempt, ctx))) break;
    }
  } finally {
    if (conn) conn.quit();
    destination.connectionClosed(lane);
  }
}

// One outbound SMTP connection (smtp-client.ts): connect to the first next hop that answers, then
// send the lane's jobs for this destination one after another until the queue stays empty for
// the idle timeout or the per-connection message limit is reached.
import type { RelayConfig, LaneConfig } from '../../config/types.ts';
import type { ClaimedRecipient, Spool } from '../spool/spool.ts';
import type { Destination } from './destination.ts';
import type { AttemptInfo, Job, OutcomeSink } from './job.ts';
import type { NextHop } from './mx.ts';
import { replyLine } from '../../util/smtp-reply.ts';
import { SmtpClient, type SmtpError } from './smtp-client.ts';

export interface ConnectionContext {
  config: RelayConfig;
  spool: Spool;
  outcomes: OutcomeSink;
  stopping: () => boolean;
  /** Called when a destination could not be reached at all: pause it and defer what it has queued. */
  unreachable: (destination: Destination, reply: string, permanent: boolean) => void;
}

/** Opportunistic TLS as Postfix does it: a host whose TLS handshake fails is tried again in clear. */
async function connectTo(hop: NextHop, config: RelayConfig, lane: LaneConfig): Promise<SmtpClient> {
  const d = config.delivery;
  const options = {
    host: hop.address, port: hop.port, helo: lane.egress?.helo ?? config.smtp.hostname, localAddress: lane.egress?.address,
    servername: hop.mx, connectTimeout: d.connectTimeout, commandTimeout: d.commandTimeout,
  };
  try {
    return await SmtpClient.connect(options);
  } catch (err) {
    if ((err as SmtpError).code !== 'ETLS') throw err;
    return SmtpClient.connect({ ...options, starttls: false });
  }
}

function describe(err: SmtpError): string {
  return err.response ?? `${err.code ?? 'error'}: ${err.message}`;
}

/** Sends one job; resolves false when the connection cannot be used any more. */
async function sendJob(conn: SmtpClient, job: Job, attempt: AttemptInfo, ctx: ConnectionContext): Promise<boolean> {
  const message = ctx.spool.readMessage(job.messageId);
  if (!message) {
    ctx.outcomes.vanished(job);
    return true;
  }
  job.meta = { sender: message.sender, receivedAt: message.receivedAt };
  attempt = { ...attempt, startedAt: Date.now() };
  const result = await conn.send(message.sender, job.recipients.map((r) => r.address), message.body);
  // by recipient, not by address: the same address twice in one job is two recipients
  const rejected = new Set<ClaimedRecipient>();
  for (const { address, reply } of result.rejected) {
    const r = job.recipients.find((candidate) => candidate.address === address && !rejected.has(candidate));
    if (!r) continue;
    rejected.add(r);
    if (reply.code >= 500) ctx.outcomes.failed(job, [r], replyLine(reply), attempt);
    else ctx.outcomes.deferred(job, [r], replyLine(reply), attempt);
  }
  const rest = rejected.size ? job.recipients.filter((r) => !rejected.has(r)) : job.recipients;
  if (result.ok) {
    if (rest.length) ctx.outcomes.delivered(job, rest, replyLine(result.reply), attempt);
    return true;
  }
  const e = result.error;
  if (rest.length) {
    if ((e.responseCode ?? 0) >= 500) ctx.outcomes.failed(job, rest, describe(e), attempt);
    else ctx.outcomes.deferred(job, rest, describe(e), attempt);
  }
  if (!conn.usable || e.responseCode === 421) return false;
  return conn.reset();
}

/** Runs one connection of `lane` to `destination` until there is nothing more for it to do. */
export async function runConnection(destination: Destination, lane: LaneConfig, ctx: ConnectionContext): Promise<void> {
  const d = ctx.config.delivery;
  let conn: SmtpClient | undefined;
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
    for (let sent = 0; sent < perConnection && conn.usable && !ctx.stopping() && !site?.paused(); sent++) {
      const job = destination.take(lane) ?? await destination.waitForJob(lane, site?.profile.idleTimeout ?? d.idleTimeout);
      if (!job) break;
      if (!conn.usable) { // the server hung up while we waited (an idle 421): the job was not tried
        ctx.outcomes.released(job);
        break;
      }
      const wait = site?.rate.reserve(Date.now()) ?? 0;
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      if (!(await sendJob(conn, job, attempt, ctx))) break;
    }
  } finally {
    if (conn) conn.quit();
    destination.connectionClosed(lane);
  }
}

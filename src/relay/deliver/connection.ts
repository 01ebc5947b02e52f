// One outbound SMTP connection of an egress path (smtp-client.ts): connect to the first next hop
// of its group that answers, from the path's egress address with its HELO name, then send what the
// path hands out, one message after another, highest lane first, until nothing comes for the
// idle timeout or the site's messages-per-connection limit is reached.
//
// Every refusal is shown to the shaping rules first (ctx.observe). A "not now" about the
// connection or the rate (shape/not-now.ts), given before any of the message went out, is no
// verdict on the message: ctx.notNow puts it back at the front of its ready queue. Everything
// else becomes an outcome (delivered, failed, deferred on the lane's schedule).
// May touch: the path's per-connection calls, the spool (read only), the OutcomeSink.
import type { RelayConfig } from '../../config/types.ts';
import type { ClaimedRecipient, Spool } from '../spool/spool.ts';
import { notNow } from '../shape/not-now.ts';
import type { EgressPath, HopGroup, PathConnection } from './egress-path.ts';
import type { AttemptInfo, Job, OutcomeSink } from './job.ts';
import type { NextHop } from './mx.ts';
import { replyLine } from '../../util/smtp-reply.ts';
import { SmtpClient, type SmtpError } from './smtp-client.ts';
import type { Lease } from '../cluster/limits.ts';

export interface ConnectionContext {
  config: RelayConfig;
  spool: Spool;
  outcomes: OutcomeSink;
  stopping: () => boolean;
  /** A refusal lane `p` got on the path: backoff rules; returns until when that lane is paused (0: not paused). */
  observe(path: EgressPath, p: number, reply: string): number;
  /** A "not now" refusal of these recipients: back to the front of the ready queue. */
  notNow(path: EgressPath, group: HopGroup, job: Job, reply: string): void;
  /** Refused at connect with "too many connections": hold new connections to the group a moment. */
  refusedAtConnect(path: EgressPath, connection: PathConnection, p: number, reply: string): void;
  /** No hop of the group could be reached: pause the group and defer what it has queued. */
  unreachable(path: EgressPath, group: HopGroup, p: number, reply: string): void;
  /** Leave to open one more connection on the path (a cluster's lease); undefined: not now (the group is held a moment). */
  lease(path: EgressPath, connection: PathConnection): Promise<Lease | undefined>;
}

/** Opportunistic TLS as Postfix does it: a host whose TLS handshake fails is tried again in clear. */
async function connectTo(hop: NextHop, path: EgressPath, config: RelayConfig): Promise<SmtpClient> {
  const d = config.delivery;
  const options = {
    host: hop.address, port: hop.port, helo: path.egress?.helo ?? config.smtp.hostname, localAddress: path.egress?.address,
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
async function sendJob(conn: SmtpClient, job: Job, path: EgressPath, group: HopGroup, attempt: AttemptInfo, ctx: ConnectionContext, nth: number): Promise<boolean> {
  const message = ctx.spool.readMessage(job.messageId);
  if (!message) {
    ctx.outcomes.vanished(job);
    return true;
  }
  const p = job.lane.priority;
  job.meta = { sender: message.sender, receivedAt: message.receivedAt, tenant: message.tenant };
  attempt = { ...attempt, startedAt: Date.now() };
  const result = await conn.send(message.sender, job.recipients.map((r) => r.address), message.body);
  let later: ClaimedRecipient[] | undefined; // refused "not now": back to the ready queue
  let laterReply = '';
  const refused = (rs: ClaimedRecipient[], reply: string, code: number, beforeMessage: boolean) => {
    const notBefore = ctx.observe(path, p, reply);
    if (code >= 500) ctx.outcomes.failed(job, rs, reply, attempt);
    else if (beforeMessage && notNow(reply)) {
      (later ??= []).push(...rs);
      laterReply = reply;
    } else ctx.outcomes.deferred(job, rs, reply, attempt, notBefore);
  };
  // by recipient, not by address: the same address twice in one job is two recipients
  const rejected = new Set<ClaimedRecipient>();
  for (const { address, reply } of result.rejected) {
    const r = job.recipients.find((candidate) => candidate.address === address && !rejected.has(candidate));
    if (!r) continue;
    rejected.add(r);
    refused([r], replyLine(reply), reply.code, true);
  }
  const rest = rejected.size ? job.recipients.filter((r) => !rejected.has(r)) : job.recipients;
  if (result.ok) {
    if (rest.length) ctx.outcomes.delivered(job, rest, replyLine(result.reply), attempt);
  } else if (rest.length) {
    const e = result.error;
    const beforeMessage = result.stage === 'envelope';
    // a connection that broke before the message went out (a server that drops the session after
    // N messages) nothing can have been delivered: another connection tries at once
    if (beforeMessage && e.responseCode === undefined) {
      (later ??= []).push(...rest);
      laterReply = `451 4.4.2 ${describe(e)} (before the message was sent)`;
    } else refused(rest, describe(e), e.responseCode ?? 451, beforeMessage);
  }
  // a session that ended at its n-th message: the receiver's own limit is n - 1
  if (later && notNow(laterReply) === 'session') path.shaping.learnSessionLimit(nth - 1);
  if (later) ctx.notNow(path, group, later.length === job.recipients.length ? job : { ...job, recipients: later }, laterReply);
  if (result.ok) return true;
  if (!conn.usable || result.error.responseCode === 421) return false;
  return conn.reset();
}

/** Runs one connection of `path` until there is nothing more for it to do. */
export async function runConnection(path: EgressPath, c: PathConnection, ctx: ConnectionContext): Promise<void> {
  const lane = c.openingFor ?? ctx.config.lanes.length - 1;
  let conn: SmtpClient | undefined;
  let lease: Lease | undefined;
  try {
    lease = await ctx.lease(path, c);
    if (!lease) return;
    let lastError = '';
    let hop: NextHop | undefined;
    for (const candidate of c.group.hops) {
      try {
        conn = await connectTo(candidate, path, ctx.config);
        hop = candidate;
        break;
      } catch (err) {
        const e = err as SmtpError;
        // a greeting that says "too many connections from you" is about us, not the host: no other hop will differ
        if (e.response && notNow(e.response) === 'connections') return ctx.refusedAtConnect(path, c, lane, e.response);
        lastError = `${candidate.mx}[${candidate.address}]:${candidate.port}: ${describe(e)}`;
        if (e.response) ctx.observe(path, lane, e.response);
      }
    }
    if (ctx.stopping()) return;
    if (!conn || !hop) return ctx.unreachable(path, c.group, lane, `451 4.4.1 Connection failed: ${lastError}`);
    path.connected(c, hop.mx, hop.address);
    const attempt: AttemptInfo = { mx: hop.mx, address: hop.address, tls: conn.secure, egress: path.egressName, profile: path.shaping.profile.name };
    const profile = path.shaping.profile;
    let sent = 0;
    while (sent < path.shaping.messagesPerConnection() && conn.usable && !ctx.stopping()) {
      const pick = path.next(c, Date.now());
      if (!pick) {
        if (!(await path.waitForWork(c, profile.idleTimeout))) break;
        continue;
      }
      if ('wait' in pick) {
        await new Promise((resolve) => setTimeout(resolve, pick.wait));
        continue;
      }
      const job = pick.job;
      sent++;
      let usable = true;
      try {
        if (!conn.usable) ctx.notNow(path, c.group, job, '421 4.4.2 The server closed the connection while it was idle'); // not tried
        else usable = await sendJob(conn, job, path, c.group, attempt, ctx, sent);
      } finally {
        path.done(job);
      }
      if (!usable) break;
    }
  } finally {
    await conn?.quit();
    lease?.release(); // after the receiver closed: it still counted the connection until then
    path.closed(c);
  }
}

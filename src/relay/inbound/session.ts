// One inbound MX session, from connect to the 250 after DATA: what the smtp-server callbacks of
// the inbound listener (listener.ts) do, in this order.
//   connect  admission (the same limits as the relay listener, its own slots; no client is
//            privileged here), then the screen (screen.ts: greeting wait, pregreet, DNSBL/DNSWL)
//            before the 220;
//   RCPT     only the local domains (anything else is 550 5.7.1: the MX relays for nobody,
//            relayNetworks and authenticated users included, who submit on the relay listener),
//            routing tricks refused (553, as on the relay listener), then the recipient must exist
//            (recipients.ts: 550 5.1.1, or 450 4.1.1 while a callout cannot tell), then
//            greylisting (greylist.ts: 450 4.2.0);
//   DATA     size and line endings (as on the relay listener), forged Authentication-Results
//            removed, then SPF/DKIM/DMARC/ARC (authentication.ts) and the content scanners
//            (scan.ts) at once; a refusal is the reply to DATA (5xx or 4xx: the client keeps the
//            message, nothing is accepted and dropped); otherwise their header fields go on top
//            and the intake (receive/accept.ts) commits the message to the inbound lane, whose
//            route is the domain's mailbox server.
// AUTH is not offered; STARTTLS is. Every refusal is logged (`inbound-refused`, with the stage
// and reason) and counted in `stats`.
// May touch: the sessions it is called for, the intake, the log; its collaborators their own.
import type { SMTPServerSession } from 'smtp-server';
import type { InboundConfig } from '../../config/inbound.ts';
import type { RelayConfig } from '../../config/types.ts';
import { plainAddress } from '../../util/network.ts';
import { formatHostPort } from '../../util/units.ts';
import type { EventLog } from '../log.ts';
import { accept, type Intake } from '../receive/accept.ts';
import { clientSocketOf, type ConnectionAdmission } from '../receive/admission.ts';
import { DataReception } from '../receive/listeners.ts';
import { checkRecipient } from '../receive/policy.ts';
import { smtpError, type SmtpReplyError } from '../receive/reply.ts';
import { withoutForgedResults, type AuthVerdict, type MessageAuthentication } from './authentication.ts';
import type { Greylist } from './greylist.ts';
import type { RecipientCheck } from './recipients.ts';
import { scanMessage, type ContentScanner } from './scan.ts';
import type { ClientScreen } from './screen.ts';

/** What the inbound MX did, by outcome (for /metrics, tests and bench/inbound.ts). */
export class InboundStats {
  /** Connections greeted: after the wait, known good, vouched for by a DNSWL, or with the wait off. */
  readonly greeted = { waited: 0, known: 0, vouched: 0, off: 0 };
  readonly refused = {
    pregreet: 0, dnsbl: 0, relay: 0, unknownRecipient: 0, unverifiedRecipient: 0, greylisted: 0,
    dmarc: 0, spf: 0, scanReject: 0, scanTempfail: 0,
  };
  /** Messages accepted, tagged by a verdict, and accepted unscanned (a scanner down, onError: pass). */
  accepted = 0;
  tagged = 0;
  unscanned = 0;
}

type CallbackFn = (err?: Error | null) => void;

export interface InboundSessionOptions {
  config: RelayConfig;
  intake: Intake;
  log: EventLog;
  admission: ConnectionAdmission;
  screen: ClientScreen;
  recipients: RecipientCheck;
  greylist: Greylist;
  authentication: MessageAuthentication;
  /** The content scanners (inbound/scanners/), asked at end of DATA in this order; empty: none. */
  scanners: ContentScanner[];
  /** The client's forward-confirmed reverse name, if any (cached per address): the scanners weigh it. */
  verifiedName: (ip: string) => Promise<string | undefined>;
  stats: InboundStats;
}

/** What a session learnt at connect. */
interface Screened { vouched: boolean }

export class InboundSessions {
  private readonly config: RelayConfig;
  private readonly inbound: InboundConfig;
  private readonly domains: Set<string>;
  private readonly intake: Intake;
  private readonly log: EventLog;
  private readonly admission: ConnectionAdmission;
  private readonly screen: ClientScreen;
  private readonly recipients: RecipientCheck;
  private readonly greylist: Greylist;
  private readonly authentication: MessageAuthentication;
  private readonly scanners: ContentScanner[];
  private readonly verifiedName: (ip: string) => Promise<string | undefined>;
  readonly stats: InboundStats;
  private readonly screened = new WeakMap<SMTPServerSession, Screened>();
  /** Set once the listener closes: new sessions get 421. */
  closing = false;
  /** Messages being received or judged (a closing listener waits for their replies). */
  readonly reception: DataReception;

  constructor(options: InboundSessionOptions) {
    this.config = options.config;
    this.inbound = options.config.inbound!;
    this.domains = new Set(this.inbound.domains);
    this.intake = options.intake;
    this.log = options.log;
    this.admission = options.admission;
    this.screen = options.screen;
    this.recipients = options.recipients;
    this.greylist = options.greylist;
    this.authentication = options.authentication;
    this.scanners = options.scanners;
    this.verifiedName = options.verifiedName;
    this.stats = options.stats;
    this.reception = new DataReception(options.config.smtp.maxMessageSize);
  }

  private refuse(stage: string, reason: keyof InboundStats['refused'], client: string, err: SmtpReplyError, fields: Record<string, unknown> = {}): SmtpReplyError {
    this.stats.refused[reason]++;
    this.log.emit('inbound-refused', { stage, reason, client, reply: `${err.responseCode} ${err.message}`, ...fields });
    return err;
  }

  onConnect(session: SMTPServerSession, callback: CallbackFn): void {
    if (this.closing) return callback(smtpError(421, '4.3.2', 'Service shutting down, try again later'));
    const refused = this.admission.admit(session, false);
    if (refused) return callback(refused);
    const ip = plainAddress(session.remoteAddress);
    const client = clientSocketOf(session)!;
    void this.screen.judge({ ip, ...client }).then((verdict) => {
      if (!verdict.admit) {
        if (verdict.reason === 'gone') return callback(verdict.reply);
        const score = verdict.score ? { score: verdict.score.score, listedBy: verdict.score.listedBy } : {};
        return callback(this.refuse('connect', verdict.reason, ip, verdict.reply, score));
      }
      this.stats.greeted[verdict.greeting]++;
      this.screened.set(session, { vouched: verdict.vouched });
      // no AUTH on the MX: nobody relays through it
      session.disabledCommands = ['AUTH'];
      callback();
    });
  }

  onClose(session: SMTPServerSession): void {
    this.admission.release(session);
  }

  onRcptTo(address: { address: string }, session: SMTPServerSession, callback: CallbackFn): void {
    const recipient = address.address;
    const ip = plainAddress(session.remoteAddress);
    let domain: string;
    try {
      domain = checkRecipient(recipient);
    } catch (err) {
      return callback(err as Error);
    }
    if (!this.domains.has(domain)) {
      return callback(this.refuse('rcpt', 'relay', ip, smtpError(550, '5.7.1', `Relaying denied: this server receives mail for its own domains only, not for ${domain}`), { rcpt: recipient }));
    }
    const sender = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    void (async () => {
      const found = await this.recipients.check(recipient, domain);
      if (!found.known) {
        const reason = found.reply.responseCode >= 500 ? 'unknownRecipient' : 'unverifiedRecipient';
        return callback(this.refuse('rcpt', reason, ip, found.reply, { from: sender, rcpt: recipient }));
      }
      const grey = await this.greylist.check(ip, sender, recipient, this.screened.get(session)?.vouched);
      if (!grey.pass) {
        const seconds = Math.max(1, Math.ceil(grey.retryIn / 1000));
        const reply = smtpError(450, '4.2.0', `<${recipient}>: Recipient address rejected: Greylisted, try again in ${seconds} s`);
        return callback(this.refuse('rcpt', 'greylisted', ip, reply, { from: sender, rcpt: recipient, network: grey.network }));
      }
      callback();
    })().catch((err: Error) => {
      this.log.emit('inbound-error', { stage: 'rcpt', client: ip, rcpt: recipient, error: err.message });
      callback(smtpError(451, '4.3.0', 'Local error in processing the recipient, try again later'));
    });
  }

  onData(stream: NodeJS.ReadableStream & { sizeExceeded?: boolean }, session: SMTPServerSession, callback: (err?: Error | null, message?: string) => void): void {
    this.reception.receive(stream, callback, async (body) => `2.0.0 Ok: queued as ${await this.judgeAndAccept(body, session)}`);
  }

  /** The verdicts and the scanners on the message, then the commit; resolves with the queue id, rejects with the SMTP refusal. */
  private async judgeAndAccept(received: Buffer, session: SMTPServerSession): Promise<string> {
    const ip = plainAddress(session.remoteAddress);
    const envelope = session.envelope;
    const sender = envelope.mailFrom ? envelope.mailFrom.address : '';
    const recipients = envelope.rcptTo.map((r) => r.address);
    const helo = session.hostNameAppearsAs || undefined;
    const message = withoutForgedResults(received, this.config.smtp.hostname);
    const [auth, scanned] = await Promise.all([
      this.authentication.enabled ? this.authentication.judge(message, { ip, helo, sender }).catch((err: Error) => err) : undefined,
      this.scanners.length ? this.verifiedName(ip).catch(() => undefined).then((hostname) =>
        scanMessage(this.scanners, message, { client: ip, helo, hostname, sender, recipients }, this.inbound.scan.onError)) : undefined,
    ]);
    const fields = { client: ip, from: sender, rcpt: recipients };
    if (auth instanceof Error) {
      this.log.emit('inbound-error', { stage: 'data', ...fields, error: `authentication: ${auth.message}` });
      throw smtpError(451, '4.3.0', 'Local error in checking the message, try again later');
    }
    if (auth?.refusal) throw this.refuse('data', auth.refusal.by, ip, auth.refusal.reply, { ...fields, ...results(auth) });
    for (const u of scanned?.unavailable ?? []) this.log.emit('inbound-scanner-unavailable', { scanner: u.scanner, error: u.error, onError: this.inbound.scan.onError, ...fields });
    const verdict = scanned?.verdict;
    if (verdict && verdict.action !== 'accept') {
      const [code, enhanced, text] = verdict.reply;
      throw this.refuse('data', verdict.action === 'reject' ? 'scanReject' : 'scanTempfail', ip, smtpError(code, enhanced, text), { ...fields, scanners: this.scanners.map((s) => s.name) });
    }
    const headers = [...(auth?.headers ?? []), ...(verdict?.action === 'accept' ? verdict.headers : [])];
    const body = headers.length ? Buffer.concat([Buffer.from(headers.map((h) => `${h}\r\n`).join('')), message]) : message;
    const { id } = await accept(this.intake, {
      sender, recipients, client: ip, body, helo, lane: this.inbound.lane, protocol: 'SMTP',
      listener: formatHostPort({ host: plainAddress(session.localAddress), port: session.localPort }),
      tls: session.secure ? (session as { tlsOptions?: { version?: string; name?: string } }).tlsOptions || {} : undefined,
    });
    this.stats.accepted++;
    if (auth?.tagged) this.stats.tagged++;
    if (scanned?.unavailable.length) this.stats.unscanned++;
    return id;
  }
}

function results(auth: AuthVerdict): Record<string, string> {
  return { spf: auth.spf, dkim: auth.dkim, dmarc: auth.dmarc, arc: auth.arc };
}

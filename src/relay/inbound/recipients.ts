// Which recipients of the local domains exist, decided before the 250 to RCPT so that mail for
// an unknown address is refused in the session (550 5.1.1) and never bounced later to a sender
// that may be forged (backscatter):
//  - `list`: inbound.recipients, addresses and `@domain` for a whole domain;
//  - `callout`: an RCPT probe to the domain's mailbox server (inbound.deliver), as Postfix's
//    reject_unverified_recipient does: MAIL FROM:<>, RCPT TO, RSET, QUIT. A 2xx is a mailbox, a
//    5xx is not; anything else (4xx, no connection, timeout) is not known, and the client is
//    asked to come back (450 4.1.1) rather than have its mail taken on a guess. Answers are
//    cached: found for inbound.callout.positiveTtl, not found for negativeTtl; probes of one
//    address in flight are shared.
// May touch: SMTP connections to the mailbox servers (callout); nothing else.
import type { InboundConfig } from '../../config/inbound.ts';
import { formatHostPort, type HostPort } from '../../util/units.ts';
import { SmtpClient } from '../deliver/smtp-client.ts';
import { smtpError, type SmtpReplyError } from '../receive/reply.ts';

export type RecipientAnswer = { known: true } | { known: false; reply: SmtpReplyError };

const unknownUser = (address: string) => smtpError(550, '5.1.1', `<${address}>: Recipient address rejected: User unknown in local recipient table`);
const MAX_CACHED = 100_000;

export interface RecipientCheckOptions {
  config: InboundConfig;
  /** Our name in the callout's EHLO. */
  helo: string;
  now?: () => number;
}

export class RecipientCheck {
  private readonly config: InboundConfig;
  private readonly helo: string;
  private readonly now: () => number;
  private readonly addresses: Set<string>;
  private readonly wholeDomains: Set<string>;
  private readonly mailboxServers = new Map<string, HostPort>();
  private readonly cache = new Map<string, { until: number; answer: Promise<RecipientAnswer> }>();

  constructor(options: RecipientCheckOptions) {
    this.config = options.config;
    this.helo = options.helo;
    this.now = options.now ?? Date.now;
    const list = this.config.recipients;
    this.addresses = new Set(list.filter((r) => !r.startsWith('@')));
    this.wholeDomains = new Set(list.filter((r) => r.startsWith('@')).map((r) => r.slice(1)));
    for (const { domain, to } of this.config.deliver) this.mailboxServers.set(domain, to);
  }

  /** `address` is in a local domain (the caller checked); `domain` is its lower-case domain. */
  check(address: string, domain: string): Promise<RecipientAnswer> {
    const lower = address.toLowerCase();
    if (this.config.verify === 'list') {
      return Promise.resolve(this.addresses.has(lower) || this.wholeDomains.has(domain) ? { known: true } : { known: false, reply: unknownUser(address) });
    }
    const now = this.now();
    const cached = this.cache.get(lower);
    if (cached && cached.until > now) return cached.answer;
    const entry = { until: now + this.config.callout.timeout * 3, answer: Promise.resolve<RecipientAnswer>({ known: true }) };
    entry.answer = this.callout(address, this.mailboxServers.get(domain)!).then((answer) => {
      const temporary = !answer.known && answer.reply.responseCode < 500;
      // a temporary answer is not kept: the next try asks again
      if (temporary) this.cache.delete(lower);
      else entry.until = this.now() + (answer.known ? this.config.callout.positiveTtl : this.config.callout.negativeTtl);
      return answer;
    });
    this.cache.set(lower, entry);
    if (this.cache.size > MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
    return entry.answer;
  }

  private async callout(address: string, server: HostPort): Promise<RecipientAnswer> {
    const { timeout } = this.config.callout;
    const notKnown = (why: string): RecipientAnswer => ({
      known: false, reply: smtpError(450, '4.1.1', `<${address}>: Recipient address rejected: unverified address: ${why}; try again later`),
    });
    let client: SmtpClient | undefined;
    try {
      client = await SmtpClient.connect({ host: server.host, port: server.port, helo: this.helo, connectTimeout: timeout, commandTimeout: timeout, starttls: false });
      const reply = await client.probe('', address);
      if (reply.code >= 200 && reply.code < 300) return { known: true };
      if (reply.code >= 500) return { known: false, reply: unknownUser(address) };
      return notKnown(`the mailbox server ${formatHostPort(server)} answered ${reply.code} ${reply.text.split('\n')[0]}`);
    } catch (err) {
      return notKnown(`the mailbox server ${formatHostPort(server)} did not answer (${(err as Error).message})`);
    } finally {
      void client?.quit();
    }
  }
}

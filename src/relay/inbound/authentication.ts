// SPF, DKIM, DMARC and ARC of an inbound message, by mailauth, at end of DATA; the verdict
// becomes an Authentication-Results field (RFC 8601, with our smtp.hostname as authserv-id) and
// mailauth's Received-SPF, prepended to the message, and an action (inbound.auth):
//   DMARC fail with p=reject     → dmarcReject (default reject: 550 5.7.1)
//   DMARC fail with p=quarantine → dmarcQuarantine (default tag)
//   SPF fail (DMARC not passed)  → spfFail (default accept; reject is 550 5.7.23, RFC 7372)
// "tag" accepts the message with an X-Mailops-Verdict field saying what failed, for the mailbox
// server's filters. A failure that is the DNS's (temperror) is never refused here. ARC chains are
// verified and reported (arc=pass|fail|none); they do not override a DMARC failure (that needs a
// list of trusted sealers, which the relay does not have).
// Authentication-Results fields that arrive with our authserv-id are forged (or ours from an
// earlier hop of a loop): they are removed before anything reads the message (RFC 8601 section 5).
// May touch: DNS (through InboundDns); nothing else.
import { authenticate, type AuthenticateResult } from 'mailauth';
import type { InboundConfig } from '../../config/inbound.ts';
import { parseMessage, withoutFields } from '../receive/message.ts';
import { smtpError, type SmtpReplyError } from '../receive/reply.ts';
import type { InboundDns } from './dns.ts';

export interface AuthVerdict {
  /** Header lines (without CRLF) to add at the top: Received-SPF, Authentication-Results, and X-Mailops-Verdict when tagged. */
  headers: string[];
  /** Set when the message is refused, with the check that refused it. */
  refusal?: { reply: SmtpReplyError; by: 'dmarc' | 'spf' };
  /** What was tagged, if anything ("dmarc=fail policy=quarantine header.from=example.net"). */
  tagged?: string;
  spf: string;
  dkim: string;
  dmarc: string;
  arc: string;
}

export interface MessageEnvelope { ip: string; helo?: string; sender: string }

/** The message without Authentication-Results fields that carry `authservId` (RFC 8601 section 5). */
export function withoutForgedResults(message: Buffer, authservId: string): Buffer {
  const ours = authservId.toLowerCase();
  const parsed = parseMessage(message);
  return withoutFields(parsed, (field) => {
    if (field.name.toLowerCase() !== 'authentication-results') return false;
    const id = field.value.split(';')[0].trim().split(/\s+/)[0]?.toLowerCase();
    return id === ours;
  }).message;
}

export class MessageAuthentication {
  private readonly config: InboundConfig['auth'];
  private readonly hostname: string;
  private readonly dns: InboundDns;

  constructor(config: InboundConfig['auth'], hostname: string, dns: InboundDns) {
    this.config = config;
    this.hostname = hostname;
    this.dns = dns;
  }

  get enabled(): boolean {
    return this.config.enabled;
  }

  /** `message` without forged results already (withoutForgedResults). */
  async judge(message: Buffer, envelope: MessageEnvelope): Promise<AuthVerdict> {
    const result = await authenticate(message, {
      ip: envelope.ip, helo: envelope.helo, sender: envelope.sender || undefined, mta: this.hostname,
      resolver: this.dns.mailauth as never, disableBimi: true,
    });
    const headers = result.headers.split('\r\n').reduce<string[]>((lines, line) => {
      if (line === '') return lines;
      // continuation lines belong to the field before them
      if (/^[ \t]/.test(line) && lines.length) lines[lines.length - 1] += `\r\n${line}`;
      else lines.push(line);
      return lines;
    }, []);
    const verdict: AuthVerdict = { headers, ...summary(result) };
    const dmarc = result.dmarc || undefined;
    const from = dmarc?.status.header?.from ?? '';
    if (dmarc && dmarc.status.result === 'fail' && (dmarc.policy === 'reject' || dmarc.policy === 'quarantine')) {
      const action = dmarc.policy === 'reject' ? this.config.dmarcReject : this.config.dmarcQuarantine;
      const what = `dmarc=fail policy=${dmarc.policy} header.from=${from}`;
      if (action === 'reject') {
        verdict.refusal = { by: 'dmarc', reply: smtpError(550, '5.7.1', `Message rejected: ${from} publishes a DMARC policy of ${dmarc.policy} and this message fails it (spf=${verdict.spf}, dkim=${verdict.dkim})`) };
      } else if (action === 'tag') {
        verdict.tagged = what;
      }
    }
    const dmarcPassed = dmarc?.status.result === 'pass';
    if (!verdict.refusal && !verdict.tagged && !dmarcPassed && result.spf && result.spf.status.result === 'fail') {
      const what = `spf=fail smtp.mailfrom=${envelope.sender || `postmaster@${envelope.helo ?? envelope.ip}`}`;
      if (this.config.spfFail === 'reject') {
        verdict.refusal = { by: 'spf', reply: smtpError(550, '5.7.23', `Message rejected: the SPF record of ${result.spf.domain} does not allow [${envelope.ip}] to send its mail`) };
      } else if (this.config.spfFail === 'tag') {
        verdict.tagged = what;
      }
    }
    if (verdict.tagged) verdict.headers.push(`X-Mailops-Verdict: ${verdict.tagged}; action=tag; by=${this.hostname}`);
    return verdict;
  }
}

function summary(result: AuthenticateResult): Pick<AuthVerdict, 'spf' | 'dkim' | 'dmarc' | 'arc'> {
  const dkimResults = result.dkim.results ?? [];
  const dkim = dkimResults.some((r) => r.status.result === 'pass') ? 'pass' : dkimResults[0]?.status.result ?? 'none';
  return {
    spf: result.spf ? result.spf.status.result : 'none',
    dkim,
    dmarc: result.dmarc ? result.dmarc.status.result : 'none',
    arc: result.arc ? result.arc.status.result : 'none',
  };
}

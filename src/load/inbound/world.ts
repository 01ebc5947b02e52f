// The senders' side of the internet for an inbound run: who each class of client is (its source
// address in 127.0.0.0/8, its HELO name, its envelope and From: domain), the DNS that makes it so
// (SPF, DKIM and DMARC of the sender domains, forward-confirmed PTR of the MTAs, the DNSBL zone
// listing the "listed" addresses) and the messages each one sends.
//
//   class       source address     domain (MAIL FROM and From:)   SPF     DKIM    DNSBL
//   legitimate  127.10.K.1, K 1-8  senderK.mailops.test          pass    pass    -
//   virus       127.15.K.1, K 1-4  officeK.mailops.test          pass    pass    -
//   listed      127.30.K.1, K 1-16 listK.mailops.test            pass    pass    listed
//   forgery     127.40.R.R         bank.mailops.test (p=reject)  fail    none    -
//   pregreet    127.20.R.R         a name that does not exist    none    none    -
//   noretry     127.21.R.R         a name that does not exist    none    none    -
//
// (R: drawn from the run's seed.) Every address of 127.0.0.0/8 reaches loopback on Linux, so a
// client binds its own and the MX sees as many clients as the run wants. DNS answers are computed
// from the name when asked; the DNSBL also lists 127.0.0.2, its RFC 5782 test entry.
// Touches nothing: records and bytes only (run.ts serves and sends them).
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { RecordSet } from '../../util/dns-server.ts';
import { dkimRecord } from '../../relay/sign/record.ts';
import { dkimSignatures } from '../../relay/sign/dkim.ts';
import type { SigningKey } from '../../relay/sign/keys.ts';
import { Random } from '../generate/random.ts';
import type { InboundClass, InboundScenario } from './scenario.ts';
import { RETRYING } from './scenario.ts';

/** One client of the run, for one message. */
export interface Sender {
  class: InboundClass;
  /** Source address to bind (127.0.0.0/8). */
  address: string;
  helo: string;
  /** Envelope sender; the From: header field uses the same address. */
  from: string;
  /** Talks before the greeting. */
  pregreet: boolean;
  /** Comes back after a temporary refusal (as long as scenario.retry lasts). */
  retries: boolean;
}

const ZONE = 'mailops.test';
const DKIM_SELECTOR = 'load';
/** The address bank.mailops.test's SPF allows: none of the forgers'. */
const BANK_MTA = '127.41.0.1';
/** The classes sent by real-looking MTAs: a few fixed ones per class, each with its own sender domain. */
const MTA_GROUPS: { class: InboundClass; prefix: string; block: string; count: number }[] = [
  { class: 'legitimate', prefix: 'sender', block: '127.10', count: 8 },
  { class: 'virus', prefix: 'office', block: '127.15', count: 4 },
  { class: 'listed', prefix: 'list', block: '127.30', count: 16 },
];

/**
 * The EICAR test file (68 bytes), every virus scanner's harmless test "virus". Built from two
 * halves so that this source file is not itself flagged by a scanner on a developer's machine.
 */
export function eicarTestFile(): string {
  return 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR' + '-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';
}

/** The lines of a body: plain prose, no line starting with a dot (nothing to stuff). */
const PROSE = [
  'Thank you for your order. The items below have been packed and will leave our warehouse today.',
  'Your invoice is available in your account; payment is due within fourteen days of delivery.',
  'If anything is missing or damaged, reply to this message and we will sort it out at once.',
  'The delivery company will send you a tracking link as soon as the parcel is on its way.',
];

export class SenderWorld {
  private readonly scenario: InboundScenario;
  private readonly random: Random;
  /** One key signs for every DKIM-signing domain of the run (each publishes it under its own name). */
  private readonly dkimPrivate: KeyObject;
  private readonly dkimTxt: string;
  private readonly runId: string;

  constructor(scenario: InboundScenario, seed: number, runId: string) {
    this.scenario = scenario;
    this.random = new Random(seed * 31 + 7);
    this.runId = runId;
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.dkimPrivate = privateKey;
    this.dkimTxt = dkimRecord(publicKey);
  }

  /** The client that sends message `n` of class `cls`. */
  sender(cls: InboundClass, n: number): Sender {
    const retries = RETRYING.has(cls);
    const mta = MTA_GROUPS.find((group) => group.class === cls);
    if (mta) {
      const k = 1 + (n % mta.count);
      const domain = `${mta.prefix}${k}.${ZONE}`;
      return { class: cls, address: `${mta.block}.${k}.1`, helo: `mta.${domain}`, from: `mailer@${domain}`, pregreet: false, retries };
    }
    const octet = () => 1 + Math.floor(this.random.next() * 254);
    const tag = Math.floor(this.random.next() * 1e9).toString(36);
    if (cls === 'forgery') {
      return { class: cls, address: `127.40.${octet()}.${octet()}`, helo: `host-${tag}.example.net`, from: `security@bank.${ZONE}`, pregreet: false, retries };
    }
    const block = cls === 'pregreet' ? '127.20' : '127.21';
    return { class: cls, address: `${block}.${octet()}.${octet()}`, helo: `pc-${tag}`, from: `offer@${tag}.nowhere.${ZONE}`, pregreet: cls === 'pregreet', retries };
  }

  /** The message `n` as sent on each attempt: DKIM-signed for the domains that sign, an EICAR attachment for the virus class. */
  async message(sender: Sender, n: number, to: string, firstAttemptAt: Date): Promise<Buffer> {
    const domain = sender.from.slice(sender.from.indexOf('@') + 1);
    const lines: string[] = [];
    for (let size = 0; size < this.scenario.size;) {
      const line = PROSE[(n + lines.length) % PROSE.length];
      lines.push(line);
      size += line.length + 2;
    }
    const body = lines.join('\r\n');
    const head = [
      `From: ${sender.class === 'forgery' ? 'Bank Security' : 'Order Desk'} <${sender.from}>`,
      `To: <${to}>`,
      `Subject: ${sender.class === 'forgery' ? 'Your account is locked' : `Order ${n}`}`,
      `Date: ${firstAttemptAt.toUTCString().replace('GMT', '+0000')}`,
      `Message-ID: <${this.runId}.${n}@${domain}>`,
      'MIME-Version: 1.0',
      // lets the mailbox server behind the MX tell the classes apart
      `X-Mailops-Inbound-Class: ${sender.class}`,
    ];
    let text: string;
    if (sender.class === 'virus') {
      const boundary = `part-${this.runId}-${n}`;
      text = [...head, `Content-Type: multipart/mixed; boundary="${boundary}"`, '',
        `--${boundary}`, 'Content-Type: text/plain; charset=us-ascii', '', body, '',
        `--${boundary}`, 'Content-Type: application/octet-stream; name="invoice.com"',
        'Content-Disposition: attachment; filename="invoice.com"', 'Content-Transfer-Encoding: base64', '',
        Buffer.from(eicarTestFile()).toString('base64'), '', `--${boundary}--`, ''].join('\r\n');
    } else {
      text = [...head, 'Content-Type: text/plain; charset=us-ascii', '', body, ''].join('\r\n');
    }
    const message = Buffer.from(text);
    // the MTA classes sign; the forger cannot, and the bots do not
    if (!MTA_GROUPS.some((group) => group.class === sender.class)) return message;
    const key: SigningKey = { domain, selector: DKIM_SELECTOR, algorithm: 'rsa-sha256', key: this.dkimPrivate };
    const headerEnd = message.indexOf('\r\n\r\n') + 4;
    return Buffer.concat([Buffer.from(await dkimSignatures(message, headerEnd, [key])), message]);
  }

  /** The DNS answers of the senders' world (a normalized name: lower case, no trailing dot); undefined: NXDOMAIN. */
  readonly records = (name: string): RecordSet | undefined => {
    const zone = this.scenario.dnsblZone;
    if (name.endsWith(`.${zone}`)) return this.dnsbl(name.slice(0, -zone.length - 1));
    const ptr = /^1\.(\d+)\.(\d+)\.127\.in-addr\.arpa$/.exec(name);
    if (ptr) {
      const k = Number(ptr[1]);
      const mta = MTA_GROUPS.find((group) => group.block === `127.${ptr[2]}`);
      return mta && k >= 1 && k <= mta.count ? { PTR: [`mta.${mta.prefix}${k}.${ZONE}`] } : undefined;
    }
    const own = /^(?:(_dmarc|load\._domainkey|mta)\.)?([a-z]+)(\d+)\.mailops\.test$/.exec(name);
    const mta = own && MTA_GROUPS.find((group) => group.prefix === own[2]);
    if (own && mta) {
      const [, label, , digits] = own;
      const k = Number(digits);
      if (k < 1 || k > mta.count) return undefined;
      if (label === 'mta') return { A: [`${mta.block}.${k}.1`] };
      if (label === '_dmarc') return { TXT: ['v=DMARC1; p=reject'] };
      if (label) return { TXT: [this.dkimTxt] };
      return { MX: [{ priority: 10, exchange: `mta.${name}` }], TXT: [`v=spf1 ip4:${mta.block}.${k}.0/24 -all`] };
    }
    if (name === `bank.${ZONE}`) return { MX: [{ priority: 10, exchange: `mx.bank.${ZONE}` }], TXT: [`v=spf1 ip4:${BANK_MTA} -all`] };
    if (name === `_dmarc.bank.${ZONE}`) return { TXT: ['v=DMARC1; p=reject'] };
    if (name === `mx.bank.${ZONE}`) return { A: [BANK_MTA] };
    return undefined;
  };

  /** `prefix` is the reversed address ("1.1.30.127"): the "listed" block and 127.0.0.2 are listed. */
  private dnsbl(prefix: string): RecordSet | undefined {
    const octets = prefix.split('.');
    if (octets.length !== 4) return undefined;
    const address = octets.reverse().join('.');
    if (address !== '127.0.0.2' && !address.startsWith('127.30.')) return undefined;
    return { A: ['127.0.0.2'], TXT: [`${address} is listed by mailops load inbound (a test zone)`] };
  }
}

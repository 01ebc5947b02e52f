// One SMTP connection to the sink. A small hand-written server side of SMTP (RFC 5321 with
// PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES, SMTPUTF8, STARTTLS) rather than smtp-server:
// the sink must keep up with Postfix's smtp-sink, so message data is scanned for the end marker
// and never stored (only the header block is kept, to read X-Mailops-Load, and whole messages only
// when sampled for DKIM). Replies without simulated latency are written at once; a delayed reply
// holds the commands behind it (pipelining keeps its order) and pauses the socket meanwhile.
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { plainAddress } from '../../util/network.ts';
import { parseLoadTag } from '../load-header.ts';
import type { Policy, Refusal } from '../policy.ts';
import type { Phase, Profile } from '../profiles.ts';
import type { ReplyVars } from '../reply.ts';
import type { ReplyPhase, Stats } from '../stats.ts';

export interface DkimSampler {
  sample(): boolean;
  verify(message: Buffer): void;
}

export interface SessionContext {
  hostname: string;
  maxSize: number;
  idleMs: number;
  policy: Policy;
  stats: Stats;
  secureContext?: SecureContext;
  dkim?: DkimSampler;
  /** The listener's profile (or --profile): binds connections at connect and rules all recipients. */
  profile?: Profile;
  /**
   * The listener plays one mail server among several of its profile (`--dns`): connections and
   * rates count per server too, keyed by the socket's local address.
   */
  perServer?: boolean;
  sessions: Set<Session>;
}

interface Recipient { address: string; domain: string; profile: string; p: Profile }
type After = 'close' | 'starttls';

const END = Buffer.from('\r\n.\r\n');
const CRLF2 = Buffer.from('\r\n\r\n');
const START = Buffer.from('\r\n');
const EMPTY = Buffer.alloc(0);
const MAX_LINE = 4096;
const MAX_HEADER = 64 * 1024;
const MAX_RECIPIENTS = 1000;
const MAX_ERRORS = 20;
let queueId = 0;

export class Session {
  private socket: Socket;
  private readonly plain: Socket;
  private readonly ctx: SessionContext;
  private readonly ip: string;
  /** The server this connection reached (its local address) when counted per server, else ''. */
  private readonly server: string;
  private secure = false;
  private profile: Profile | undefined;
  private bound = false;
  private helo: string | undefined;
  private sender: string | undefined;
  private recipients: Recipient[] = [];
  private messages = 0;
  private errors = 0;
  private buf: Buffer | null = null;
  private out = '';
  private busy = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  // DATA state
  private data = false;
  private prev = START;
  private size = 0;
  private header = '';
  private headerDone = false;
  private capture: Buffer[] | null = null;
  private captureSize = 0;

  constructor(socket: Socket, ctx: SessionContext) {
    this.socket = this.plain = socket;
    this.ctx = ctx;
    this.ip = plainAddress(socket.remoteAddress ?? '');
    this.server = ctx.perServer ? plainAddress(socket.localAddress ?? '') : '';
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('error', () => {});
    socket.on('close', this.onClose);
    socket.setTimeout(ctx.idleMs, () => this.respond('421 4.4.2 Idle timeout, closing connection\r\n', 0, 'close'));
    ctx.sessions.add(this);
    ctx.stats.connections++;
    ctx.stats.open++;
    const profile = ctx.profile;
    if (profile) {
      const refusal = ctx.policy.bind(profile, this.ip, this.server);
      if (refusal) {
        this.refuse('connect', refusal, this.vars(), ctx.policy.delay(profile, 'connect'), profile);
        return;
      }
      this.profile = profile;
      this.bound = true;
    }
    this.respond(`220 ${ctx.hostname} ESMTP mailops sink\r\n`, this.delay('connect'));
    this.flush();
  }

  /** Ends the connection at once (sink shutdown). */
  destroy(): void {
    this.socket.destroy();
    this.plain.destroy();
  }

  private readonly onData = (chunk: Buffer): void => {
    this.buf = this.buf === null ? chunk : Buffer.concat([this.buf, chunk]);
    if (this.busy) this.socket.pause();
    else this.process();
  };

  private readonly onClose = (): void => {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.bound) this.ctx.policy.unbind(this.profile!, this.ip, this.server);
    this.bound = false;
    this.ctx.stats.open--;
    this.ctx.sessions.delete(this);
  };

  private process(): void {
    while (this.buf !== null && !this.busy && !this.closed) {
      if (this.data) {
        this.consumeData();
        continue;
      }
      const buf = this.buf;
      const lf = buf.indexOf(10);
      if (lf < 0) {
        if (buf.length > MAX_LINE) {
          this.buf = null;
          this.error('500 5.5.2 Error: line too long\r\n');
        }
        break;
      }
      this.buf = lf + 1 < buf.length ? buf.subarray(lf + 1) : null;
      if (lf > MAX_LINE) this.error('500 5.5.2 Error: line too long\r\n');
      else this.command(buf.toString('latin1', 0, lf > 0 && buf[lf - 1] === 13 ? lf - 1 : lf));
    }
    this.flush();
  }

  private flush(): void {
    if (this.out !== '') {
      if (!this.closed) this.socket.write(this.out);
      this.out = '';
    }
  }

  /** Queues a reply; with a delay the session waits (and reads nothing) until it is sent. */
  private respond(text: string, delayMs: number, after?: After): void {
    if (delayMs >= 1) {
      this.flush();
      this.busy = true;
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.busy = false;
        if (this.closed) return;
        this.out += text;
        this.flush();
        if (after) this.after(after);
        else {
          this.socket.resume();
          this.process();
        }
      }, delayMs);
      return;
    }
    this.out += text;
    if (after) {
      this.flush();
      this.after(after);
    }
  }

  private after(after: After): void {
    if (after === 'starttls') return this.startTls();
    this.closed = true;
    this.buf = null;
    this.socket.end();
  }

  /**
   * `profile`: whose reply this is, for the refusal counts (another recipient's on the shared port).
   * `recipients`: whom the reply is about, so a 4xx counts them as deferred now (see deferred.ts).
   */
  private refuse(phase: ReplyPhase, refusal: Refusal, vars: ReplyVars, delayMs: number, profile = this.profile, recipients?: readonly string[]): void {
    if (refusal.silent) {
      this.after('close');
      return;
    }
    this.ctx.stats.reply(phase, refusal.reply.code, { profile: profile?.name, reply: refusal.reply, vars }, recipients);
    this.respond(refusal.reply.render(vars), delayMs, refusal.close ? 'close' : undefined);
  }

  private delay(phase: Phase, profile = this.profile): number {
    return this.ctx.policy.delay(profile, phase);
  }

  private vars(extra: ReplyVars = {}): ReplyVars {
    return { ip: this.ip, helo: this.helo, sender: this.sender, ...extra };
  }

  private error(text: string): void {
    if (++this.errors > MAX_ERRORS) this.respond('421 4.7.0 Too many errors, closing connection\r\n', 0, 'close');
    else this.respond(text, 0);
  }

  private reset(): void {
    this.sender = undefined;
    this.recipients = [];
  }

  private command(line: string): void {
    const sp = line.indexOf(' ');
    const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
    const arg = sp < 0 ? '' : line.slice(sp + 1).trim();
    switch (verb) {
      case 'EHLO':
      case 'HELO':
        if (!arg) return this.error(`501 5.5.4 Syntax: ${verb} hostname\r\n`);
        this.helo = arg;
        this.reset();
        return this.respond(verb === 'HELO' ? `250 ${this.ctx.hostname}\r\n` : this.ehlo(), this.delay('ehlo'));
      case 'MAIL':
        return this.mail(arg);
      case 'RCPT':
        return this.rcpt(arg);
      case 'DATA':
        return this.dataCommand();
      case 'RSET':
        this.reset();
        return this.respond('250 2.0.0 Ok\r\n', 0);
      case 'NOOP':
        return this.respond('250 2.0.0 Ok\r\n', 0);
      case 'QUIT':
        return this.respond('221 2.0.0 Bye\r\n', 0, 'close');
      case 'VRFY':
        return this.respond('252 2.0.0 Cannot VRFY user, but will accept message\r\n', 0);
      case 'HELP':
        return this.respond('214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY STARTTLS\r\n', 0);
      case 'STARTTLS':
        if (this.secure) return this.error('554 5.5.1 Error: TLS already active\r\n');
        if (!this.ctx.secureContext) return this.error('454 4.7.0 TLS not available\r\n');
        this.buf = null; // RFC 3207: anything pipelined after STARTTLS is discarded
        return this.respond('220 2.0.0 Ready to start TLS\r\n', 0, 'starttls');
      default:
        return this.error(`502 5.5.2 Error: command not recognized: ${verb.slice(0, 20)}\r\n`);
    }
  }

  private ehlo(): string {
    const lines = [`${this.ctx.hostname} Hello ${this.helo}`, 'PIPELINING', `SIZE ${this.ctx.maxSize}`, '8BITMIME', 'ENHANCEDSTATUSCODES', 'SMTPUTF8'];
    if (this.ctx.secureContext && !this.secure) lines.push('STARTTLS');
    return lines.map((l, i) => `250${i < lines.length - 1 ? '-' : ' '}${l}\r\n`).join('');
  }

  private mail(arg: string): void {
    if (!this.helo) return this.error('503 5.5.1 Error: send HELO/EHLO first\r\n');
    if (this.sender !== undefined) return this.error('503 5.5.1 Error: nested MAIL command\r\n');
    const m = /^FROM:\s*<([^>]*)>(.*)$/i.exec(arg);
    if (!m) return this.error('501 5.5.4 Syntax: MAIL FROM:<address>\r\n');
    const size = /(?:^|\s)SIZE=(\d+)/i.exec(m[2]);
    const delay = this.delay('mail');
    if (size && Number(size[1]) > this.ctx.maxSize) {
      this.ctx.stats.reply('mail', 552);
      return this.respond('552 5.3.4 Message size exceeds fixed limit\r\n', delay);
    }
    if (this.profile) {
      const refusal = this.ctx.policy.messageCap(this.profile, this.messages) ?? this.ctx.policy.rate(this.profile, this.ip, 'mail', Date.now(), this.server);
      if (refusal) return this.refuse('mail', refusal, this.vars({ sender: m[1], limit: this.profile.maxMessagesPerConnection?.limit }), delay);
    }
    this.sender = m[1];
    this.ctx.stats.reply('mail', 250);
    this.respond('250 2.1.0 Ok\r\n', delay);
  }

  private rcpt(arg: string): void {
    if (this.sender === undefined) return this.error('503 5.5.1 Error: need MAIL command\r\n');
    const m = /^TO:\s*<([^>]*)>/i.exec(arg);
    if (!m) return this.error('501 5.5.4 Syntax: RCPT TO:<address>\r\n');
    const address = m[1];
    const at = address.lastIndexOf('@');
    if (at < 1 || at === address.length - 1) return this.error(`501 5.1.3 Bad recipient address syntax: <${address.slice(0, 100)}>\r\n`);
    const domain = address.slice(at + 1).toLowerCase();
    const policy = this.ctx.policy;
    const profile = this.ctx.profile ?? policy.profile(domain);
    const vars = () => this.vars({ recipient: address, domain });
    const delay = this.delay('rcpt', profile);
    const now = Date.now();
    if (this.recipients.length >= MAX_RECIPIENTS) {
      this.ctx.stats.reply('rcpt', 452, undefined, [address]);
      return this.respond('452 4.5.3 Error: too many recipients\r\n', delay);
    }
    if (!this.profile) {
      // On the shared port the first recipient decides which provider this connection talks to:
      // the connection-level checks (refusal, connection cap) and MAIL-phase throttling run now.
      const refused = policy.bind(profile, this.ip, this.server);
      if (refused) return this.refuse('rcpt', refused, vars(), delay, profile, [address]);
      this.profile = profile;
      this.bound = true;
      const throttled = policy.rate(profile, this.ip, 'mail', now, this.server);
      if (throttled) return this.refuse('rcpt', throttled, vars(), delay, profile, [address]);
    }
    const refusal = policy.rate(profile, this.ip, 'rcpt', now, this.server) ?? policy.recipient(profile, address, this.sender, this.ip, this.secure, now);
    if (refusal) return this.refuse('rcpt', refusal, vars(), delay, profile, [address]);
    this.recipients.push({ address, domain, profile: profile.name, p: profile });
    this.ctx.stats.reply('rcpt', 250);
    this.respond('250 2.1.5 Ok\r\n', delay);
  }

  private dataCommand(): void {
    if (this.sender === undefined) return this.error('503 5.5.1 Error: need MAIL command\r\n');
    if (this.recipients.length === 0) return this.error('554 5.5.1 Error: no valid recipients\r\n');
    this.data = true;
    this.prev = START;
    this.size = 0;
    this.header = '';
    this.headerDone = false;
    this.capture = this.ctx.dkim?.sample() ? [] : null;
    this.captureSize = 0;
    this.respond('354 End data with <CR><LF>.<CR><LF>\r\n', this.delay('data', this.recipients[0].p));
  }

  /** Scans this.buf for the end of DATA; keeps only what the header scan and DKIM sampling need. */
  private consumeData(): void {
    const chunk = this.buf!;
    let end = -1;
    const first = chunk[0];
    if (first === 46 || first === 13 || first === 10) {
      // The end marker may start in the previous chunk.
      const joint = Buffer.concat([this.prev, chunk.subarray(0, 4)]);
      const i = joint.indexOf(END);
      if (i >= 0) end = i + 5 - this.prev.length;
    }
    if (end < 0) {
      const i = chunk.indexOf(END);
      if (i >= 0) end = i + 5;
    }
    // Content runs up to the CRLF before the final "."; across a chunk boundary it can end before
    // this chunk (negative), when the "." already counted belonged to the marker.
    const contentEnd = end < 0 ? chunk.length : end - 3;
    const piece = contentEnd > 0 ? chunk.subarray(0, contentEnd) : EMPTY;
    this.size += contentEnd;
    if (!this.headerDone) this.scanHeader(piece);
    if (this.capture) {
      this.captureSize += piece.length;
      if (this.captureSize > this.ctx.maxSize) {
        this.capture = null;
        this.ctx.stats.dkim.skipped++;
      } else if (piece.length) this.capture.push(Buffer.from(piece));
    }
    if (end < 0) {
      this.prev = chunk.length >= 4 ? Buffer.from(chunk.subarray(chunk.length - 4)) : Buffer.concat([this.prev, chunk]).subarray(-4);
      this.buf = null;
      return;
    }
    this.buf = end < chunk.length ? chunk.subarray(end) : null;
    this.data = false;
    this.endOfData(Math.min(0, contentEnd));
  }

  private scanHeader(piece: Buffer): void {
    if (this.header === '') {
      if (piece.length >= 2 && piece[0] === 13 && piece[1] === 10) {
        this.headerDone = true; // no header at all
        return;
      }
      const i = piece.indexOf(CRLF2);
      if (i >= 0) {
        this.header = piece.toString('latin1', 0, i + 2);
        this.headerDone = true;
        return;
      }
    }
    const before = this.header.length;
    this.header += piece.toString('latin1', 0, Math.min(piece.length, MAX_HEADER - before));
    const j = this.header.indexOf('\r\n\r\n', Math.max(0, before - 3));
    if (j >= 0) this.header = this.header.slice(0, j + 2);
    if (j >= 0 || this.header.length >= MAX_HEADER) this.headerDone = true;
  }

  private endOfData(trim: number): void {
    const ctx = this.ctx;
    const now = Date.now();
    const profile = this.profile ?? this.recipients[0].p;
    const delay = this.delay('dataEnd', profile);
    const recipients = this.recipients;
    const capture = this.capture;
    this.capture = null;
    this.reset();
    // The end of data decides on every recipient of the message: accepted, deferred or refused.
    const addresses = recipients.map((r) => r.address);
    if (this.size > ctx.maxSize) {
      ctx.stats.reply('dataEnd', 552, undefined, addresses);
      return this.respond('552 5.3.4 Error: message size exceeds fixed limit\r\n', delay);
    }
    const profiles = recipients.map((r) => r.p);
    for (const p of profiles) {
      const refusal = ctx.policy.rate(p, this.ip, 'dataEnd', now, this.server);
      if (refusal) return this.refuse('dataEnd', refusal, this.vars({ domain: recipients[0].domain }), delay, p, addresses);
    }
    ctx.stats.message(recipients, this.size, this.header.length > 20 ? parseLoadTag(this.header) : undefined, now);
    ctx.policy.accepted(profiles, this.ip, now, this.server);
    this.messages++;
    if (capture && ctx.dkim) {
      const raw = Buffer.concat(capture);
      ctx.dkim.verify(unstuff(trim < 0 ? raw.subarray(0, Math.max(0, raw.length + trim)) : raw));
    }
    ctx.stats.reply('dataEnd', 250, undefined, addresses);
    this.respond(`250 2.0.0 Ok: queued as S${(++queueId).toString(16).toUpperCase()}\r\n`, delay);
  }

  private startTls(): void {
    const plain = this.plain;
    plain.removeListener('data', this.onData);
    this.buf = null;
    const secure = new TLSSocket(plain, { isServer: true, secureContext: this.ctx.secureContext });
    secure.on('error', () => plain.destroy());
    secure.once('secure', () => {
      this.socket = secure;
      this.secure = true;
      this.helo = undefined; // RFC 3207: the client starts over with EHLO
      this.reset();
      secure.on('data', this.onData);
    });
  }
}

/** Removes SMTP dot-stuffing ("\r\n.." → "\r\n."). */
function unstuff(raw: Buffer): Buffer {
  const text = raw.toString('latin1', 0, raw.length);
  return text.includes('\n.') || text.startsWith('.') ? Buffer.from(text.replace(/(^|\n)\./g, '$1'), 'latin1') : raw;
}

// The relay's outbound SMTP client, written for the delivery hot path: with PIPELINING (RFC 2920)
// a transaction costs two writes (MAIL, RCPT… and DATA together; then the body with its end mark)
// and two wake-ups, where a command-by-command client needs one of each per command. The body
// goes out as stored: dot-stuffing copies it only when a line starts with a dot. Opportunistic
// STARTTLS as a public MX expects; certificates are not verified (there is no name the sender
// could trust without DANE or MTA-STS). Errors carry `code` (ECONNECTION, ETIMEDOUT, ETLS,
// EPROTOCOL, EENVELOPE, EMESSAGE) and, when a reply caused them, `responseCode` and `response`.
// TLS costs little per connection: one client context for every session (building one loads the
// CA store), and each server's last session ticket is offered again (resumption skips the key
// exchange on both ends, as Postfix's smtp_tls_session_cache does).
import { connect as tcpConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, createSecureContext, type SecureContext } from 'node:tls';
import { ReplyParser, replyLine, type Reply } from '../../util/smtp-reply.ts';

export class SmtpError extends Error {
  readonly code: string;
  readonly responseCode?: number;
  readonly response?: string;
  constructor(code: string, message: string, reply?: Reply) {
    super(reply ? `${message}: ${replyLine(reply)}` : message);
    this.code = code;
    if (reply) {
      this.responseCode = reply.code;
      this.response = replyLine(reply);
    }
  }
}

export interface ClientOptions {
  host: string;
  port: number;
  /** Our name in EHLO. */
  helo: string;
  localAddress?: string;
  /** The MX name, for SNI (left out when it is an address literal). */
  servername?: string;
  connectTimeout: number;
  /** How long to wait for any one reply. */
  commandTimeout: number;
  /** Upgrade with STARTTLS when offered (default); false after a failed handshake with this host. */
  starttls?: boolean;
}

export interface Rejection { address: string; reply: Reply }

let clientContext: SecureContext | undefined;

/** The last TLS session each server (host:port) gave us, oldest first; bounded. */
const tlsSessions = new Map<string, Buffer>();
const MAX_TLS_SESSIONS = 2000;

function rememberSession(server: string, session: Buffer): void {
  tlsSessions.delete(server);
  tlsSessions.set(server, session);
  if (tlsSessions.size > MAX_TLS_SESSIONS) tlsSessions.delete(tlsSessions.keys().next().value!);
}

/**
 * A transaction's outcome: the DATA reply when accepted, else the error and whether it came before
 * any of the message was sent (`envelope`: nothing can have been delivered) or after (`message`);
 * rejected recipients either way.
 */
export type SendResult =
  | { ok: true; reply: Reply; rejected: Rejection[] }
  | { ok: false; error: SmtpError; rejected: Rejection[]; stage: 'envelope' | 'message' };

/** The replies that came, in order, and what broke the connection before the rest could. */
interface Replies { replies: Reply[]; broken?: SmtpError }

async function settle(pending: Promise<Reply>[]): Promise<Replies> {
  const replies: Reply[] = [];
  for (const promise of pending) {
    try {
      replies.push(await promise);
    } catch (err) {
      for (const rest of pending) rest.catch(() => {}); // they fail alike; this one says why
      return { replies, broken: err as SmtpError };
    }
  }
  return { replies };
}

type Waiter = { resolve: (reply: Reply) => void; reject: (err: SmtpError) => void };

const DOT = Buffer.from('.');
const DOT_END = Buffer.from('.\r\n');
const CRLF_DOT_END = Buffer.from('\r\n.\r\n');

/** The body as DATA must carry it: lines starting with a dot get one more (RFC 5321 4.5.2). */
export function dotStuffed(body: Buffer): Buffer {
  const first = body[0] === 0x2e;
  let at = body.indexOf('\n.');
  if (!first && at === -1) return body;
  const parts: Buffer[] = first ? [DOT] : [];
  let from = 0;
  for (; at !== -1; at = body.indexOf('\n.', from)) {
    parts.push(body.subarray(from, at + 1), DOT);
    from = at + 1;
  }
  parts.push(body.subarray(from));
  return Buffer.concat(parts);
}

function mailParam(address: string): string {
  // eslint-disable-next-line no-control-regex
  return /[^\x00-\x7f]/.test(address) ? ' SMTPUTF8' : '';
}

export class SmtpClient {
  private socket: Socket;
  private parser = new ReplyParser();
  private readonly waiters: Waiter[] = [];
  /** Set once the connection cannot carry another transaction. */
  private broken: SmtpError | undefined;
  private quitting = false;
  private readonly options: ClientOptions;
  readonly extensions = new Map<string, string>();
  secure = false;
  /** The TLS session was resumed (no key exchange). */
  tlsResumed = false;

  private constructor(socket: Socket, options: ClientOptions) {
    this.socket = socket;
    this.options = options;
    this.attach(socket);
  }

  /** Connects, reads the greeting, says EHLO (HELO if refused) and upgrades with STARTTLS when offered. */
  static async connect(options: ClientOptions): Promise<SmtpClient> {
    const socket = tcpConnect({ host: options.host, port: options.port, localAddress: options.localAddress });
    socket.setNoDelay(true);
    const client = new SmtpClient(socket, options);
    const timer = setTimeout(() => client.fail(new SmtpError('ETIMEDOUT', `No greeting within ${options.connectTimeout} ms`)), options.connectTimeout);
    try {
      const greeting = await client.read();
      if (greeting.code !== 220) throw new SmtpError('EPROTOCOL', 'Greeting refused', greeting);
      clearTimeout(timer);
      socket.setTimeout(options.commandTimeout);
      await client.hello();
      if (options.starttls !== false && client.extensions.has('STARTTLS')) {
        const reply = await client.command('STARTTLS');
        // a refused STARTTLS leaves the session in clear, as opportunistic TLS allows
        if (reply.code === 220) {
          await client.upgrade();
          await client.hello();
        }
      }
      return client;
    } catch (err) {
      clearTimeout(timer);
      client.close();
      throw err;
    }
  }

  get usable(): boolean {
    return !this.broken;
  }

  /** One mail transaction. Never rejects: a broken connection shows as `usable` turning false. */
  async send(from: string, to: string[], body: Buffer): Promise<SendResult> {
    const rejected: Rejection[] = [];
    if (this.broken) return { ok: false, error: this.broken, rejected, stage: 'envelope' };
    const params = `${this.extensions.has('8BITMIME') ? ' BODY=8BITMIME' : ''}${this.extensions.has('SIZE') ? ` SIZE=${body.length}` : ''}${mailParam(from + to.join(''))}`;
    const commands = [`MAIL FROM:<${from}>${params}`, ...to.map((address) => `RCPT TO:<${address}>`), 'DATA'];
    try {
      const { replies, broken } = this.extensions.has('PIPELINING') ? await this.pipeline(commands) : await this.oneByOne(commands);
      const [mail, ...rest] = replies;
      if (!mail) return { ok: false, error: broken!, rejected, stage: 'envelope' };
      const data = rest.length > to.length ? rest[to.length] : undefined;
      // after a refused MAIL the RCPT replies say nothing about the recipients
      if (mail.code < 300) {
        to.forEach((address, i) => {
          const reply = rest[i];
          if (reply && reply.code >= 300) rejected.push({ address, reply });
        });
      }
      let error: SmtpError | undefined;
      if (mail.code >= 300) error = new SmtpError('EENVELOPE', 'Sender refused', mail);
      else if (rejected.length === to.length) error = new SmtpError('EENVELOPE', 'All recipients refused', rejected[rejected.length - 1].reply);
      else if (broken) error = broken; // recipients without a reply share the connection's fate
      else if (!data || data.code !== 354) error = new SmtpError('EENVELOPE', 'DATA refused', data ?? mail);
      if (error) {
        // a server that said 354 anyway gets an empty message's end mark, whose reply is ignored
        if (data?.code === 354 && !broken) await this.write(DOT_END).catch(() => {});
        return { ok: false, error, rejected, stage: 'envelope' };
      }
      const stuffed = dotStuffed(body);
      const end = stuffed.length === 0 || stuffed[stuffed.length - 1] === 0x0a ? DOT_END : CRLF_DOT_END;
      const final = await this.write(stuffed, end);
      if (final.code >= 300) return { ok: false, error: new SmtpError('EMESSAGE', 'Message refused', final), rejected, stage: 'message' };
      return { ok: true, reply: final, rejected };
    } catch (err) {
      return { ok: false, error: err as SmtpError, rejected, stage: 'message' };
    }
  }

  /**
   * A recipient check without a message (the inbound MX's callout, inbound/recipients.ts): MAIL
   * FROM, RCPT TO, then RSET, one command at a time. Resolves with the RCPT reply; rejects when
   * the sender is refused (the reply then says nothing about the recipient) or the connection breaks.
   */
  async probe(from: string, to: string): Promise<Reply> {
    if (this.broken) throw this.broken;
    const mail = await this.command(`MAIL FROM:<${from}>${mailParam(from + to)}`);
    if (mail.code >= 300) throw new SmtpError('EENVELOPE', 'Sender refused', mail);
    const rcpt = await this.command(`RCPT TO:<${to}>`);
    await this.reset();
    return rcpt;
  }

  /** Ends a failed transaction so that the connection can carry the next one. */
  async reset(): Promise<boolean> {
    if (this.broken) return false;
    try {
      return (await this.command('RSET')).code === 250;
    } catch {
      return false;
    }
  }

  /** QUIT without waiting for its reply; the socket closes when the server has answered. */
  /**
   * Says QUIT and resolves once the socket is closed (at most 5 s later): a receiver counts the
   * connection against our limit until then, so a new one must not be opened in its place earlier.
   */
  quit(): Promise<void> {
    const closed = this.socket.closed ? Promise.resolve() : new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    if (this.quitting) return closed;
    this.quitting = true;
    if (!this.broken && !this.socket.destroyed) {
      this.socket.end('QUIT\r\n');
      setTimeout(() => this.socket.destroy(), 5000).unref();
    } else {
      this.socket.destroy();
    }
    return closed;
  }

  close(): void {
    this.quitting = true;
    this.socket.destroy();
  }

  private async hello(): Promise<void> {
    this.extensions.clear();
    let reply = await this.command(`EHLO ${this.options.helo}`);
    if (reply.code >= 500) reply = await this.command(`HELO ${this.options.helo}`);
    if (reply.code !== 250) throw new SmtpError('EPROTOCOL', 'EHLO and HELO refused', reply);
    for (const line of reply.text.split('\n').slice(1)) {
      const [keyword, ...args] = line.trim().split(/\s+/);
      if (keyword) this.extensions.set(keyword.toUpperCase(), args.join(' '));
    }
  }

  private async upgrade(): Promise<void> {
    // plaintext that came after the 220 (a broken or malicious server) fails the session in
    // onReply; a partial line is dropped here rather than read as if it had come over TLS
    if (this.broken) throw this.broken;
    this.parser = new ReplyParser();
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('timeout');
    plain.setTimeout(0);
    const servername = this.options.servername && !isIP(this.options.servername) ? this.options.servername : undefined;
    const server = `${this.options.host}:${this.options.port}`;
    clientContext ??= createSecureContext();
    const secure = tlsConnect({ socket: plain, servername, rejectUnauthorized: false, secureContext: clientContext, session: tlsSessions.get(server) });
    secure.on('session', (session: Buffer) => rememberSession(server, session));
    this.socket = secure;
    this.attach(secure);
    const timeout = this.options.commandTimeout;
    await new Promise<void>((resolve, reject) => {
      const failed = (why: string) => {
        clearTimeout(timer);
        reject(new SmtpError('ETLS', `TLS handshake failed: ${why}`));
        secure.destroy();
      };
      const timer = setTimeout(() => failed(`no handshake within ${timeout} ms`), timeout);
      secure.once('secureConnect', () => {
        clearTimeout(timer);
        resolve();
      });
      secure.once('error', (err) => failed(err.message));
      secure.once('close', () => failed('connection closed'));
    });
    this.secure = true;
    this.tlsResumed = secure.isSessionReused();
    secure.setTimeout(timeout);
  }

  private attach(socket: Socket): void {
    socket.on('data', (chunk: Buffer) => this.parser.push(chunk, (reply) => this.onReply(reply)));
    socket.on('timeout', () => {
      if (this.waiters.length) this.fail(new SmtpError('ETIMEDOUT', `No reply within ${this.options.commandTimeout} ms`));
    });
    socket.on('error', (err) => this.fail(new SmtpError('ECONNECTION', err.message)));
    socket.on('close', () => this.fail(new SmtpError('ECONNECTION', 'Connection closed by the server')));
  }

  private onReply(reply: Reply): void {
    if (reply.code < 200 || reply.code > 599) return this.fail(new SmtpError('EPROTOCOL', `A line without a reply code from the server: …${reply.text.slice(0, 100)}`));
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(reply);
    else if (!this.quitting) this.fail(new SmtpError('EPROTOCOL', 'Unexpected reply', reply)); // e.g. a 421 on an idle connection
  }

  /** Marks the connection broken and fails every reply still awaited. */
  private fail(err: SmtpError): void {
    if (!this.broken) this.broken = err;
    for (const waiter of this.waiters.splice(0)) waiter.reject(err);
    if (!this.socket.destroyed) this.socket.destroy();
  }

  private read(): Promise<Reply> {
    if (this.broken) return Promise.reject(this.broken);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private command(line: string): Promise<Reply> {
    const reply = this.read();
    if (!this.broken) this.socket.write(`${line}\r\n`);
    return reply;
  }

  /** Writes the buffers in one system call and awaits the one reply they draw. */
  private write(...data: Buffer[]): Promise<Reply> {
    const reply = this.read();
    if (this.broken) return reply;
    this.socket.cork();
    for (const buffer of data) this.socket.write(buffer);
    this.socket.uncork();
    return reply;
  }

  private pipeline(commands: string[]): Promise<Replies> {
    const pending = commands.map(() => this.read());
    if (!this.broken) this.socket.write(`${commands.join('\r\n')}\r\n`);
    return settle(pending);
  }

  private async oneByOne(commands: string[]): Promise<Replies> {
    const replies: Reply[] = [];
    for (const [i, line] of commands.entries()) {
      try {
        replies.push(await this.command(line));
      } catch (err) {
        return { replies, broken: err as SmtpError };
      }
      if (i === 0 && replies[0].code >= 300) break; // the sender was refused: no RCPT, no DATA
      if (i === commands.length - 2 && !replies.slice(1).some((r) => r.code < 300)) break; // no recipient: no DATA
    }
    return { replies };
  }
}

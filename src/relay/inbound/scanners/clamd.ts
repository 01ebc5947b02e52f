// Virus scanning by clamd over TCP with INSTREAM: the message goes out in chunks, each prefixed
// by its length as a 4-byte big-endian number, ended by a zero length; clamd answers
// "stream: OK" or "stream: <signature> FOUND". A virus refuses the message with 554 5.7.1 naming
// the signature (the client keeps it: nothing is accepted and then dropped); a clean message is
// accepted with an X-Virus-Scanned header.
//
// Connections are reused through clamd's IDSESSION: one session carries one scan at a time
// (zINSTREAM, answered "<id>: stream: ..."), and goes back to a small pool of idle sessions
// afterwards. An idle session ends itself before clamd's IdleTimeout would (30 s by default); a
// scan that finds its kept session closed under it (clamd restarted, or a shorter IdleTimeout)
// is sent once more on a fresh connection.
//
// A message above inbound.scan.clamd.maxSize is not sent: clamd would stop reading it at its
// StreamMaxLength and answer an error, and a tempfail would only make the client send it again,
// forever. It is accepted with a header saying it was not scanned, and why.
// May touch: TCP connections to the configured clamd address, nothing else.
import { connect, type Socket } from 'node:net';
import type { ClamdScanConfig } from '../../../config/inbound-scan.ts';
import { formatDuration, formatHostPort } from '../../../util/units.ts';
import type { ContentScanner, ScanVerdict } from '../scan.ts';
import { causeOf, ScannerUnavailableError } from './scanner-error.ts';

/** Bytes per INSTREAM chunk: slices of the message, not copies. */
const CHUNK_BYTES = 64 * 1024;
/** Idle sessions kept for the next scans; more concurrent scans open more, ended after use. */
const KEPT_SESSIONS = 8;
/** An idle session ends after this long, inside clamd's default IdleTimeout of 30 s. */
const SESSION_IDLE_MS = 20_000;
/** A reply longer than this is not clamd's (a signature name is tens of bytes). */
const MAX_REPLY_BYTES = 4096;

const STREAM_END = Buffer.alloc(4);

/** clamd's answer to one INSTREAM, without the session's "<id>: " prefix. */
type ClamdReply = { clean: true } | { clean: false; signature: string } | { error: string };

export function parseClamdReply(text: string): ClamdReply {
  const reply = text.replace(/^\d+: /, '');
  if (reply === 'stream: OK') return { clean: true };
  const found = /^stream: (.+) FOUND$/.exec(reply);
  if (found) return { clean: false, signature: found[1] };
  return { error: reply };
}

export class ClamdScanner implements ContentScanner {
  readonly name = 'clamd';
  private readonly config: ClamdScanConfig;
  private readonly address: string;
  private readonly idle: ClamdSession[] = [];
  private closed = false;

  constructor(config: ClamdScanConfig) {
    this.config = config;
    this.address = formatHostPort(config.address);
  }

  async scan(message: Buffer): Promise<ScanVerdict> {
    if (message.length > this.config.maxSize) {
      return { action: 'accept', headers: [`X-Virus-Scanned: no, ${message.length} bytes is above clamd's limit of ${this.config.maxSize} (inbound.scan.clamd.maxSize)`] };
    }
    const deadline = Date.now() + this.config.timeout;
    const reply = await this.instream(message, deadline);
    if ('error' in reply) {
      const limit = /size limit exceeded/i.test(reply.error)
        ? ` (its StreamMaxLength is below inbound.scan.clamd.maxSize, ${this.config.maxSize} bytes)` : '';
      throw new ScannerUnavailableError(this.name, this.address, `refused the stream: ${reply.error}${limit}`);
    }
    if (reply.clean) return { action: 'accept', headers: ['X-Virus-Scanned: clamd; clean'] };
    return { action: 'reject', reply: [554, '5.7.1', `Message refused: virus found (${printable(reply.signature)})`] };
  }

  /** Ends the idle sessions (at shutdown; a later scan opens new ones). */
  close(): void {
    this.closed = true;
    for (const session of this.idle.splice(0)) session.end();
  }

  private async instream(message: Buffer, deadline: number): Promise<ClamdReply> {
    try {
      const kept = this.idle.pop();
      if (kept) {
        try {
          return await this.scanOn(kept, message, deadline);
        } catch (err) {
          // closed under us before it answered anything: the stream was not scanned, send it anew
          if (!(err instanceof SessionLost)) throw err;
        }
      }
      return await this.scanOn(await ClamdSession.open(this.config, deadline, (session) => this.forget(session)), message, deadline);
    } catch (err) {
      const what = err instanceof SessionTimeout ? `no answer within ${formatDuration(this.config.timeout)}`
        : err instanceof SessionLost ? err.message : `cannot scan (${causeOf(err)})`;
      throw new ScannerUnavailableError(this.name, this.address, what);
    }
  }

  private async scanOn(session: ClamdSession, message: Buffer, deadline: number): Promise<ClamdReply> {
    const reply = parseClamdReply(await session.instream(message, deadline));
    // after an error clamd ends the session; a clean or infected answer leaves it usable
    if ('error' in reply || this.closed || this.idle.length >= KEPT_SESSIONS) session.end();
    else {
      session.rest();
      this.idle.push(session);
    }
    return reply;
  }

  private forget(session: ClamdSession): void {
    const at = this.idle.indexOf(session);
    if (at >= 0) this.idle.splice(at, 1);
  }
}

/** The session ended before its answer began: nothing was scanned. */
class SessionLost extends Error {}
class SessionTimeout extends Error {}

/** One IDSESSION connection to clamd, carrying one INSTREAM at a time. */
class ClamdSession {
  private readonly socket: Socket;
  private reply: Buffer[] = [];
  private replyBytes = 0;
  private waiting?: { resolve: (text: string) => void; reject: (err: Error) => void };
  private ended = false;

  private constructor(socket: Socket, onGone: (session: ClamdSession) => void) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.received(chunk));
    const gone = (err?: Error) => {
      this.ended = true;
      onGone(this);
      this.settle(new SessionLost(`the connection ended before clamd answered (${err ? causeOf(err) : 'closed'})`));
    };
    socket.on('error', gone);
    socket.on('close', () => gone());
    socket.on('timeout', () => this.end());
  }

  static open(config: ClamdScanConfig, deadline: number, onGone: (session: ClamdSession) => void): Promise<ClamdSession> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: config.address.host, port: config.address.port, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no connection within ${formatDuration(config.timeout)}`));
      }, Math.max(0, deadline - Date.now()));
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        socket.write('zIDSESSION\0');
        resolve(new ClamdSession(socket, onGone));
      });
    });
  }

  /** Streams the message and resolves with clamd's NUL-terminated answer. */
  instream(message: Buffer, deadline: number): Promise<string> {
    if (this.ended) return Promise.reject(new SessionLost('the kept connection had ended'));
    this.socket.ref();
    this.socket.setTimeout(0);
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.settle(new SessionTimeout());
        this.socket.destroy();
      }, Math.max(0, deadline - Date.now()));
      this.waiting = {
        resolve: (text) => { clearTimeout(timer); resolve(text); },
        reject: (err) => { clearTimeout(timer); reject(err); },
      };
      this.socket.cork();
      this.socket.write('zINSTREAM\0');
      for (let at = 0; at < message.length; at += CHUNK_BYTES) {
        const chunk = message.subarray(at, at + CHUNK_BYTES);
        const length = Buffer.allocUnsafe(4);
        length.writeUInt32BE(chunk.length);
        this.socket.write(length);
        this.socket.write(chunk);
      }
      this.socket.write(STREAM_END);
      this.socket.uncork();
    });
  }

  /** Back to the pool: it keeps no process alive and ends itself when unused for a while. */
  rest(): void {
    this.socket.unref();
    this.socket.setTimeout(SESSION_IDLE_MS);
  }

  end(): void {
    if (this.ended || this.socket.destroyed) return;
    this.ended = true;
    this.socket.end('zEND\0');
  }

  private received(chunk: Buffer): void {
    this.replyBytes += chunk.length;
    if (!this.waiting || this.replyBytes > MAX_REPLY_BYTES) {
      // an answer nobody asked for, or too long to be one: this session cannot be trusted
      this.settle(new Error(this.waiting ? `an answer longer than ${MAX_REPLY_BYTES} bytes` : 'an answer to no command'));
      this.socket.destroy();
      return;
    }
    const nul = chunk.indexOf(0);
    this.reply.push(nul < 0 ? chunk : chunk.subarray(0, nul));
    if (nul < 0) return;
    const text = Buffer.concat(this.reply).toString('latin1');
    this.reply = [];
    this.replyBytes = 0;
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting.resolve(text);
  }

  /** Ends the scan in progress, if any, with `err`; a SessionLost after answer bytes arrived is an error of its own. */
  private settle(err: Error): void {
    const waiting = this.waiting;
    if (!waiting) return;
    this.waiting = undefined;
    waiting.reject(err instanceof SessionLost && this.replyBytes > 0 ? new Error(`the connection ended inside clamd's answer`) : err);
  }
}

/** A signature name made safe for an SMTP reply: printable ASCII, bounded. */
function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]+/g, '?').slice(0, 200);
}

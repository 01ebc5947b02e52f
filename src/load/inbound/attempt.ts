// One delivery attempt of an inbound run, as one client of the MX makes it: a connection from
// the client's own loopback address, one message, one recipient, no pipelining (an MTA talking
// to an MX it does not know). A pregreeting bot sends its EHLO the moment the connection opens,
// before the greeting. The outcome says where the attempt ended: accepted, or the stage and the
// reply (or the connection error) that ended it. May touch: one TCP connection to the target.
import { connect, type Socket } from 'node:net';
import { ReplyParser, type Reply } from '../../util/smtp-reply.ts';
import type { HostPort } from '../../util/units.ts';

export type Stage = 'connect' | 'greeting' | 'ehlo' | 'mail' | 'rcpt' | 'data' | 'end-of-data';

export type AttemptOutcome =
  | { accepted: true }
  /** A reply other than the one that lets the attempt go on. */
  | { accepted: false; stage: Stage; reply: Reply }
  /** No reply: the connection failed, closed or timed out while waiting at `stage`. */
  | { accepted: false; stage: Stage; error: string };

export interface AttemptRequest {
  target: HostPort;
  /** The client's source address. */
  localAddress: string;
  helo: string;
  from: string;
  to: string;
  pregreet: boolean;
  /** The longest wait for one reply (the MX's greeting wait included). */
  replyTimeout: number;
  /** The message, made when the MX has said 354 (nothing is built for an attempt refused earlier). */
  message: () => Promise<Buffer>;
}

export async function attempt(request: AttemptRequest): Promise<AttemptOutcome> {
  let conversation: Conversation;
  try {
    conversation = await Conversation.open(request);
  } catch (err) {
    return { accepted: false, stage: 'connect', error: (err as NodeJS.ErrnoException).code ?? (err as Error).message };
  }
  const c = conversation;
  let stage: Stage = 'greeting';
  const step = async (command: string | undefined, next: Stage, expected: number): Promise<Reply | undefined> => {
    stage = next;
    if (command !== undefined) c.write(command);
    const reply = await c.reply();
    return reply.code === expected ? undefined : reply;
  };
  try {
    if (request.pregreet) c.write(`EHLO ${request.helo}\r\n`);
    let refusal = await step(undefined, 'greeting', 220)
      ?? await step(request.pregreet ? undefined : `EHLO ${request.helo}\r\n`, 'ehlo', 250)
      ?? await step(`MAIL FROM:<${request.from}>\r\n`, 'mail', 250)
      ?? await step(`RCPT TO:<${request.to}>\r\n`, 'rcpt', 250)
      ?? await step('DATA\r\n', 'data', 354);
    if (!refusal) {
      c.write(dotStuffed(await request.message()));
      refusal = await step('\r\n.\r\n', 'end-of-data', 250);
    }
    c.quit();
    return refusal ? { accepted: false, stage, reply: refusal } : { accepted: true };
  } catch (err) {
    c.close();
    return { accepted: false, stage, error: (err as Error).message };
  }
}

/** RFC 5321 4.5.2: a line that starts with a dot gets one more; the message ends without its last CRLF (the end marker brings it). */
function dotStuffed(message: Buffer): Buffer {
  const trimmed = message.subarray(0, message.length - (message.subarray(-2).toString() === '\r\n' ? 2 : 0));
  const text = trimmed.toString('latin1');
  if (!text.startsWith('.') && !text.includes('\r\n.')) return trimmed;
  return Buffer.from(text.replace(/^\./, '..').replace(/\r\n\./g, '\r\n..'), 'latin1');
}

/** The replies of one connection in order; a reply that does not come in time, or a closed connection, is an error. */
class Conversation {
  private readonly socket: Socket;
  private readonly parser = new ReplyParser();
  private readonly replies: Reply[] = [];
  private waiting?: { resolve: (reply: Reply) => void; reject: (err: Error) => void };
  private ended?: string;

  private constructor(socket: Socket, replyTimeout: number) {
    this.socket = socket;
    socket.setTimeout(replyTimeout);
    socket.on('data', (chunk: Buffer) => this.parser.push(chunk, (reply) => {
      const waiting = this.waiting;
      this.waiting = undefined;
      if (waiting) waiting.resolve(reply);
      else this.replies.push(reply);
    }));
    socket.on('timeout', () => this.end('timeout'));
    socket.on('error', (err: NodeJS.ErrnoException) => this.end(err.code ?? err.message));
    socket.on('close', () => this.end('closed'));
  }

  static open(request: AttemptRequest): Promise<Conversation> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: request.target.host, port: request.target.port, localAddress: request.localAddress, noDelay: true });
      socket.setTimeout(request.replyTimeout);
      const fail = (err: Error) => {
        socket.destroy();
        reject(err);
      };
      socket.once('timeout', () => fail(new Error('timeout')));
      socket.once('error', fail);
      socket.once('connect', () => {
        socket.removeAllListeners('timeout');
        socket.removeAllListeners('error');
        resolve(new Conversation(socket, request.replyTimeout));
      });
    });
  }

  write(text: string | Buffer): void {
    if (!this.ended) this.socket.write(text);
  }

  reply(): Promise<Reply> {
    const queued = this.replies.shift();
    if (queued) return Promise.resolve(queued);
    if (this.ended) return Promise.reject(new Error(this.ended));
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  quit(): void {
    if (!this.ended) this.socket.end('QUIT\r\n');
    this.ended ??= 'quit';
  }

  close(): void {
    this.socket.destroy();
  }

  private end(why: string): void {
    this.ended ??= why;
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.reject(new Error(this.ended));
    this.socket.destroy();
  }
}

// A real SMTP receiver for tests (smtp-server on a loopback port) that records every DATA
// attempt and delivery with its session, counts concurrent connections, and answers at connect,
// RCPT or end of DATA with replies the test chooses.
import { SMTPServer } from 'smtp-server';
import type { AddressInfo } from 'node:net';

export interface Session { remoteAddress: string; helo: string; messages: number; tls: boolean }

export interface Arrival {
  from: string;
  to: string[];
  /** The bytes as received, and the same as UTF-8 text. */
  body: Buffer;
  text: string;
  at: number;
  session: Session;
}

type Reply = [number, string] | undefined;

export interface ReceiverOptions {
  /** Reply at connect, given the connections open including this one (in all, and from this client address); undefined greets. */
  connect?: (concurrent: number, fromAddress: number, session: Session) => Reply;
  /** Reply for MAIL FROM (the session's `messages` says how many it delivered); undefined accepts. */
  mail?: (address: string, session: Session) => Reply;
  /** Reply for RCPT TO; undefined accepts. */
  rcpt?: (address: string, session: Session) => Reply;
  /** Reply after DATA (the attempt is recorded already); undefined accepts. */
  data?: (arrival: Arrival) => Reply;
  /** Delay before answering end of DATA. */
  dataDelayMs?: number;
  /** Offer PIPELINING (default true). */
  pipelining?: boolean;
}

export interface Receiver {
  port: number;
  address: string;
  /** Messages accepted with 250, in order. */
  delivered: Arrival[];
  /** Every message that reached end of DATA, accepted or not. */
  attempts: Arrival[];
  sessions: Session[];
  readonly maxConcurrent: number;
  /** Resolves once at least `n` messages were delivered (rejects after `timeoutMs`). */
  waitFor(n: number, timeoutMs?: number): Promise<Arrival[]>;
  close(): Promise<void>;
}

const refusal = ([code, text]: [number, string]) => Object.assign(new Error(text), { responseCode: code });

export async function startReceiver(options: ReceiverOptions = {}, port = 0): Promise<Receiver> {
  const delivered: Arrival[] = [];
  const attempts: Arrival[] = [];
  const sessions: Session[] = [];
  let waiters: { n: number; resolve: () => void }[] = [];
  let concurrent = 0;
  let maxConcurrent = 0;
  const perAddress = new Map<string, number>();
  const server = new SMTPServer({
    authOptional: true, disabledCommands: ['STARTTLS'], logger: false, disableReverseLookup: true, closeTimeout: 100, hidePIPELINING: options.pipelining === false,
    onConnect(session, callback) {
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      const fromAddress = (perAddress.get(session.remoteAddress) ?? 0) + 1;
      perAddress.set(session.remoteAddress, fromAddress);
      const s: Session = { remoteAddress: session.remoteAddress, helo: '', messages: 0, tls: false };
      sessions.push(s);
      (session as unknown as { test: Session }).test = s;
      const reply = options.connect?.(concurrent, fromAddress, s);
      callback(reply ? refusal(reply) : undefined);
    },
    onClose(session) {
      concurrent--;
      perAddress.set(session.remoteAddress, (perAddress.get(session.remoteAddress) ?? 1) - 1);
    },
    onMailFrom(address, session, callback) {
      const reply = options.mail?.(address.address, (session as unknown as { test: Session }).test);
      callback(reply ? refusal(reply) : undefined);
    },
    onRcptTo(address, session, callback) {
      const reply = options.rcpt?.(address.address, (session as unknown as { test: Session }).test);
      callback(reply ? refusal(reply) : undefined);
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      const s = (session as unknown as { test: Session }).test;
      s.helo = session.hostNameAppearsAs;
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const body = Buffer.concat(chunks);
        const arrival: Arrival = {
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address), body, text: body.toString('utf8'), at: Date.now(), session: s,
        };
        attempts.push(arrival);
        const finish = () => {
          const reply = options.data?.(arrival);
          if (reply) return callback(refusal(reply));
          s.messages++;
          delivered.push(arrival);
          waiters = waiters.filter((w) => (delivered.length >= w.n ? (w.resolve(), false) : true));
          callback(null, 'Ok: stored');
        };
        if (options.dataDelayMs) setTimeout(finish, options.dataDelayMs);
        else finish();
      });
    },
  });
  server.on('error', () => {}); // a client killed mid-session (kill -9 tests) resets its connection
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const bound = (server.server.address() as AddressInfo).port;
  return {
    port: bound,
    address: `127.0.0.1:${bound}`,
    delivered,
    attempts,
    sessions,
    get maxConcurrent() { return maxConcurrent; },
    waitFor(n, timeoutMs = 20_000) {
      if (delivered.length >= n) return Promise.resolve(delivered);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`receiver got ${delivered.length} of ${n} messages in ${timeoutMs} ms`)), timeoutMs);
        waiters.push({ n, resolve: () => { clearTimeout(timer); resolve(delivered); } });
      });
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

// A real SMTP receiver for tests (smtp-server on an ephemeral loopback port) that records what
// arrives, counts concurrent connections, and can answer with chosen replies per recipient.
import { SMTPServer } from 'smtp-server';
import type { AddressInfo } from 'node:net';

export interface Received { from: string; to: string[]; body: string; at: number }

export interface ReceiverOptions {
  /** Reply for a recipient: undefined accepts; an [code, text] pair refuses. */
  rcptReply?: (address: string) => [number, string] | undefined;
  /** Delay before answering end of DATA. */
  dataDelayMs?: number;
}

export interface Receiver {
  port: number;
  address: string;
  messages: Received[];
  maxConcurrent: number;
  /** Resolves once at least `n` messages have arrived (rejects after `timeoutMs`). */
  waitFor(n: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

export async function startReceiver(options: ReceiverOptions = {}, port = 0): Promise<Receiver> {
  const messages: Received[] = [];
  let waiters: { n: number; resolve: () => void }[] = [];
  let concurrent = 0;
  const state = { maxConcurrent: 0 };
  const server = new SMTPServer({
    authOptional: true, disabledCommands: ['STARTTLS'], logger: false, disableReverseLookup: true, closeTimeout: 100,
    onConnect(_session, callback) {
      concurrent++;
      state.maxConcurrent = Math.max(state.maxConcurrent, concurrent);
      callback();
    },
    onClose() {
      concurrent--;
    },
    onRcptTo(address, _session, callback) {
      const reply = options.rcptReply?.(address.address);
      if (!reply) return callback();
      callback(Object.assign(new Error(reply[1]), { responseCode: reply[0] }));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const done = () => {
          messages.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address), body: Buffer.concat(chunks).toString('utf8'), at: Date.now(),
          });
          waiters = waiters.filter((w) => (messages.length >= w.n ? (w.resolve(), false) : true));
          callback(null, 'Ok: stored');
        };
        if (options.dataDelayMs) setTimeout(done, options.dataDelayMs);
        else done();
      });
    },
  });
  server.on('error', () => {}); // a client killed mid-session (kill -9 tests) resets its connection
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const bound = (server.server.address() as AddressInfo).port;
  return {
    port: bound,
    address: `127.0.0.1:${bound}`,
    messages,
    get maxConcurrent() { return state.maxConcurrent; },
    waitFor(n, timeoutMs = 20_000) {
      if (messages.length >= n) return Promise.resolve(messages);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`receiver got ${messages.length} of ${n} messages in ${timeoutMs} ms`)), timeoutMs);
        waiters.push({ n, resolve: () => { clearTimeout(timer); resolve(messages); } });
      });
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

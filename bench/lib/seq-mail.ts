// Numbered mail for the benchmarks that count what was acknowledged, delivered, lost and sent twice
// (bench/kill-duplicates.ts, bench/cluster.ts): raw-socket SMTP clients that put a sequence number
// in an X-Seq header and remember which numbers got a 250, and a raw-socket receiver that counts
// arrivals per number, open connections per client address and, when asked, arrival times. Both
// are cheap enough not to be what a benchmark measures.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

const MAX_SEQ = 1 << 22;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const filler = `${'x'.repeat(76)}\r\n`.repeat(26);

export interface SeqReceiver {
  port: number;
  /** Deliveries per sequence number. */
  arrivals: Uint16Array;
  readonly arrived: number;
  /** The most connections open at once, per client address. */
  maxOpen: Map<string, number>;
  /** Arrival times (ms, performance.now()) when `times` was asked for. */
  times: number[];
  close(): void;
}

/**
 * Accepts everything with PIPELINING; `times`: keep each arrival's time. `thread`: the receiver
 * runs on a thread of its own, as a real receiver is a server of its own: its replies then do not
 * wait behind the clients' work in this process (a kill -9 benchmark's duplicates are the
 * deliveries between the relay's final dot and its record of the 250, so a receiver slow to
 * answer would count against the relay). Arrival counts are shared memory; no `times` or
 * `maxOpen` there.
 */
export async function startSeqReceiver(options: { times?: boolean; thread?: boolean } = {}): Promise<SeqReceiver> {
  if (options.thread) return startThreadReceiver();
  let arrived = 0;
  const r: SeqReceiver = { port: 0, arrivals: new Uint16Array(MAX_SEQ), get arrived() { return arrived; }, maxOpen: new Map(), times: [], close: () => server.close() };
  const server = seqServer(r.arrivals, () => {
    arrived++;
    if (options.times) r.times.push(performance.now());
  }, r.maxOpen);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.port = (server.address() as { port: number }).port;
  return r;
}

async function startThreadReceiver(): Promise<SeqReceiver> {
  const arrivals = new Uint16Array(new SharedArrayBuffer(MAX_SEQ * 2));
  const count = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(new URL(import.meta.url), { workerData: { seqReceiver: { arrivals, count } } });
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return {
    port, arrivals, get arrived() { return Atomics.load(count, 0); }, maxOpen: new Map(), times: [],
    close: () => void worker.terminate(),
  };
}

// this module as the receiver's thread (startThreadReceiver)
if (!isMainThread && (workerData as { seqReceiver?: unknown })?.seqReceiver) {
  const { arrivals, count } = (workerData as { seqReceiver: { arrivals: Uint16Array; count: Int32Array } }).seqReceiver;
  const server = seqServer(arrivals, () => Atomics.add(count, 0, 1), new Map());
  server.listen(0, '127.0.0.1', () => parentPort!.postMessage((server.address() as { port: number }).port));
}

/** The receiver's server: counts each arrival by its X-Seq (and calls `arrived`), and connections per client address. */
function seqServer(arrivals: Uint16Array, arrived: () => void, maxOpen: Map<string, number>): Server {
  const open = new Map<string, number>();
  return createServer((socket) => {
    const client = socket.remoteAddress ?? '?';
    const now = (open.get(client) ?? 0) + 1;
    open.set(client, now);
    if (now > (maxOpen.get(client) ?? 0)) maxOpen.set(client, now);
    socket.once('close', () => open.set(client, (open.get(client) ?? 1) - 1));
    socket.setNoDelay(true);
    let buffer = '';
    let inData = false;
    socket.setEncoding('latin1');
    socket.write('220 bench-receiver ESMTP\r\n');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      let out = '';
      for (;;) {
        if (inData) {
          const end = buffer.indexOf('\r\n.\r\n');
          if (end < 0) break;
          const seq = /X-Seq: (\d+)/.exec(buffer.slice(0, Math.min(end, 1000)))?.[1];
          if (seq !== undefined) Atomics.add(arrivals, Number(seq), 1);
          arrived();
          buffer = buffer.slice(end + 5);
          inData = false;
          out += '250 2.0.0 Ok: queued\r\n';
          continue;
        }
        const eol = buffer.indexOf('\r\n');
        if (eol < 0) break;
        const verb = buffer.slice(0, 4).toUpperCase();
        buffer = buffer.slice(eol + 2);
        if (verb === 'EHLO') out += '250-bench-receiver\r\n250-PIPELINING\r\n250 8BITMIME\r\n';
        else if (verb === 'DATA') {
          out += '354 End data with <CR><LF>.<CR><LF>\r\n';
          inData = true;
        } else if (verb === 'QUIT') {
          socket.end(out + '221 2.0.0 Bye\r\n');
          return;
        } else out += '250 2.0.0 Ok\r\n';
      }
      if (out) socket.write(out);
    });
    socket.on('error', () => {});
  });
}

/** Replies off one socket, one multi-line reply at a time. */
class Replies {
  private buffer = '';
  private waiting?: (reply: string | undefined) => void;
  private closed = false;
  constructor(socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.deliver();
    });
    const end = () => {
      this.closed = true;
      this.deliver();
    };
    socket.on('close', end);
    socket.on('error', end);
  }
  private take(): string | undefined {
    let from = 0;
    for (;;) {
      const eol = this.buffer.indexOf('\r\n', from);
      if (eol < 0) return undefined;
      if (this.buffer[from + 3] !== '-') {
        const reply = this.buffer.slice(0, eol);
        this.buffer = this.buffer.slice(eol + 2);
        return reply;
      }
      from = eol + 2;
    }
  }
  private deliver(): void {
    if (!this.waiting) return;
    const reply = this.take();
    if (reply === undefined && !this.closed) return;
    const resolve = this.waiting;
    this.waiting = undefined;
    resolve(reply);
  }
  next(): Promise<string | undefined> {
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.deliver();
    });
  }
}

export interface SeqSenderOptions {
  host?: string;
  port: number;
  connections: number;
  /** Offered messages per second over all connections (paced, no catching up after an outage); 0: as fast as answered. */
  rate: number;
  /** Stop after this many messages have been handed out (default: until stop()). */
  limit?: number;
  /** The recipient of message `seq`. */
  to: (seq: number) => string;
  /** Extra header lines (each ending in CRLF), e.g. a lane tag. */
  headers?: string;
}

/** SMTP clients sending numbered messages; a session that breaks is opened again after 20 ms. */
export class SeqSender {
  readonly acknowledged = new Uint8Array(MAX_SEQ);
  acked = 0;
  nextSeq = 0;
  /** Sessions that ended other than by our QUIT (refused, cut, a non-2xx reply). */
  sessionsFailed = 0;
  private stopping = false;
  private readonly o: SeqSenderOptions;
  private running: Promise<void>[] = [];

  constructor(options: SeqSenderOptions) {
    this.o = options;
  }

  start(): void {
    this.running = Array.from({ length: this.o.connections }, (_, k) => this.client(k));
  }

  /** Resolves once every client has ended (the limit reached, or stop()). */
  done(): Promise<void> {
    return Promise.all(this.running).then(() => {});
  }

  stop(): Promise<void> {
    this.stopping = true;
    return this.done();
  }

  private more(): boolean {
    return !this.stopping && (this.o.limit === undefined || this.nextSeq < this.o.limit);
  }

  private async client(k: number): Promise<void> {
    const pace = { nextAt: performance.now() + (this.o.rate > 0 ? (k * 1000) / this.o.rate : 0) };
    while (this.more()) {
      if (!(await this.session(pace))) this.sessionsFailed++;
      if (this.more()) await sleep(20);
    }
  }

  /** One session; true when it ended with our QUIT. */
  private async session(pace: { nextAt: number }): Promise<boolean> {
    const socket = connect(this.o.port, this.o.host ?? '127.0.0.1');
    socket.setNoDelay(true);
    const replies = new Replies(socket);
    try {
      if (!(await replies.next())?.startsWith('220')) return false;
      socket.write('EHLO bench-client\r\n');
      if (!(await replies.next())?.startsWith('250')) return false;
      const interval = this.o.rate > 0 ? (1000 * this.o.connections) / this.o.rate : 0;
      while (this.more()) {
        if (interval > 0) {
          const now = performance.now();
          if (pace.nextAt > now) await sleep(pace.nextAt - now);
          pace.nextAt = Math.max(pace.nextAt + interval, performance.now() - interval); // no burst after an outage
        }
        const seq = this.nextSeq++;
        const to = this.o.to(seq);
        socket.write(`MAIL FROM:<news@sender.test>\r\nRCPT TO:<${to}>\r\nDATA\r\n`);
        const [mail, rcpt, data] = [await replies.next(), await replies.next(), await replies.next()];
        if (!mail?.startsWith('250') || !rcpt?.startsWith('250') || !data?.startsWith('354')) return false;
        socket.write(`From: news@sender.test\r\nTo: ${to}\r\nSubject: numbered ${seq}\r\nX-Seq: ${seq}\r\n${this.o.headers ?? ''}\r\n${filler}.\r\n`);
        if (!(await replies.next())?.startsWith('250')) return false;
        this.acknowledged[seq] = 1;
        this.acked++;
      }
      socket.write('QUIT\r\n');
      return true;
    } finally {
      socket.destroy();
    }
  }
}

/** Acknowledged, delivered (distinct), lost (acknowledged, never delivered) and duplicates, over the numbers handed out. */
export function tally(sender: SeqSender, receiver: SeqReceiver) {
  let delivered = 0;
  let lost = 0;
  let duplicates = 0;
  let unacknowledgedDelivered = 0;
  for (let seq = 0; seq < sender.nextSeq; seq++) {
    const n = receiver.arrivals[seq];
    if (n > 0) delivered++;
    if (n > 1) duplicates += n - 1;
    if (sender.acknowledged[seq] && n === 0) lost++;
    if (!sender.acknowledged[seq] && n > 0) unacknowledgedDelivered++;
  }
  return { acknowledged: sender.acked, delivered, lost, duplicates, unacknowledgedDelivered };
}

// Duplicates after kill -9 under load. CYCLES times (default 20) `mailops relay start` on one spool
// receives mail offered at about RATE msgs/s (default 2,000) over CONNECTIONS SMTP connections
// (default 40, each paced at RATE/CONNECTIONS, no catching up after the relay was away), delivers
// it to a receiver that is up the whole time, and is killed with SIGKILL after a random 1.5-3.5 s
// of service and started again at once. Then one start without a kill drains the spool.
// Reports acknowledged (250 at receipt), delivered (distinct messages), lost (acknowledged, never
// delivered: must be 0), duplicates (deliveries beyond a message's first) and their share of the
// acknowledged, what the relays themselves reported as recovered in flight at each start, and the
// window between a receiver's 250 and the relay's record of it that the duplicates per kill and
// the delivery rate imply.
// The client and the receiver are raw sockets in this process (cheap enough not to be the limit);
// each message carries its sequence number in an X-Seq header; lane: the default (member), which
// intake pacing does not hold back. Figures into docs/relay.md (Benchmarks).
// Usage: node_modules/.bin/node bench/kill-duplicates.ts [CYCLES] [RATE] [CONNECTIONS] [SEED]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CYCLES = Number(process.argv[2] ?? 20);
const RATE = Number(process.argv[3] ?? 2000);
const CONNECTIONS = Number(process.argv[4] ?? 40);
let seed = Number(process.argv[5] ?? 1) >>> 0;
const MAILOPS = new URL('../bin/mailops', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'mailops-kill-dup-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** mulberry32: the same seed, the same kill times. */
const random = () => {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const freePort = () => new Promise<number>((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = (s.address() as { port: number }).port;
    s.close(() => resolve(p));
  });
});

// --- the receiver: accepts everything, counts arrivals per sequence number ---------------------
const MAX_SEQ = 1 << 22;
const arrivals = new Uint16Array(MAX_SEQ);
let arrived = 0;
const receiver = createServer((socket) => {
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
        if (seq !== undefined) arrivals[Number(seq)]++;
        arrived++;
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
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const receiverPort = (receiver.address() as { port: number }).port;

// --- the relay --------------------------------------------------------------------------------
const [smtpPort, httpPort] = [await freePort(), await freePort()];
const config = join(dir, 'relay.yaml');
writeFileSync(config, `smtp: { listen: "127.0.0.1:${smtpPort}" }
http: { listen: "127.0.0.1:${httpPort}" }
spool: { dir: "${join(dir, 'spool')}" }
delivery: { smarthost: "127.0.0.1:${receiverPort}" }
log: { file: /dev/null }
`);
let relay: ChildProcess | undefined;
process.on('exit', () => relay?.kill('SIGKILL'));
let recoveredInFlight = 0;
const api = async (path: string) => (await fetch(`http://127.0.0.1:${httpPort}${path}`)).text();

async function startRelay(): Promise<ChildProcess> {
  const child = spawn(process.execPath, [MAILOPS, 'relay', 'start', '--config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  child.once('exit', (code, signal) => {
    if (!stopped.has(child)) {
      console.error(`relay exited on its own (${code ?? signal})`);
      process.exit(1);
    }
  });
  for (let i = 0; ; i++) {
    try {
      if (JSON.parse(await api('/health')).status === 'ok') break;
    } catch {
      if (i > 400) throw new Error('the relay did not start within 20 s');
      await sleep(50);
    }
  }
  recoveredInFlight += Number(/^mailops_recovered_in_flight (\d+)$/m.exec(await api('/metrics'))?.[1] ?? 0);
  return child;
}

const stopped = new WeakSet<ChildProcess>();
function kill(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  stopped.add(child);
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

// --- the clients --------------------------------------------------------------------------------
const acknowledged = new Uint8Array(MAX_SEQ);
let acked = 0;
let nextSeq = 0;
let stopping = false;
const filler = `${'x'.repeat(76)}\r\n`.repeat(26);

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

async function session(pace: { nextAt: number }): Promise<void> {
  const socket = connect(smtpPort, '127.0.0.1');
  socket.setNoDelay(true);
  const replies = new Replies(socket);
  try {
    if (!(await replies.next())?.startsWith('220')) return;
    socket.write('EHLO bench-client\r\n');
    if (!(await replies.next())?.startsWith('250')) return;
    const interval = (1000 * CONNECTIONS) / RATE;
    while (!stopping) {
      const now = performance.now();
      if (pace.nextAt > now) await sleep(pace.nextAt - now);
      pace.nextAt = Math.max(pace.nextAt + interval, performance.now() - interval); // no burst after an outage
      const seq = nextSeq++;
      socket.write(`MAIL FROM:<news@sender.test>\r\nRCPT TO:<member${seq}@dest.test>\r\nDATA\r\n`);
      const [mail, rcpt, data] = [await replies.next(), await replies.next(), await replies.next()];
      if (!mail?.startsWith('250') || !rcpt?.startsWith('250') || !data?.startsWith('354')) return;
      socket.write(`From: news@sender.test\r\nTo: member${seq}@dest.test\r\nSubject: kill test ${seq}\r\nX-Seq: ${seq}\r\n\r\n${filler}.\r\n`);
      if (!(await replies.next())?.startsWith('250')) return;
      acknowledged[seq] = 1;
      acked++;
    }
    socket.write('QUIT\r\n');
  } finally {
    socket.destroy();
  }
}

async function client(k: number): Promise<void> {
  const pace = { nextAt: performance.now() + (k * 1000) / RATE };
  while (!stopping) {
    await session(pace);
    if (!stopping) await sleep(20); // the relay is away: try again shortly
  }
}

// --- the run -----------------------------------------------------------------------------------
const started = Date.now();
relay = await startRelay();
const clients = Array.from({ length: CONNECTIONS }, (_, k) => client(k));
let serving = 0;
let deliveredServing = 0; // arrivals while a relay that was killed afterwards served
for (let cycle = 1; cycle <= CYCLES; cycle++) {
  const ms = 1500 + random() * 2000;
  const arrivedBefore = arrived;
  await sleep(ms);
  serving += ms;
  await kill(relay, 'SIGKILL');
  deliveredServing += arrived - arrivedBefore;
  process.stdout.write(`kill ${cycle}/${CYCLES}: acknowledged ${acked}, arrived ${arrived}\n`);
  relay = await startRelay();
}
await sleep(2000);
stopping = true;
await Promise.all(clients);
const offeredFor = (Date.now() - started) / 1000;
// drain: the spool empty and nothing more arriving for a second
for (let last = -1, deadline = Date.now() + 180_000; ; ) {
  await sleep(1000);
  const total = JSON.parse(await api('/api/v1/queue')).total;
  if (total === 0 && arrived === last) break;
  if (Date.now() > deadline) throw new Error(`not drained after 180 s: ${total} messages queued`);
  last = arrived;
}
await kill(relay, 'SIGTERM');
receiver.close();

let delivered = 0;
let lost = 0;
let duplicates = 0;
let unacknowledgedDelivered = 0;
for (let seq = 0; seq < nextSeq; seq++) {
  const n = arrivals[seq];
  if (n > 0) delivered++;
  if (n > 1) duplicates += n - 1;
  if (acknowledged[seq] && n === 0) lost++;
  if (!acknowledged[seq] && n > 0) unacknowledgedDelivered++;
}
const pct = (n: number) => `${((100 * n) / Math.max(1, acked)).toFixed(3)} %`;
console.log(`kill -9 x ${CYCLES}, offered ${RATE} msgs/s over ${CONNECTIONS} connections for ${offeredFor.toFixed(0)} s ` +
  `(relay serving ${(serving / 1000).toFixed(0)} s between kills; seed ${process.argv[5] ?? 1})`);
console.log(`acknowledged ${acked} (${(acked / offeredFor).toFixed(0)} msgs/s over the run), delivered ${delivered} distinct ` +
  `(${unacknowledgedDelivered} of them committed but never acknowledged), lost ${lost}, duplicates ${duplicates} (${pct(duplicates)}); ` +
  `recovered in flight at the starts: ${recoveredInFlight}`);
// each kill sends again what was delivered in the window between the receiver's 250 and the record
// of it, so duplicates per kill over the delivery rate estimate that window
const perMs = deliveredServing / serving;
console.log(`delivering ${(perMs * 1000).toFixed(0)} msgs/s while serving, ${(duplicates / CYCLES).toFixed(1)} duplicates per kill: ` +
  `window between the receiver's 250 and its record about ${(duplicates / CYCLES / perMs).toFixed(1)} ms`);
rmSync(dir, { recursive: true, force: true });
process.exit(lost === 0 ? 0 : 1);

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
// The client is raw sockets in this process; the receiver too, on a thread of its own (a real
// receiver is a server of its own, and one that answers late widens the window this measures);
// each message carries its sequence number in an X-Seq header; lane: the default (member), which
// intake pacing does not hold back. Figures into docs/relay.md (Benchmarks).
// Usage: node_modules/.bin/node bench/kill-duplicates.ts [CYCLES] [RATE] [CONNECTIONS] [SEED]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SeqSender, startSeqReceiver, tally } from './lib/seq-mail.ts';
import { freePort } from '../test/helpers/ports.ts';

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
// --- the receiver: accepts everything, counts arrivals per sequence number ---------------------
const receiver = await startSeqReceiver({ thread: true });
const receiverPort = receiver.port;

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
const sender = new SeqSender({ port: smtpPort, connections: CONNECTIONS, rate: RATE, to: (seq) => `member${seq}@dest.test` });

// --- the run -----------------------------------------------------------------------------------
const started = Date.now();
relay = await startRelay();
sender.start();
let serving = 0;
let deliveredServing = 0; // arrivals while a relay that was killed afterwards served
for (let cycle = 1; cycle <= CYCLES; cycle++) {
  const ms = 1500 + random() * 2000;
  const arrivedBefore = receiver.arrived;
  await sleep(ms);
  serving += ms;
  await kill(relay, 'SIGKILL');
  deliveredServing += receiver.arrived - arrivedBefore;
  process.stdout.write(`kill ${cycle}/${CYCLES}: acknowledged ${sender.acked}, arrived ${receiver.arrived}\n`);
  relay = await startRelay();
}
await sleep(2000);
await sender.stop();
const offeredFor = (Date.now() - started) / 1000;
// drain: the spool empty and nothing more arriving for a second
for (let last = -1, deadline = Date.now() + 180_000; ; ) {
  await sleep(1000);
  const total = JSON.parse(await api('/api/v1/queue')).total;
  if (total === 0 && receiver.arrived === last) break;
  if (Date.now() > deadline) throw new Error(`not drained after 180 s: ${total} messages queued`);
  last = receiver.arrived;
}
await kill(relay, 'SIGTERM');
receiver.close();

const { acknowledged: acked, delivered, lost, duplicates, unacknowledgedDelivered } = tally(sender, receiver);
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

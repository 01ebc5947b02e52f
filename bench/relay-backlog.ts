// Two relay figures with a large bulk backlog (default 1,000,000 messages of 4 KB):
//  1. resident memory of a relay process holding the backlog while its destination is down;
//  2. isolation: the backlog drains at full speed to one receiver (`mailops sink`, accept-all)
//     while password reminders are injected over SMTP at 10/s to the same destination; reports
//     p50/p99/max from the reminder's end of DATA to its arrival.
// The backlog is written straight into the spool (the relay's own Spool class) before the relay
// starts: receiving a million messages over SMTP first would only make the run longer.
// Usage: node_modules/.bin/node bench/relay-backlog.ts [MESSAGES] [REMINDER_SECONDS] (KEEP=1 keeps the spool directory)
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { Spool } from '../src/relay/spool/spool.ts';
import { freePort } from '../test/helpers/ports.ts';

const TOTAL = Number(process.argv[2] ?? 1_000_000);
const REMINDER_SECONDS = Number(process.argv[3] ?? 60);
const dir = mkdtempSync(join(tmpdir(), 'mailops-backlog-'));
const MAILOPS = new URL('../bin/mailops', import.meta.url).pathname;
const children: ChildProcess[] = [];
// the spool of a million messages is 4 GB: it goes with the run (KEEP=1 keeps it)
process.on('exit', () => {
  children.forEach((c) => c.kill('SIGKILL'));
  if (!process.env.KEEP) rmSync(dir, { recursive: true, force: true });
});

function start(args: string[], ready: RegExp): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, [MAILOPS, ...args]);
  children.push(child);
  // BENCH_LOG=FILE keeps the relay's event log, e.g. to see where a reminder's time went
  if (process.env.BENCH_LOG && args[0] === 'relay') child.stdout!.pipe(createWriteStream(process.env.BENCH_LOG, { flags: 'a' }));
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      if (output.length < 1 << 16) output += d;
      if (ready.test(output)) resolve({ child, output: () => output });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`mailops ${args[0]} exited ${code}: ${output}`)));
  });
}

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// 1. seed the backlog
const spoolDir = join(dir, 'spool');
const started = Date.now();
const spool = new Spool(spoolDir, { commitBatch: 2000, commitInterval: 0, lanes: ['transactional', 'member', 'bulk'] });
const filler = 'x'.repeat(76) + '\r\n';
const bodyFor = (i: number) => Buffer.from(`From: news@sender.test\r\nTo: member${i}@dest.test\r\nSubject: Weekly newsletter ${i}\r\nMessage-ID: <n${i}@sender.test>\r\n\r\n${filler.repeat(50)}`);
for (let i = 0; i < TOTAL; i += 2000) {
  const batch = [];
  for (let j = i; j < Math.min(TOTAL, i + 2000); j++) {
    batch.push(spool.insert({ lane: 'bulk', sender: 'news@sender.test', recipients: [`member${j}@dest.test`], client: '127.0.0.1', receivedAt: Date.now(), body: bodyFor(j) }));
  }
  await Promise.all(batch);
}
await spool.close();
console.log(`seeded ${TOTAL} bulk messages of ${bodyFor(0).length} bytes in ${((Date.now() - started) / 1000).toFixed(1)} s`);

const [smtpPort, httpPort, sinkSmtp, sinkHttp] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
const relayArgs = (smarthost: number) => ['relay', 'start', '--smtp', `127.0.0.1:${smtpPort}`, '--http', `127.0.0.1:${httpPort}`, '--spool', spoolDir, '--smarthost', `127.0.0.1:${smarthost}`];

// 2. isolation: the backlog drains to the sink; reminders at 10/s to the same destination
const sink = await start(['sink', '--smtp', `127.0.0.1:${sinkSmtp}`, '--http', `127.0.0.1:${sinkHttp}`, '--profile', 'accept-all', '--quiet'], /./);
await sleep(500);
let relay = await start(relayArgs(sinkSmtp), /"event":"listening"/);
let peak = 0;
const sampler = setInterval(() => { peak = Math.max(peak, rssMb(relay.child.pid!)); }, 500);
const getJson = async (url: string): Promise<any> => (await fetch(url)).json();
const stats = () => getJson(`http://127.0.0.1:${sinkHttp}/api/v1/stats`);
await fetch(`http://127.0.0.1:${sinkHttp}/api/v1/reset`, { method: 'POST' });
await sleep(3000); // bulk flowing at full speed
const transport = nodemailer.createTransport({ host: '127.0.0.1', port: smtpPort, ignoreTLS: true, pool: true, maxConnections: 2 });
const before = (await stats()).received;
const t0 = Date.now();
const sends: Promise<unknown>[] = [];
for (let seq = 0; seq < REMINDER_SECONDS * 10; seq++) {
  await sleep(Math.max(0, t0 + seq * 100 - Date.now()));
  sends.push(transport.sendMail({
    from: 'reset@app.test', to: `user${seq}@dest.test`, subject: 'Your password reset link', text: 'https://example.test/reset/abc',
    headers: { 'X-Mailops-Lane': 'transactional', 'X-Mailops-Load': `run=isolation; seq=${seq}; lane=transactional; sent=${Date.now()}` },
  }));
}
await Promise.all(sends);
await sleep(2000);
clearInterval(sampler);
const after = await stats();
const elapsed = (Date.now() - t0) / 1000;
const lane = after.byLane.transactional;
const remaining = (await getJson(`http://127.0.0.1:${httpPort}/api/v1/queue`)).lanes.bulk;
console.log(`isolation: ${REMINDER_SECONDS * 10} reminders at 10/s, ${lane?.count ?? 0} arrived; bulk delivered ${((after.received - before) / elapsed).toFixed(0)} msgs/s meanwhile, ${remaining.queued + remaining.deferred + remaining.active} still queued`);
console.log(`reminder end-of-DATA → arrival ms: p50 ${lane?.latencyMs.p50} p90 ${lane?.latencyMs.p90} p99 ${lane?.latencyMs.p99} max ${lane?.latencyMs.max}`);
console.log(`memory while draining: peak RSS ${peak.toFixed(0)} MB`);
if (process.env.BENCH_LOG) console.log((await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text()).split('\n').filter((l) => /sync_seconds_bucket|latency_seconds_bucket\{lane="transactional"/.test(l)).join('\n'));
transport.close();
relay.child.kill('SIGTERM');
await new Promise((r) => relay.child.once('exit', r));

// 3. memory with the backlog queued and the destination down (the sink is stopped)
sink.child.kill('SIGKILL');
relay = await start(relayArgs(sinkSmtp), /"event":"listening"/);
peak = 0;
for (let s = 0; s < 20; s++) {
  await sleep(1000);
  peak = Math.max(peak, rssMb(relay.child.pid!));
}
const queue = await getJson(`http://127.0.0.1:${httpPort}/api/v1/queue`);
console.log(`memory: ${queue.total} messages queued, destination down: peak RSS over 20 s ${peak.toFixed(0)} MB`);

process.exit(0);

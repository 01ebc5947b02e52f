// Delivery-log ingest into PostgreSQL from one node relaying at full speed, and what shipping
// costs the relay: `smtp-source -d -s 20 -l 4096` → `mailops relay start` → `smtp-sink` (Debian's
// postfix package), N messages per run, runs alternating without and with `log.postgres` (a
// durable PostgreSQL started here: fsync on). Each run has a fresh spool (and local log store).
// Prints per run the relay's rate (first message sent to the last one received by smtp-sink)
// and, with shipping, the records in PostgreSQL per second over the same span, how far behind
// the store was when the sink had everything, and when the last record was in. The shipping
// keeps pace with the relay there; a last run measures the store's own pace: PostgreSQL stopped
// for the run, started after it, and the outbox's 2 x N records timed as they drain.
// Usage: node_modules/.bin/node bench/logs-ingest.ts [MESSAGES=30000] [ROUNDS=2]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../test/helpers/haproxy.ts';
import { startPostgres } from '../test/helpers/postgres.ts';

const N = Number(process.argv[2] ?? 30_000);
const ROUNDS = Number(process.argv[3] ?? 2);
const MAILOPS = new URL('../bin/mailops', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'mailops-bench-logs-'));

const pg = await startPostgres({ durable: true, settings: { shared_buffers: '256MB', wal_buffers: '16MB', max_wal_size: '4GB' } });
const progress = (text: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${text}\n`);
progress(`PostgreSQL up at ${pg.url}`);
const children: ChildProcess[] = [];
const cleanup = async () => {
  for (const c of children) c.kill('SIGKILL');
  await pg.close();
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void cleanup().then(() => process.exit(1)));

const sinkPort = await freePort();
const sinkLog = join(work, 'sink.log');
const sink = spawn('smtp-sink', ['-u', 'nobody', '-c', `127.0.0.1:${sinkPort}`, '1000'], { stdio: ['ignore', 'pipe', 'pipe'] });
children.push(sink);
let sinkOut = '';
sink.stdout!.on('data', (d) => (sinkOut = (sinkOut + d).slice(-200)));
/** smtp-sink -c prints `sess=N quit=N mesg=N` and a carriage return after every message: the last mesg= is the count. */
const sinkCount = () => Number([...sinkOut.matchAll(/mesg=(\d+)/g)].at(-1)?.[1] ?? 0);

async function shippedRows(): Promise<number> {
  const rows = await pg.query('SELECT coalesce(sum(seq), 0) AS n FROM mailops_log_shipped').catch(() => [{ n: 0 }]);
  return Number(rows[0].n);
}

/** `backlog`: PostgreSQL is stopped for the run and started after it: how fast the outbox drains. */
async function round(shipping: boolean, index: number, backlog = false): Promise<number> {
  const dir = join(work, `run-${index}-${shipping ? 'on' : 'off'}`);
  const smtp = await freePort();
  const http = await freePort();
  const config = join(work, `relay-${index}.yaml`);
  writeFileSync(config, shipping ? `log: { postgres: { url: "${pg.url}" } }\n` : '');
  const relay = spawn(process.execPath, [MAILOPS, 'relay', 'start', '--config', config, '--smtp', `127.0.0.1:${smtp}`, '--http', `127.0.0.1:${http}`,
    '--spool', join(dir, 'spool'), '--smarthost', `127.0.0.1:${sinkPort}`], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(relay);
  let log = '';
  relay.stdout!.on('data', (d) => (log = (log + d).slice(-100_000)));
  while (!log.includes('"listening"')) await new Promise((r) => setTimeout(r, 50));
  if (shipping) while (!log.includes('logs-postgres-connected')) await new Promise((r) => setTimeout(r, 50));
  progress(`relay started (${shipping ? 'shipping on' : 'shipping off'})`);
  if (backlog) await pg.stop();
  const sinkBase = sinkCount();
  const shippedBase = await shippedRows();
  const started = Date.now();
  const source = spawn('smtp-source', ['-d', '-s', '20', '-m', String(N), '-l', '4096', '-f', 'bench@alpha.example', '-t', 'rcpt@dest.test', `127.0.0.1:${smtp}`], { stdio: 'ignore' });
  const sourceDone = new Promise((r) => source.once('exit', r)); // it may end before the sink has everything
  let shown = Date.now();
  while (sinkCount() - sinkBase < N) {
    await new Promise((r) => setTimeout(r, 20));
    if (Date.now() - shown > 5000) {
      shown = Date.now();
      progress(`${sinkCount() - sinkBase} of ${N} at the sink`);
    }
  }
  const sunk = Date.now();
  await sourceDone;
  const seconds = (sunk - started) / 1000;
  let line = `${shipping ? 'shipping on ' : 'shipping off'}  ${N} msgs in ${seconds.toFixed(2)} s = ${(N / seconds).toFixed(0)} msgs/s`;
  if (backlog) {
    await pg.start();
    let shipped = 0;
    while ((shipped = await shippedRows()) === 0) await new Promise((r) => setTimeout(r, 20));
    const from = Date.now();
    const first = shipped;
    while ((shipped = await shippedRows()) < 2 * N) await new Promise((r) => setTimeout(r, 20));
    const ms = Date.now() - from;
    line += `; then PostgreSQL started: the outbox of ${2 * N} records drained, the last ${2 * N - first} in ${(ms / 1000).toFixed(2)} s = ${((2 * N - first) / (ms / 1000)).toFixed(0)} records/s`;
  } else if (shipping) {
    const atSink = (await shippedRows()) - shippedBase;
    let done = atSink;
    while (done < 2 * N) {
      await new Promise((r) => setTimeout(r, 100));
      done = (await shippedRows()) - shippedBase;
    }
    const finished = Date.now();
    line += `; PostgreSQL: ${atSink} of ${2 * N} records in when the sink had all (${(atSink / seconds).toFixed(0)} records/s),` +
      ` all ${2 * N} in ${((finished - started) / 1000).toFixed(2)} s = ${((2 * N) / ((finished - started) / 1000)).toFixed(0)} records/s sustained`;
  }
  const rss = Number(readFileSync(`/proc/${relay.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)?.[1] ?? 0) / 1024;
  console.log(`${line}; relay RSS ${rss.toFixed(0)} MB`);
  relay.kill('SIGTERM');
  await new Promise((r) => relay.once('exit', r));
  return N / seconds;
}

const rates: Record<'off' | 'on', number[]> = { off: [], on: [] };
for (let i = 0; i < ROUNDS; i++) {
  for (const shipping of [false, true]) rates[shipping ? 'on' : 'off'].push(await round(shipping, i));
}
// the store's own pace: a run's records all waiting in the outbox (a fresh PostgreSQL database
// would do: shippedRows counts from zero, as the tables are emptied first)
await pg.query('TRUNCATE mailops_log, mailops_log_shipped');
await round(true, ROUNDS, true);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
console.log(`relay rate with shipping / without: ${(mean(rates.on) / mean(rates.off)).toFixed(3)} (means of ${ROUNDS} runs each: ${mean(rates.on).toFixed(0)} / ${mean(rates.off).toFixed(0)} msgs/s)`);
await cleanup();

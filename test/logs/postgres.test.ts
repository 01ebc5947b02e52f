// The central delivery-log store on a real PostgreSQL (Debian's postgresql, started by the test in
// a temporary directory): day partitions made ahead and old ones dropped by retention; records
// shipped in batches from each node's outbox; PostgreSQL stopped in the middle of a run (SMTP
// takes and delivers every message meanwhile, the outbox grows, and after the restart everything
// arrives exactly once, also across a node restart); two nodes searched through either one.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dayOf, PostgresStore } from '../../src/logs/postgres-store.ts';
import { runCli } from '../helpers/cli.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { startTestRelay, submit, type TestRelay } from '../helpers/relay.ts';
import { until } from '../helpers/wait.ts';

const OPERATOR = 'operator-token-0123456789';
const BETA = 'beta-token-0123456789abc';
const DAY = 86_400_000;

let pg: TestPostgres;
let receiver: Receiver;

before(async () => {
  pg = await startPostgres();
  receiver = await startReceiver();
});
after(async () => {
  await receiver?.close();
  await pg?.close();
});

function config(node: string): string {
  return `smtp: { hostname: ${node} }
http: { token: ${OPERATOR} }
tenants:
  - { name: alpha, senderDomains: [alpha.example], token: alpha-token-0123456789ab }
  - { name: beta, senderDomains: [beta.example], token: ${BETA} }
log: { postgres: { url: "${pg.url}", retention: 30d, partitionsAhead: 3, batch: 150 } }
delivery: { idleTimeout: 200ms }
`;
}

async function status(relay: TestRelay): Promise<any> {
  return (await fetch(`${relay.httpUrl}/api/v1/logs/status`, { headers: { authorization: `Bearer ${OPERATOR}` } })).json();
}

async function count(where = 'TRUE'): Promise<number> {
  return Number((await pg.query(`SELECT count(*) AS n FROM mailops_log WHERE ${where}`))[0].n);
}

/** Sends `n` messages, one per SMTP transaction, 20 at a time; resolves with how many got 250. */
async function send(relay: TestRelay, n: number, from: string, tag: string): Promise<number> {
  let accepted = 0;
  for (let i = 0; i < n; i += 20) {
    const infos = await Promise.all(Array.from({ length: Math.min(20, n - i) }, (_, k) => submit(relay.smtpPort, { from, to: [`${tag}-${i + k}@dest.test`], subject: tag, text: 'x' })));
    accepted += infos.filter((info) => /^250 /.test(info.response)).length;
  }
  return accepted;
}

test('partitions ahead and retention; batches from the outbox; PostgreSQL stopped mid-run: SMTP unaffected, the outbox grows, all arrives once', async (t) => {
  // a day partition from long ago: the node's first connection drops it (retention 30d)
  const setup = new PostgresStore(pg.url);
  await setup.ensureSchema();
  await setup.ensureDays(['20200101']);
  await setup.close();

  const dir = mkdtempSync(join(tmpdir(), 'mailops-pglog-'));
  let relay = await startTestRelay(config('node-a'), { smarthost: receiver.address }, dir);
  t.after(() => relay.stop());
  await until('partitions dropped', () => relay.events().some((e) => e.event === 'logs-partitions-dropped'));
  const days = (await pg.query("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'mailops_log'"))
    .map((r) => String(r.relname)).sort();
  const now = Date.now();
  assert.deepEqual(days, [0, 1, 2, 3].map((i) => `mailops_log_${dayOf(now + i * DAY)}`), 'today and 3 days ahead; 2020-01-01 dropped');

  const base = receiver.delivered.length;
  assert.equal(await send(relay, 100, 'news@alpha.example', 'first'), 100);
  await receiver.waitFor(base + 100);
  await untilAsync('200 records in PostgreSQL', async () => ((await count("node = 'node-a'")) === 200 ? true : undefined));

  // PostgreSQL goes away: SMTP and delivery go on, records wait in the node's outbox
  await pg.stop();
  assert.equal(await send(relay, 100, 'news@alpha.example', 'second'), 100, 'every message accepted while PostgreSQL is down');
  await receiver.waitFor(base + 200);
  const down = await untilAsync('the outbox holding the second run', async () => {
    const s = await status(relay);
    return s.postgres.state === 'down' && s.postgres.pending >= 200 ? s : undefined;
  });
  assert.match(down.postgres.lastError, /ECONNREFUSED|terminat|connect/i);
  assert.ok(relay.events().some((e) => e.event === 'logs-postgres-down'));
  const local = (await (await fetch(`${relay.httpUrl}/api/v1/logs?recipient=second-7@dest.test`, { headers: { authorization: `Bearer ${OPERATOR}` } })).json()) as any;
  assert.equal(local.store, 'local');
  assert.match(local.partial, /PostgreSQL is unreachable/);
  assert.deepEqual(local.records.map((r: { event: string }) => r.event), ['received', 'delivered']);

  // back: the backlog goes out, once
  await pg.start();
  await untilAsync('the outbox empty again', async () => {
    const s = await status(relay);
    return s.postgres.state === 'up' && s.postgres.pending === 0 ? s : undefined;
  }, 30_000);
  assert.equal(await count("node = 'node-a'"), 400);
  assert.equal(Number((await pg.query("SELECT count(DISTINCT seq) AS n FROM mailops_log WHERE node = 'node-a'"))[0].n), 400, 'no duplicates');
  // (not necessarily in that order: a claim runs ahead of the intake's fsync, so a message may be
  // delivered before its 250 was sent, and its `received` event comes after the `delivered`)
  const perMessage = await pg.query("SELECT queue_id, string_agg(event, ',' ORDER BY event) AS events FROM mailops_log WHERE node = 'node-a' GROUP BY queue_id");
  assert.equal(perMessage.length, 200);
  assert.ok(perMessage.every((m) => m.events === 'delivered,received'), `each message: received and delivered: ${JSON.stringify(perMessage.filter((m) => m.events !== 'delivered,received').slice(0, 3))}`);
  assert.ok(relay.events().some((e) => e.event === 'logs-postgres-up'));

  // a node restarted on the same spool reads its mark back from PostgreSQL and sends nothing twice
  await relay.stop();
  relay = await startTestRelay(config('node-a'), { smarthost: receiver.address }, dir);
  await until('reconnected', () => relay.events().some((e) => e.event === 'logs-postgres-connected'));
  assert.equal(await send(relay, 5, 'news@alpha.example', 'third'), 5);
  await untilAsync('the third run shipped', async () => ((await count("node = 'node-a'")) === 410 ? true : undefined));
  assert.equal(Number((await pg.query("SELECT count(DISTINCT seq) AS n FROM mailops_log WHERE node = 'node-a'"))[0].n), 410);
});

test('two nodes, one store: either node finds both nodes\' records; a tenant token still sees its own only', async (t) => {
  const a = await startTestRelay(config('node-b'), { smarthost: receiver.address });
  t.after(() => a.stop());
  const b = await startTestRelay(config('node-c'), { smarthost: receiver.address });
  t.after(() => b.stop());
  await send(a, 3, 'news@alpha.example', 'on-b');
  await send(b, 2, 'app@beta.example', 'beta-on-c');
  await untilAsync('both nodes shipped', async () => ((await count("node IN ('node-b', 'node-c')")) === 10 ? true : undefined));
  const search = async (relay: TestRelay, query: string, token: string): Promise<any> =>
    (await fetch(`${relay.httpUrl}/api/v1/logs?limit=100&since=1h&${query}`, { headers: { authorization: `Bearer ${token}` } })).json();
  const both = await search(a, 'event=delivered&domain=dest.test', OPERATOR);
  assert.equal(both.store, 'postgres');
  const mine = both.records.filter((r: { node: string }) => r.node === 'node-b' || r.node === 'node-c');
  assert.deepEqual([...new Set(mine.map((r: { node: string }) => r.node))].sort(), ['node-b', 'node-c']);
  const beta = await search(a, '', BETA);
  assert.ok(beta.records.length >= 4);
  assert.deepEqual([...new Set(beta.records.map((r: { tenant: string }) => r.tenant))], ['beta']);
  assert.ok(beta.records.every((r: { node: string }) => r.node === 'node-c'), 'beta\'s mail went through node-c only');
  // the summary of the central store through the CLI, on the other node
  const sum = await runCli(['logs', '--node', b.httpUrl, '--token', OPERATOR, '--summary', '--since', '1h', '--json']);
  assert.equal(sum.code, 0, sum.stderr);
  const summary = JSON.parse(sum.stdout);
  assert.equal(summary.store, 'postgres');
  assert.ok(summary.totals.delivered >= 5, `delivered in the store: ${summary.totals.delivered}`);
});

/** Polls an async condition (the test helper `until` takes synchronous ones). */
async function untilAsync<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

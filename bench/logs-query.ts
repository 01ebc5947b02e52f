// The central delivery-log store with 50 million records: a tenant's last hour, a recipient's
// history and the summary of one day, through the store's own code (src/logs/postgres-store.ts,
// the queries `mailops logs` and the web page run). The records are made inside PostgreSQL with
// generate_series, a day partition at a time (DAYS days up to now, evenly spread; 50 tenants,
// 2 million recipients, the outcome mix of a newsletter day), loaded before the indexes are built
// (as a restore would), then ANALYZEd. Each query runs 5 times with different tenants/recipients;
// prints each time and the median. A durable PostgreSQL of its own, started here.
// Usage: node_modules/.bin/node bench/logs-query.ts [RECORDS=50000000] [DAYS=10]
import { performance } from 'node:perf_hooks';
import { dayOf, PostgresStore } from '../src/logs/postgres-store.ts';
import { startPostgres } from '../test/helpers/postgres.ts';

const RECORDS = Number(process.argv[2] ?? 50_000_000);
const DAYS = Number(process.argv[3] ?? 10);
const DAY = 86_400_000;

const pg = await startPostgres({
  durable: true,
  settings: { shared_buffers: '2GB', maintenance_work_mem: '1GB', max_wal_size: '16GB', max_parallel_maintenance_workers: '2', work_mem: '64MB', checkpoint_timeout: '30min' },
});
const store = new PostgresStore(pg.url);
try {
  const now = Date.now();
  const first = now - DAYS * DAY;
  const days: string[] = [];
  for (let t = first; t < now + DAY; t += DAY) days.push(dayOf(t));
  await store.ensureSchema();
  await store.ensureDays(days);
  // load without indexes, then build them: what a bulk restore does
  for (const index of ['mailops_log_time', 'mailops_log_tenant_time', 'mailops_log_rcpt_time', 'mailops_log_queue_id']) await pg.query(`DROP INDEX ${index}`);
  const loadStarted = performance.now();
  const slice = 5_000_000;
  for (let from = 0; from < RECORDS; from += slice) {
    const to = Math.min(RECORDS, from + slice);
    // record g is at first + g * span / RECORDS
    await pg.query(`
      INSERT INTO mailops_log (time, node, seq, event, tenant, queue_id, lane, sender, rcpt, domain, provider, mx, ip, egress, tls, reply, code, class, attempt, queued_ms, delivery_ms)
      SELECT to_timestamp(($1::float8 + g::float8 * $2::float8 / $3::float8) / 1000), 'node-' || (g % 4), g, e.event, 'tenant-' || (g % 50),
             lpad(to_hex(g / 2), 8, '0'), (ARRAY['transactional', 'member', 'bulk'])[1 + (g / 2) % 3], 'news@tenant-' || (g % 50) || '.example',
             'user' || ((g / 2) * 7919 % 2000000) || '@' || d.domain, d.domain, d.domain, 'mx.' || d.domain, '192.0.2.' || (g % 250), 'default', true,
             e.reply, e.code, e.class, 1 + (g % 3) / 2, (g % 60000), (g % 900)
      FROM generate_series($4::bigint, $5::bigint) AS g,
           LATERAL (SELECT (ARRAY['gmail.com', 'yahoo.com', 'outlook.com', 'gmx.de', 'web.de', 't-online.de', 'icloud.com', 'example.net'])[1 + ((g / 2) * 7919 % 2000000) % 8] AS domain) d,
           LATERAL (SELECT CASE WHEN g % 2 = 0 THEN 'received' WHEN g % 100 < 85 THEN 'delivered' WHEN g % 100 < 93 THEN 'deferred'
                                WHEN g % 100 < 96 THEN 'failed' WHEN g % 100 < 97 THEN 'expired' WHEN g % 100 < 99 THEN 'bounced' ELSE 'suppressed' END AS event) k,
           LATERAL (SELECT k.event,
                           CASE k.event WHEN 'delivered' THEN '250 2.0.0 OK' WHEN 'deferred' THEN '451 4.7.28 rate limited, try again later'
                                        WHEN 'received' THEN NULL ELSE '550 5.1.1 user unknown' END AS reply,
                           CASE k.event WHEN 'delivered' THEN '2.0.0' WHEN 'deferred' THEN '4.7.28' WHEN 'received' THEN NULL ELSE '5.1.1' END AS code,
                           CASE k.event WHEN 'deferred' THEN 'throttled' WHEN 'delivered' THEN NULL WHEN 'received' THEN NULL ELSE 'bad-mailbox' END AS class) e`,
    [first, DAYS * DAY, RECORDS, from, to - 1]);
    process.stdout.write(`\rloaded ${to.toLocaleString()} records in ${((performance.now() - loadStarted) / 1000).toFixed(0)} s`);
  }
  const indexStarted = performance.now();
  await store.ensureSchema(); // the parent's indexes again: built on every partition
  await pg.query('ANALYZE mailops_log');
  const size = (await pg.query("SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) AS s FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'mailops_log'::regclass"))[0].s;
  console.log(`\n${RECORDS.toLocaleString()} records over ${DAYS} days loaded in ${((indexStarted - loadStarted) / 1000).toFixed(0)} s, indexed and analysed in ${((performance.now() - indexStarted) / 1000).toFixed(0)} s; ${size} with indexes`);

  const time = async (what: string, runs: (i: number) => Promise<unknown>) => {
    const ms: number[] = [];
    let sample: unknown;
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      sample = await runs(i);
      ms.push(performance.now() - t0);
    }
    const sorted = [...ms].sort((a, b) => a - b);
    console.log(`${what}: ${ms.map((m) => m.toFixed(1)).join(', ')} ms (median ${sorted[2].toFixed(1)} ms) ${typeof sample === 'string' ? sample : ''}`);
  };
  const end = Date.now();
  await time('a tenant\'s last hour (newest 100 records)', async (i) => {
    const rows = await store.query({ tenant: `tenant-${7 + i}`, since: end - 3_600_000 }, 100);
    return `[${rows.length} rows]`;
  });
  // recipients that have mail: a sample of the store's, picked before the timing
  const recipients = (await pg.query('SELECT rcpt FROM mailops_log TABLESAMPLE SYSTEM (0.1) LIMIT 5')).map((r) => String(r.rcpt));
  await time('a recipient\'s history (newest 100 records, all days)', async (i) => {
    const rows = await store.query({ recipient: recipients[i % recipients.length] }, 100);
    return `[${rows.length} rows]`;
  });
  const yesterday = Date.UTC(new Date(end - DAY).getUTCFullYear(), new Date(end - DAY).getUTCMonth(), new Date(end - DAY).getUTCDate());
  await time('the summary of one day (yesterday, per hour)', async () => {
    const groups = await store.summary({ since: yesterday, until: yesterday + DAY }, 3_600_000);
    return `[${groups.byBucket.reduce((n, g) => n + Number(g.n), 0).toLocaleString()} records]`;
  });
  await time('a tenant\'s summary of one day (yesterday, per hour)', async (i) => {
    const groups = await store.summary({ tenant: `tenant-${20 + i}`, since: yesterday, until: yesterday + DAY }, 3_600_000);
    return `[${groups.byBucket.reduce((n, g) => n + Number(g.n), 0).toLocaleString()} records]`;
  });
} finally {
  await store.close();
  await pg.close();
}

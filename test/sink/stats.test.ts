// Measurements: counts, X-Mailops-Load latency per lane, duplicates by run+seq, the HTTP API's
// JSON shape, reset, Prometheus text, bounded memory of duplicate tracking, seeded determinism.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSink } from '../../src/sink/index.ts';
import { SeqTracker } from '../../src/sink/dedupe.ts';
import { parseLoadTag } from '../../src/sink/load-header.ts';
import { getJson, message, session } from './client.ts';

const tag = (run: string, seq: number, lane: string, sent: number) => ({ 'X-Mailops-Load': `run=${run}; seq=${seq}; lane=${lane}; sent=${sent}` });

test('GET /api/v1/stats: counts, latency per lane from X-Mailops-Load, duplicates; POST /api/v1/reset clears them', async () => {
  const sink = await startSink({ smtp: '127.0.0.1:0', http: '127.0.0.1:0', profile: 'accept-all' });
  try {
    const { client } = await session(sink.smtpPort);
    const now = Date.now();
    // transactional: sent 100..500 ms ago; bulk: 2 s ago; one bulk message arrives twice.
    for (const [i, age] of [100, 200, 300, 400, 500].entries()) {
      assert.equal((await client.send('n@shop.test', [`t${i}@gmail.com`], message(tag('r1', i, 'transactional', now - age)))).at(-1)?.code, 250);
    }
    for (const seq of [10, 11, 10]) await client.send('n@shop.test', ['b@gmx.net'], message(tag('r1', seq, 'bulk', now - 2000)));
    // The same seq in another run is not a duplicate; no header: counted, but in no lane.
    await client.send('n@shop.test', ['c@acme.test'], message(tag('r2', 10, 'bulk', now - 2000)));
    await client.send('n@shop.test', ['d@acme.test'], message());
    await client.quit();

    const s = await getJson(sink.httpPort!, '/api/v1/stats');
    assert.equal(s.received, 10);
    assert.equal(s.duplicates, 1);
    assert.ok(s.bytes > 10 * 60);
    assert.deepEqual(s.byDomain, { 'gmail.com': 5, 'gmx.net': 3, 'acme.test': 2 });
    assert.deepEqual(s.byProfile, { 'accept-all': 10 });
    assert.equal(s.replies['250'], 30);
    assert.deepEqual(Object.keys(s.byLane).sort(), ['bulk', 'transactional']);
    const t = s.byLane.transactional;
    assert.equal(t.count, 5);
    assert.deepEqual(Object.keys(t.latencyMs), ['p50', 'p90', 'p99', 'max']);
    assert.ok(t.latencyMs.p50 >= 300 && t.latencyMs.p50 < 1300, `p50 ${t.latencyMs.p50}`);
    assert.ok(t.latencyMs.max >= 500 && t.latencyMs.max < 1500, `max ${t.latencyMs.max}`);
    assert.ok(t.latencyMs.p50 <= t.latencyMs.p90 && t.latencyMs.p90 <= t.latencyMs.p99 && t.latencyMs.p99 <= t.latencyMs.max);
    assert.equal(s.byLane.bulk.count, 4);
    assert.ok(s.byLane.bulk.latencyMs.p50 >= 2000);

    const metrics = await (await fetch(`http://127.0.0.1:${sink.httpPort}/metrics`)).text();
    assert.match(metrics, /^mailops_sink_received_total 10$/m);
    assert.match(metrics, /^mailops_sink_duplicates_total 1$/m);
    assert.match(metrics, /^mailops_sink_replies_total\{phase="dataEnd",code="250"\} 10$/m);
    assert.match(metrics, /^mailops_sink_lane_latency_ms\{lane="bulk",quantile="0\.99"\} \d+$/m);
    assert.match(metrics, /^# TYPE mailops_sink_received_total counter$/m);

    assert.deepEqual(await getJson(sink.httpPort!, '/api/v1/reset', 'POST'), { ok: true });
    const cleared = await getJson(sink.httpPort!, '/api/v1/stats');
    assert.equal(cleared.received, 0);
    assert.deepEqual(cleared.byLane, {});
    assert.deepEqual(cleared.replies, {});
    assert.equal((await fetch(`http://127.0.0.1:${sink.httpPort}/api/v1/reset`)).status, 405);
    assert.equal((await fetch(`http://127.0.0.1:${sink.httpPort}/nope`)).status, 404);
  } finally {
    await sink.close();
  }
});

test('X-Mailops-Load: parsed from the header block only, folded lines joined', () => {
  assert.deepEqual(parseLoadTag('From: a@b\r\nX-Mailops-Load: run=abc; seq=7;\r\n lane=bulk; sent=1700000000000\r\n'),
    { run: 'abc', seq: 7, lane: 'bulk', sent: 1700000000000 });
  assert.equal(parseLoadTag('From: a@b\r\nX-Other: run=abc; seq=7\r\n'), undefined);
  assert.equal(parseLoadTag('x-mailops-load: seq=7; lane=bulk\r\n'), undefined, 'no run');
});

test('duplicate tracking by run+seq is a bitset: memory grows with the highest seq, not with messages', () => {
  const seqs = new SeqTracker(4);
  for (let round = 0; round < 3; round++) for (let seq = 0; seq < 1_000_000; seq++) seqs.seen('run-a', seq);
  assert.ok(seqs.bytes() <= 256 * 1024, `${seqs.bytes()} bytes for 1 M seqs`);
  assert.equal(seqs.seen('run-a', 999_999), true);
  assert.equal(seqs.seen('run-b', 999_999), false);
  for (const run of ['c', 'd', 'e', 'f']) seqs.seen(run, 1);
  assert.equal(seqs.seen('run-a', 5), false, 'the oldest run was forgotten: at most 4 runs kept');
  assert.equal(seqs.seen('huge', 2 ** 40), false);
  assert.equal(seqs.untracked, 1);
});

test('determinism: the same seed gives the same replies; another seed gives others', async () => {
  const profiles = { profiles: { corporate: { latency: null, unknownUsers: { share: 0.3 }, mailboxFull: { share: 0.2 } } } };
  const run = async (seed: number, order: number[]) => {
    const sink = await startSink({ smtp: '127.0.0.1:0', http: false, seed, profiles });
    try {
      const { client } = await session(sink.smtpPort);
      await client.command('MAIL FROM:<n@shop.test>');
      const codes = new Map<number, number>();
      for (const i of order) codes.set(i, (await client.command(`RCPT TO:<user${i}@acme.test>`))!.code);
      await client.quit();
      return [...codes].sort((a, b) => a[0] - b[0]).map(([, c]) => c).join(',');
    } finally {
      await sink.close();
    }
  };
  const ids = Array.from({ length: 60 }, (_, i) => i);
  const a = await run(42, ids);
  assert.equal(await run(42, [...ids].reverse()), a, 'same seed, other arrival order: same replies per recipient');
  assert.notEqual(await run(43, ids), a);
  assert.match(a, /550/);
  assert.match(a, /452/);
  assert.match(a, /250/);
});

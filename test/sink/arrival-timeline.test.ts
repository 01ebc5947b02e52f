// The sink's arrival timeline and refusal counts: a message held up for a minute shows as a spike
// in its lane and second; ?since= cuts the timeline; the ring stays bounded; every 4xx/5xx is
// counted by provider profile, phase and normalised reply, with the label set capped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSink } from '../../src/sink/index.ts';
import { ArrivalTimeline, type ArrivalBucket } from '../../src/sink/arrival-timeline.ts';
import { replyTemplate } from '../../src/sink/reply.ts';
import { Stats } from '../../src/sink/stats.ts';
import { getJson, message, RawClient, session } from './client.ts';

const tag = (seq: number, lane: string, sent: number) => ({ 'X-Mailops-Load': `run=tl; seq=${seq}; lane=${lane}; sent=${sent}` });
const second = (ms: number) => ms - (ms % 1000);

test('arrival timeline: a reminder held up for a minute is a spike in its lane and second; ?since= cuts the timeline', async () => {
  const sink = await startSink({ smtp: '127.0.0.1:0', http: '127.0.0.1:0', profile: 'accept-all' });
  try {
    const { client } = await session(sink.smtpPort);
    let seq = 0;
    const send = async (lane: string, ageMs: number) => {
      const replies = await client.send('n@shop.test', ['r@acme.test'], message(tag(seq++, lane, Date.now() - ageMs)));
      assert.equal(replies.at(-1)?.code, 250);
    };
    for (let i = 0; i < 5; i++) {
      await send('transactional', 100);
      await send('bulk', 2000);
    }
    const lateFrom = Date.now();
    await send('transactional', 60_000);
    const lateUntil = Date.now();
    for (let i = 0; i < 5; i++) await send('transactional', 100);
    await client.quit();

    const s = await getJson(sink.httpPort!, '/api/v1/stats');
    assert.equal(s.arrivalTimeline.bucketMs, 1000);
    assert.ok(Math.abs(s.arrivalTimeline.now - Date.now()) < 5000, 'the sink says what time it is');
    const buckets = s.arrivalTimeline.buckets as ArrivalBucket[];
    const spikes = buckets.filter((b) => (b.lanes.transactional?.max ?? 0) >= 60_000);
    assert.equal(spikes.length, 1, JSON.stringify(buckets));
    const spike = spikes[0];
    assert.ok(spike.start >= second(lateFrom) && spike.start <= second(lateUntil), `spike in the second it arrived: ${spike.start} vs ${lateFrom}..${lateUntil}`);
    assert.ok(spike.lanes.transactional.p99 >= 60_000 && spike.lanes.transactional.max < 61_000, JSON.stringify(spike));
    for (const b of buckets) {
      if (b !== spike && b.lanes.transactional) assert.ok(b.lanes.transactional.max < 5000, `no other transactional second is slow: ${JSON.stringify(b)}`);
      if (b.lanes.bulk) assert.ok(b.lanes.bulk.max >= 2000 && b.lanes.bulk.max < 10_000, `bulk unaffected: ${JSON.stringify(b)}`);
    }
    const count = (lane: string) => buckets.reduce((n, b) => n + (b.lanes[lane]?.count ?? 0), 0);
    assert.equal(count('transactional'), 11);
    assert.equal(count('bulk'), 5);
    assert.deepEqual(buckets.map((b) => b.start), [...buckets.map((b) => b.start)].sort((a, b) => a - b), 'oldest first');

    const later = await getJson(sink.httpPort!, `/api/v1/stats?since=${spike.start + 1000}`);
    assert.ok(later.arrivalTimeline.buckets.every((b: ArrivalBucket) => b.start > spike.start), 'only seconds after the spike');
    const from = await getJson(sink.httpPort!, `/api/v1/stats?since=${spike.start + 500}`);
    assert.equal(from.arrivalTimeline.buckets[0].start, spike.start, 'the second holding `since` is included');
    const bad = await fetch(`http://127.0.0.1:${sink.httpPort}/api/v1/stats?since=yesterday`);
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /since: expected epoch milliseconds, got "yesterday"/);

    sink.reset();
    assert.deepEqual(sink.stats().arrivalTimeline.buckets, []);
  } finally {
    await sink.close();
  }
});

test('arrival timeline: a bounded ring of seconds, past seconds reduced to a few numbers', () => {
  const timeline = new ArrivalTimeline(5);
  const t0 = 1_700_000_000_000;
  for (let s = 0; s < 20; s++) for (let i = 0; i < 50; i++) timeline.record(s % 2 ? 'bulk' : 'transactional', t0 + s * 1000 + i, s * 10 + i);
  const snap = timeline.snapshot(t0 + 20_000);
  assert.deepEqual(snap.buckets.map((b) => (b.start - t0) / 1000), [15, 16, 17, 18, 19], 'the last 5 seconds, the one in progress included');
  assert.deepEqual(snap.buckets[4].lanes, { bulk: { count: 50, p50: 214, p99: 239, max: 239 } });
  // Memory stays flat: a long run keeps the same number of buckets.
  const stats = new Stats();
  for (let s = 0; s < 2000; s++) stats.message([{ domain: 'a.test', profile: 'p' }], 10, { run: 'r', seq: s, lane: 'bulk', sent: t0 + s * 1000 }, t0 + s * 1000 + 5);
  assert.equal(stats.snapshot().arrivalTimeline.buckets.length, 900);
});

test('refusals: every 4xx/5xx by provider profile, phase and reply, addresses and IPs as placeholders', async () => {
  const sink = await startSink({
    smtp: '127.0.0.1:0', http: '127.0.0.1:0', tls: false,
    profiles: { profiles: Object.fromEntries(['google', 'greylisting', 'telekom'].map((p) => [p, { latency: null, unknownUsers: { share: 0, prefix: 'unknown' } }])) },
  });
  try {
    const { client } = await session(sink.smtpPort);
    assert.equal((await client.command('MAIL FROM:<n@shop.test> SIZE=999999999999'))?.code, 552);
    assert.equal((await client.command('MAIL FROM:<n@shop.test>'))?.code, 250);
    for (const [rcpt, code] of [['unknown1@gmail.com', 550], ['anna@greylist-a.test', 450], ['ben@greylist-b.test', 450], ['unknown2@gmail.com', 550], ['ok@gmail.com', 250]] as const) {
      assert.equal((await client.command(`RCPT TO:<${rcpt}>`))?.code, code, rcpt);
    }
    await client.quit();
    // T-Online refuses an address it does not know at connect (here: at the first RCPT on the shared port).
    const stranger = await RawClient.open(sink.smtpPort, { localAddress: '127.0.0.9' });
    await stranger.next();
    await stranger.command('EHLO client.test');
    await stranger.command('MAIL FROM:<n@shop.test>');
    assert.equal((await stranger.command('RCPT TO:<t@t-online.de>'))?.code, 554);
    await stranger.closed;

    const s = await getJson(sink.httpPort!, '/api/v1/stats');
    assert.deepEqual(s.refusals.map((r: { count: number }) => r.count), [2, 2, 1, 1], 'most frequent first');
    const find = (profile: string, code: number) => s.refusals.find((r: { profile: string; code: number }) => r.profile === profile && r.code === code);
    assert.deepEqual(find('greylisting', 450), {
      profile: 'greylisting', phase: 'rcpt', code: 450, enhanced: '4.2.0', count: 2,
      text: '<{recipient}>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/{domain}.html',
    });
    const google = find('google', 550);
    assert.equal(google.count, 2, 'a multi-line reply counted once per refusal');
    assert.equal(google.enhanced, '5.1.1');
    assert.match(google.text, /^The email account that you tried to reach does not exist\. Please try double-checking/);
    assert.ok(google.text.length <= 120);
    assert.deepEqual(find('telekom', 554), {
      profile: 'telekom', phase: 'rcpt', code: 554, enhanced: '', count: 1,
      text: 'IP={ip} - None/bad reputation (NOWL). Contact tobr@rx.t-online.de to be allow-listed.',
    });
    assert.deepEqual(find('(sink)', 552), { profile: '(sink)', phase: 'mail', code: 552, enhanced: '', text: '', count: 1 });
    assert.equal(s.refusals.length, 4);
    assert.equal(s.refusals.reduce((n: number, r: { count: number }) => n + r.count, 0), 6, 'as many as the 4xx/5xx in `replies`');
    sink.reset();
    assert.deepEqual(sink.stats().refusals, []);
  } finally {
    await sink.close();
  }
});

test('refusals: the label set is capped, the rest adds up under (other)', () => {
  const stats = new Stats({ maxRefusals: 2 });
  const reply = replyTemplate('550 5.1.1 <{recipient}>: unknown', 'test');
  for (let i = 0; i < 5; i++) stats.reply('rcpt', 550, { profile: `p${i}`, reply, vars: { recipient: `u${i}@a.test` } });
  stats.reply('rcpt', 550, { profile: 'p0', reply, vars: { recipient: 'v@b.test' } });
  assert.deepEqual(stats.snapshot().refusals.map((r) => [r.profile, r.count]), [['(other)', 3], ['p0', 2], ['p1', 1]]);
  stats.reply('rcpt', 250);
  assert.equal(stats.snapshot().refusals.length, 3, 'a 250 is no refusal');
});

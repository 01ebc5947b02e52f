// The data model without a terminal: Prometheus parsing, rates and latency quantiles from deltas,
// sums over nodes (quantiles of the summed buckets), the event feed's per-domain state in bounded
// memory, event lines, the text tables --once prints, the optional requeued counter and the egress
// paths view (per node, held-back paths first, within 80 columns).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Dashboard } from '../../src/tui/dashboard.ts';
import { formatEvent } from '../../src/tui/event-format.ts';
import { EventFeed } from '../../src/tui/events.ts';
import { laneLines, pathLines, table, textReport } from '../../src/tui/format.ts';
import { parsePrometheus } from '../../src/tui/prometheus.ts';
import { histogramDelta, histogramSum, nodeLanes, quantile, sumLanes } from '../../src/tui/stats.ts';
import type { EgressPath, Reading } from '../../src/tui/types.ts';

test('parsePrometheus reads samples with labels and skips what it cannot read', () => {
  const samples = parsePrometheus([
    '# HELP x y', 'mailops_received_total{lane="bulk"} 12', 'mailops_delivery_latency_seconds_bucket{lane="bulk",le="+Inf"} 3',
    'garbage line here', 'mailops_x{lane="a\\"b"} NaN', 'other_metric 5', 'mailops_queue_messages 7', '',
  ].join('\n'), 'mailops_');
  assert.deepEqual(samples, [
    { name: 'mailops_received_total', labels: { lane: 'bulk' }, value: 12 },
    { name: 'mailops_delivery_latency_seconds_bucket', labels: { lane: 'bulk', le: '+Inf' }, value: 3 },
    { name: 'mailops_queue_messages', labels: {}, value: 7 },
  ]);
});

test('quantiles from bucket deltas, and histograms summed across nodes before the quantile', () => {
  const le = [0.1, 1, 10, Infinity];
  assert.equal(quantile({ le, counts: [0, 0, 0, 0] }, 0.5), undefined);
  assert.equal(quantile({ le, counts: [50, 99, 100, 100] }, 0.5), 0.1);
  assert.equal(quantile({ le, counts: [50, 99, 100, 100] }, 0.99), 1);
  assert.equal(quantile({ le, counts: [0, 0, 0, 2] }, 0.5), Infinity);
  // the window: what happened between two readings
  assert.deepEqual(histogramDelta({ le, counts: [60, 120, 130, 130] }, { le, counts: [50, 99, 100, 100] }), { le, counts: [10, 21, 30, 30] });
  assert.equal(histogramDelta({ le, counts: [1, 1, 1, 1] }, { le, counts: [5, 5, 5, 5] }), undefined, 'a restarted node has no window');
  // node A: 99 fast deliveries; node B: 1 slow one. The p99 of all 100 is fast; p100 is slow.
  const sum = histogramSum({ le, counts: [99, 99, 99, 99] }, { le: [1, 10, Infinity], counts: [0, 1, 1] })!;
  assert.deepEqual(sum, { le, counts: [99, 99, 100, 100] });
  assert.equal(quantile(sum, 0.99), 0.1);
  assert.equal(quantile(sum, 1), 10);
});

function reading(at: number, received: number, delivered: number, queue: Partial<Reading> = {}): Reading {
  return {
    at, uptimeSeconds: at / 1000, lanes: ['transactional', 'bulk'], problems: [],
    queue: { lanes: { bulk: { queued: 5, deferred: 2, active: 1, oldestAgeSeconds: 30 } }, total: 6 },
    counters: { bulk: { received, delivered, deferred: 0, failed: 0, expired: 0 } },
    latency: { bulk: { le: [1, Infinity], counts: [delivered, delivered] } },
    ...queue,
  };
}

test('rates over the rate window and latency over the latency window of one node', () => {
  const readings = [reading(0, 0, 0), reading(50_000, 100, 50), reading(55_000, 110, 60), reading(60_000, 150, 100)];
  const lanes = nodeLanes(readings, 10_000, 60_000);
  const bulk = lanes.get('bulk')!;
  assert.equal(bulk.rates!.received, (150 - 100) / 10); // from the reading 10 s before
  assert.equal(bulk.rates!.delivered, 5);
  assert.deepEqual(bulk.window!.counts, [100, 100]); // everything since the reading 60 s before
  assert.deepEqual(lanes.get('transactional')!.queue, { queued: 0, deferred: 0, active: 0, oldestAgeSeconds: 0 });
  assert.equal(lanes.get('transactional')!.rates, undefined, 'no counters for the lane: no rates');
  assert.equal(nodeLanes([reading(0, 5, 5)], 10_000, 60_000).get('bulk')!.rates, undefined, 'one reading: no rates yet');
});

test('the aggregate sums the nodes that are up and keeps the depth history aligned per tick', () => {
  const dash = new Dashboard({ nodes: ['http://a:1', 'http://b:2', 'http://c:3'], intervalMs: 1000, historyMs: 10_000, top: 5, events: false });
  const [a, b, c] = dash.nodes;
  a.readings = [reading(0, 0, 0), reading(1000, 10, 10)];
  b.readings = [reading(0, 0, 0), reading(1000, 20, 0)];
  c.readings = [reading(0, 0, 0)];
  a.status = 'up';
  b.status = 'partial';
  c.status = 'down';
  dash.ticks.push(1000, 2000);
  a.depths = [{ bulk: 8 }, { bulk: 9 }];
  b.depths = [{ bulk: 8 }];
  c.depths = [null, null];
  const all = dash.snapshot('all');
  const bulk = all.lanes.find((l) => l.lane === 'bulk')!;
  assert.equal(bulk.depth, 16);
  assert.equal(bulk.queued, 10);
  assert.equal(bulk.rates!.received, 30);
  assert.equal(bulk.totals!.delivered, 10);
  assert.equal(all.messages, 12);
  assert.deepEqual(all.history, { times: [1000, 2000], lanes: { bulk: [8, 17] } });
  assert.deepEqual(dash.snapshot('http://c:3').history.lanes, {}, 'a node down throughout has no depth line');
  assert.deepEqual(dash.snapshot('http://c:3').lanes, [], 'a down node contributes no numbers');
  assert.deepEqual(dash.views, ['all', 'http://a:1', 'http://b:2', 'http://c:3']);
});

test('event feed: last outcome, last error, pauses and recent deferrals per domain, in bounded memory', () => {
  const feed = new EventFeed('http://x:1');
  const t0 = Date.parse('2026-01-01T10:00:30Z');
  const line = (fields: Record<string, unknown>) => JSON.stringify({ time: '2026-01-01T10:00:30.000Z', ...fields });
  feed.take(line({ event: 'deferred', lane: 'bulk', domain: 'gmx.de', reply: '421 Too many connections' }), t0);
  feed.take(line({ event: 'deferred', lane: 'bulk', domain: 'gmx.de', reply: '421 Too many connections' }), t0 + 1000);
  feed.take(line({ event: 'delivered', lane: 'bulk', domain: 'gmx.de' }), t0 + 2000);
  feed.take(line({ event: 'failed', lane: 'bulk', domain: 'x.test', reply: '550 5.1.1 unknown' }), t0);
  feed.take(line({ event: 'destination-paused', destination: 'mx:yahoo.com', until: new Date(t0 + 60_000).toISOString(), reply: '421 4.7.0 [TSS04]' }), t0);
  feed.take('not json, no event', t0);
  const gmx = feed.domains.get('gmx.de')!;
  assert.equal(gmx.lastOutcome, 'delivered');
  assert.equal(gmx.lastError, '421 Too many connections');
  assert.equal(feed.recentDeferrals('gmx.de', t0 + 2000), 2);
  assert.equal(feed.recentDeferrals('gmx.de', t0 + 4 * 60_000), 2, 'still within five minutes');
  assert.equal(feed.recentDeferrals('gmx.de', t0 + 6 * 60_000), 0, 'aged out');
  assert.equal(feed.domains.get('x.test')!.lastOutcome, 'failed');
  assert.deepEqual(feed.pauses.get('mx:yahoo.com'), { until: t0 + 60_000, reply: '421 4.7.0 [TSS04]' });
  assert.deepEqual(feed.lines.map((l) => l.event), ['deferred', 'deferred', 'delivered', 'failed', 'destination-paused']);
  for (let i = 0; i < 6000; i++) feed.take(line({ event: 'deferred', domain: `d${i}.test`, reply: '451' }), t0);
  assert.equal(feed.domains.size, 5000);
  assert.equal(feed.lines.length, 200);
  assert.ok(!feed.domains.has('gmx.de') && feed.domains.has('d5999.test'), 'least recently seen domains go first');
});

test('event lines and text tables', () => {
  assert.deepEqual(formatEvent('n1', JSON.stringify({ time: '2026-01-01T10:00:30.000Z', event: 'deferred', lane: 'bulk', id: '0000002A', rcpt: 'u@gmx.de', reply: '421  Too\nmany' })),
    { time: '2026-01-01T10:00:30.000Z', node: 'n1', event: 'deferred', text: 'bulk 0000002A u@gmx.de: 421 Too many' });
  assert.equal(formatEvent('n1', JSON.stringify({ event: 'delivered', lane: 'transactional', id: '1', rcpt: 'a@b', queuedMs: 1500 })).text, 'transactional 1 a@b after 1.5s');
  assert.equal(formatEvent('n1', JSON.stringify({ event: 'retry-requested', domain: 'gmx.de', retried: 4 })).text, 'domain=gmx.de retried=4');
  assert.equal(formatEvent('n1', '{broken').event, '?');
  assert.deepEqual(table([['A', 'NUM', 'B'], ['long', '1', 'x']], 'lrl'), ['A     NUM  B', 'long    1  x']);
  const lines = laneLines({
    at: '', view: 'all', rateWindowSeconds: 10, latencyWindowSeconds: 60, nodes: [], messages: 0, domains: [], providers: [], paths: [], suspended: [], events: [],
    history: { times: [], lanes: {} },
    lanes: [
      { lane: 'bulk', queued: 1, deferred: 2, active: 3, depth: 6, oldestAgeSeconds: 3700, rates: { received: 2.25, delivered: 120.4, deferred: 0, failed: 0, expired: 0, requeued: 3.5 },
        latency: { p50: 0.5, p99: 2.5, count: 10 } },
      { lane: 'member', queued: 0, deferred: 0, active: 0, depth: 0, oldestAgeSeconds: 0, rates: { received: 0, delivered: 0, deferred: 0, failed: 0, expired: 0 } },
    ],
  });
  assert.match(lines[0], /FAIL\/s\s+REQUEUE\/s\s+DELIVERED/);
  assert.match(lines[1], /^bulk\s+6\s+1\s+2\s+3\s+1h1m\s+2\.3\s+120\s+0\s+0\s+3\.5\s+-\s+-\s+-\s+≤500ms\s+≤2\.5s$/);
  assert.match(lines[2], /^member\s+0\s+0\s+0\s+0\s+0s\s+0\s+0\s+0\s+0\s+-\s+-/, 'a node without the requeued counter: "-", not 0');
});

test('requeued is optional: no rate from a node without the counter, summed over the nodes that have it', () => {
  const older = (at: number, received: number) => reading(at, received, 0);
  const newer = (at: number, requeued: number) => {
    const r = reading(at, 0, 0);
    r.counters!.bulk.requeued = requeued;
    return r;
  };
  const old = nodeLanes([older(0, 0), older(1000, 10)], 10_000, 60_000);
  assert.equal(old.get('bulk')!.rates!.requeued, undefined);
  assert.equal(old.get('bulk')!.rates!.received, 10);
  const sum = new Map();
  sumLanes(sum, old);
  sumLanes(sum, nodeLanes([newer(0, 10), newer(2000, 30)], 10_000, 60_000));
  assert.equal(sum.get('bulk').rates.requeued, 10);
  assert.equal(sum.get('bulk').totals.requeued, 30);
});

const AT = Date.parse('2026-11-30T09:50:00.000Z');
const iso = (ms: number) => new Date(AT + ms).toISOString();
const REPLY = '421-4.7.28 [127.0.0.3] Our system has detected an unusual rate of unsolicited mail originating from your IP address.';
const lane = (name: string, state: string, limit: number, busy: number, queued: number, more = {}) => ({ lane: name, state, limit, busy, queued, ...more });
const path = (egress: string, site: string, connections: number, maxConnections: number, lanes: EgressPath['lanes'], more: Partial<EgressPath> = {}): EgressPath =>
  ({ egress, site, profile: site.startsWith('provider:') ? site.slice(9) : 'default', connections, maxConnections, lanes, destinations: [], ...more });

test('egress paths: listed per node, held back first then by ready mail, idle lanes folded, within 80 columns', () => {
  const dash = new Dashboard({ nodes: ['http://127.0.0.1:8025', 'http://127.0.0.1:8026'], intervalMs: 1000, historyMs: 10_000, top: 5, events: false });
  const [a, b] = dash.nodes;
  a.status = 'up';
  b.status = 'partial';
  const shared = () => path('default', 'smarthost:127.0.0.1:2526', 1, 20, [lane('transactional', 'active', 20, 1, 0), lane('bulk', 'active', 20, 0, 0)]);
  a.readings = [{
    ...reading(AT, 0, 0), suspended: [{ domain: 'gmx.de', reason: 'maintenance', until: 'until resumed' }],
    paths: [
      path('127.0.0.2', 'mx:mx3.hosting.mailops.test', 0, 10, [lane('transactional', 'active', 10, 0, 0)]),
      shared(),
      path('127.0.0.3', 'provider:google', 2, 5, [lane('bulk', 'paused', 1, 0, 120, { pausedUntil: iso(250_000), reply: REPLY })], {
        lastAction: { action: 'pause', lanes: ['bulk'], at: iso(-50_000), until: iso(250_000), reply: REPLY, by: 'reply' },
      }),
      path('127.0.0.3', 'provider:yahoo', 1, 4, [lane('bulk', 'reduced', 2, 1, 14)], {
        lastAction: { action: 'reduce', lanes: ['bulk', 'member'], at: iso(-12_000), limit: 2, reply: '421 4.7.0 [TSS04] Messages temporarily deferred', by: 'reply' },
      }),
      path('127.0.0.3', 'provider:outlook', 0, 5, [lane('bulk', 'active', 5, 0, 30)]),
    ],
  }];
  b.readings = [{ ...reading(AT, 0, 0), paths: [shared()] }];
  const all = dash.snapshot('all');
  assert.deepEqual(all.paths.map((p) => `${p.node} ${p.site} ${p.state} ${p.queued}`), [
    '127.0.0.1:8025 provider:google paused 120', '127.0.0.1:8025 provider:yahoo reduced 14', '127.0.0.1:8025 provider:outlook active 30',
    '127.0.0.1:8025 smarthost:127.0.0.1:2526 active 0', '127.0.0.1:8026 smarthost:127.0.0.1:2526 active 0', '127.0.0.1:8025 mx:mx3.hosting.mailops.test active 0',
  ], 'the same egress and site on two nodes stays two paths, each with its node');
  assert.deepEqual(all.suspended, [{ domain: 'gmx.de', reason: 'maintenance', until: 'until resumed', node: '127.0.0.1:8025' }]);

  const lines = pathLines({ ...all, at: iso(0) });
  for (const line of lines) assert.ok(line.length <= 80, `${line.length} columns: ${line}`);
  assert.deepEqual(lines.slice(0, 5), [
    '#1 suspended gmx.de: maintenance, until resumed',
    '  LANE           STATE         BUSY  READY  REPLY',
    '#1 provider:google  from 127.0.0.3  conn 2/5',
    '  bulk           paused 4m10s   0/1    120  421-4.7.28 [127.0.0.3] Our system h…',
    '  last 50s ago: pause bulk',
  ], 'a pause shows its time left and reply once');
  assert.equal(lines[5], '#1 provider:yahoo  from 127.0.0.3  conn 1/4');
  assert.match(lines[7], /^ {2}last 12s ago: reduce bulk,member to 2 conn {2}421 4\.7\.0 \[TSS04\]/);
  assert.ok(lines.includes('#1 mx:mx3.hosting.mailops.test  from 127.0.0.2  conn 0/10  profile default  idle'));
  assert.equal(lines.filter((l) => l.startsWith('  transactional')).length, 2, 'the busy transactional lane on each node; its idle bulk lane folded');

  // one node in view: no node numbers; --once leaves idle paths out
  const one = dash.snapshot('http://127.0.0.1:8026');
  assert.deepEqual(pathLines(one), [
    '  LANE           STATE   BUSY  READY  REPLY', 'smarthost:127.0.0.1:2526  from default  conn 1/20  profile default', '  transactional  active  1/20      0',
  ]);
  const report = textReport({ ...all, at: iso(0) });
  assert.match(report, /\nEgress paths .*\n(.*\n)*#1 provider:google {2}from 127\.0\.0\.3/);
  assert.doesNotMatch(report, /mx3\.hosting/, 'an idle path is left out of --once');
  b.readings = [{ ...reading(AT, 0, 0), paths: [] }];
  assert.match(textReport(dash.snapshot('http://127.0.0.1:8026')), /no egress path with connections, ready mail or backoff/);
});

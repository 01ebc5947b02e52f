// `mailops top --once [--json]` against real relay processes: sums over nodes, a node that is down,
// nodes that answer badly or not at all, delivery latency and rates; egress paths and the requeued
// counter from a node that serves them beside an older node that does not; and the usage errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runCli } from '../helpers/cli.ts';
import { startReceiver } from '../helpers/receiver.ts';
import { disposeRelay, inject, startRelayChild, waitFor } from './nodes.ts';

/** A loopback port with nothing listening (fetch refuses port 9 itself, as a "bad port"). */
async function closedPort(): Promise<string> {
  const { server, url } = await listen(() => {});
  await new Promise((resolve) => server.close(resolve));
  return url;
}

async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

test('--once --json: lanes summed over nodes, deliveries with latency, a down node, bad answers', { timeout: 60_000 }, async (t) => {
  const receiver = await startReceiver();
  t.after(() => receiver.close());
  const delivering = await startRelayChild({ smarthost: `127.0.0.1:${receiver.port}` });
  t.after(() => disposeRelay(delivering));
  const stuck = await startRelayChild();
  t.after(() => disposeRelay(stuck));
  await inject(delivering, 'transactional', 3, ['reset@dest.test']);
  await receiver.waitFor(3);
  await inject(stuck, 'bulk', 2);
  await inject(delivering, 'bulk', 1);
  // the delivered counter is bumped right after the receiver's 250: wait for /metrics to say so
  await waitFor('3 transactional deliveries in /metrics', async () =>
    /mailops_delivered_total\{lane="transactional"\} 3/.test(await (await fetch(`${delivering.url}/metrics`)).text()) ? true : undefined);

  // answers /health but nothing else usable; another answers /health with HTML; another never answers
  const partial = await listen((req, res) => {
    if (req.url === '/health') return void res.end(JSON.stringify({ status: 'ok', uptimeSeconds: 5, lanes: ['bulk'] }));
    if (req.url === '/metrics') return void res.writeHead(500).end('boom');
    res.end(req.url?.startsWith('/api/v1/queue/summary') ? '{"lanes": 7}' : 'not json at all');
  });
  t.after(() => partial.server.close());
  const html = await listen((_req, res) => void res.end('<html>proxy error</html>'));
  t.after(() => html.server.close());
  const silent = await listen(() => {});
  t.after(() => (silent.server.closeAllConnections(), silent.server.close()));

  const dead = await closedPort();
  const nodes = [delivering.url, stuck.url, dead, partial.url, html.url, silent.url];
  const result = await runCli(['top', '--once', '--json', '--interval', '300ms', ...nodes.flatMap((n) => ['--node', n])]);
  assert.equal(result.code, 0, result.stderr);
  const snap = JSON.parse(result.stdout);
  assert.equal(snap.view, 'all');
  assert.deepEqual(snap.nodes.map((n: { status: string }) => n.status), ['up', 'up', 'down', 'partial', 'down', 'down']);
  assert.match(snap.nodes[2].error, /^GET \/health: ECONNREFUSED$/);
  assert.match(snap.nodes[3].error, /GET \/api\/v1\/queue: .*JSON/);
  assert.match(snap.nodes[3].error, /GET \/metrics: HTTP 500/);
  assert.match(snap.nodes[3].error, /GET \/api\/v1\/queue\/summary\?top=50: no "lanes" object/);
  assert.equal(snap.nodes[4].error, 'GET /health: not JSON');
  assert.equal(snap.nodes[5].error, 'GET /health: no answer in time');

  const lane = (name: string) => snap.lanes.find((l: { lane: string }) => l.lane === name);
  // bulk: 2 messages x 2 recipients stuck + 1 x 2 on the delivering node (to gmail.test/gmx.test, all via the receiver)
  assert.equal(lane('transactional').depth, 0);
  assert.equal(lane('transactional').totals.delivered, 3);
  assert.equal(lane('transactional').latencySinceStart.count, 3);
  assert.ok(lane('transactional').latencySinceStart.p99 > 0 && lane('transactional').latencySinceStart.p99 <= 60, JSON.stringify(lane('transactional')));
  assert.equal(lane('bulk').totals.received, 3);
  assert.equal(lane('bulk').deferred + lane('bulk').queued + lane('bulk').active, lane('bulk').depth);
  assert.ok(lane('bulk').depth >= 4, `the stuck node's 4 bulk recipients at least: ${lane('bulk').depth}`);
  assert.equal(typeof lane('bulk').rates.received, 'number');
  const gmail = snap.domains.find((d: { domain: string }) => d.domain === 'gmail.test');
  assert.ok(gmail && gmail.queued >= 2 && gmail.lanes.includes('bulk'), JSON.stringify(snap.domains));
  const corporate = snap.providers.find((p: { provider: string }) => p.provider === 'corporate');
  assert.ok(corporate && corporate.domains >= 1 && corporate.queued >= 2 && corporate.lanes.includes('bulk'), JSON.stringify(snap.providers));
  assert.equal(snap.history, undefined);

  // the same as text
  const text = await runCli(['top', '--once', '--node', stuck.url, '--node', dead, '--interval', '200ms']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^mailops top {2}\S+ {2}1\/2 node\(s\) up, 2 message\(s\) not finished$/m);
  assert.match(text.stdout, new RegExp(`^#2\\s+${new URL(dead).host}\\s+DOWN`, 'm'));
  assert.match(text.stdout, /^bulk\s+4\s+\d+\s+\d+\s+\d+\s/m);
  assert.match(text.stdout, /^transactional\s+0\s+0\s+0\s+0\s/m);
  assert.match(text.stdout, /^gmail\.test\s+corporate\s+bulk\s+2\s/m);
  assert.match(text.stdout, /^Providers\nPROVIDER\s+DOMAINS.*\n(.*\n)*united-internet\s+1\s+bulk\s+2\s/m);
});

/**
 * A relay node's API as served on loopback: /health, queue, summary and /metrics; with
 * `destinations`, also GET /api/v1/destinations and the requeued counter (which then grows by 5 at
 * every poll), else answering 404 there as a relay from before egress paths does.
 */
function nodeApi(destinations?: unknown): Parameters<typeof createServer>[1] {
  let requeued = 0;
  return (req, res) => {
    const json = (body: unknown) => void res.setHeader('content-type', 'application/json').end(JSON.stringify(body));
    if (req.url === '/health') return json({ status: 'ok', uptimeSeconds: 60, lanes: ['transactional', 'bulk'] });
    if (req.url === '/api/v1/queue') return json({ total: 61, lanes: { transactional: { queued: 1, deferred: 0, active: 1, oldestAgeSeconds: 1 }, bulk: { queued: 120, deferred: 0, active: 0, oldestAgeSeconds: 300 } } });
    if (req.url?.startsWith('/api/v1/queue/summary')) return json({ lanes: { bulk: { domains: [{ domain: 'gmail.com', total: 120 }] } } });
    if (req.url === '/metrics') {
      const lines = ['transactional', 'bulk'].flatMap((lane) => ['received', 'delivered', 'deferred', 'failed', 'expired'].map((o) => `mailops_${o}_total{lane="${lane}"} 7`));
      if (destinations) lines.push(`mailops_requeued_total{lane="bulk"} ${(requeued += 5)}`, 'mailops_requeued_total{lane="transactional"} 0');
      return void res.end(lines.join('\n') + '\n');
    }
    if (req.url === '/api/v1/destinations' && destinations) return json(destinations);
    res.writeHead(404).end('{"error":"not found"}');
  };
}

test('--once [--json]: egress paths of a node that serves them, requeued rates, and an older node without either', { timeout: 30_000 }, async (t) => {
  const reply = '421-4.7.28 [127.0.0.3] Our system has detected an unusual rate of unsolicited mail originating from your IP address.';
  const until = new Date(Date.now() + 10 * 60_000).toISOString();
  const lane = (state: string, limit: number, busy: number, queued: number, more = {}) => ({ state, limit, busy, queued, ...more });
  const shaping = await listen(nodeApi({
    paths: [
      { path: '127.0.0.2>mx:mx3.hosting.mailops.test', egress: '127.0.0.2', site: 'mx:mx3.hosting.mailops.test', profile: 'default', state: 'active', connections: 0,
        limit: 10, maxConnections: 10, lanes: { transactional: lane('active', 10, 0, 0) }, destinations: ['mx:hosting.test'], history: [] },
      { path: '127.0.0.2>provider:google', egress: '127.0.0.2', site: 'provider:google', profile: 'google', state: 'active', connections: 1,
        limit: 5, maxConnections: 5, lanes: { transactional: lane('active', 5, 1, 0) }, destinations: ['mx:gmail.com'], history: [] },
      { path: '127.0.0.3>provider:google', egress: '127.0.0.3', site: 'provider:google', profile: 'google', state: 'paused', connections: 0,
        limit: 1, maxConnections: 5, messagesPerConnection: 50, rate: { perSecond: 40, perHour: 0 }, pausedUntil: until, reply,
        lanes: { bulk: lane('paused', 1, 0, 120, { pausedUntil: until, reply }) }, destinations: ['mx:gmail.com'],
        history: [{ action: 'reduce', reply: '421 4.7.0 slow down', at: new Date(Date.now() - 90_000).toISOString(), limit: 2, lanes: ['bulk'], by: 'reply' },
          { action: 'pause', reply, at: new Date(Date.now() - 30_000).toISOString(), until, lanes: ['bulk'], by: 'reply' }] },
      { path: 'broken' }, 'not a path',
    ],
    suspended: [{ domain: 'gmx.de', reason: 'maintenance', until: 'until resumed' }],
  }));
  t.after(() => shaping.server.close());
  const older = await listen(nodeApi());
  t.after(() => older.server.close());

  const result = await runCli(['top', '--once', '--json', '--interval', '300ms', '--node', shaping.url, '--node', older.url]);
  assert.equal(result.code, 0, result.stderr);
  const snap = JSON.parse(result.stdout);
  assert.deepEqual(snap.nodes.map((n: { status: string }) => n.status), ['up', 'partial'], 'the older node still counts, with a problem');
  assert.equal(snap.nodes[1].error, 'GET /api/v1/destinations: HTTP 404');
  const shapingName = new URL(shaping.url).host;
  assert.deepEqual(snap.paths.map((p: { node: string; egress: string; site: string; state: string; queued: number }) => [p.node, p.egress, p.site, p.state, p.queued]), [
    [shapingName, '127.0.0.3', 'provider:google', 'paused', 120],
    [shapingName, '127.0.0.2', 'provider:google', 'active', 0],
    [shapingName, '127.0.0.2', 'mx:mx3.hosting.mailops.test', 'active', 0],
  ], 'paused first, then by connections; entries without egress and site are skipped');
  assert.deepEqual(snap.paths[0].lanes, [{ lane: 'bulk', state: 'paused', limit: 1, busy: 0, queued: 120, pausedUntil: until, reply }]);
  assert.deepEqual(snap.paths[0].lastAction, { action: 'pause', lanes: ['bulk'], at: snap.paths[0].lastAction.at, until, reply, by: 'reply' });
  assert.deepEqual(snap.paths[1].lanes, [{ lane: 'transactional', state: 'active', limit: 5, busy: 1, queued: 0 }]);
  assert.deepEqual(snap.suspended, [{ domain: 'gmx.de', reason: 'maintenance', until: 'until resumed', node: shapingName }]);
  const bulk = snap.lanes.find((l: { lane: string }) => l.lane === 'bulk');
  assert.ok(bulk.rates.requeued > 0, `requeued per second from the node that counts it: ${JSON.stringify(bulk.rates)}`);
  assert.equal(bulk.totals.requeued, 10, 'the older node adds nothing to it');

  // the same as text: the section shows the paths that are not idle, in 80 columns
  const text = await runCli(['top', '--once', '--interval', '300ms', '--node', shaping.url, '--node', older.url]);
  assert.equal(text.code, 0, text.stderr);
  const section = text.stdout.slice(text.stdout.indexOf('\nEgress paths'));
  assert.match(section, /^#1 suspended gmx\.de: maintenance, until resumed$/m);
  assert.match(section, /^#1 provider:google {2}from 127\.0\.0\.3 {2}conn 0\/5\n {2}bulk\s+paused (9m\d+s|10m)\s+0\/1\s+120 {2}421-4\.7\.28 \[127\.0\.0\.3\] Our.*…\n {2}last \d+s ago: pause bulk$/m);
  assert.match(section, /^#1 provider:google {2}from 127\.0\.0\.2 {2}conn 1\/5\n {2}transactional\s+active\s+1\/5\s+0$/m);
  assert.doesNotMatch(section, /mx3\.hosting/, 'an idle path is left out');
  for (const line of section.split('\n')) assert.ok(line.length <= 80, line);
  assert.match(text.stdout, /^LANE .*FAIL\/s\s+REQUEUE\/s\s+DELIVERED/m);
  assert.match(text.stdout, /^bulk\s+(\d+\s+){4}5m\s+0\s+0\s+0\s+0\s+[1-9][\d.]*\s+14\s/m, 'bulk: REQUEUE/s from the node that counts it');
  assert.match(text.stdout, new RegExp(`^${older.url.replace(/^http:\/\//, '').replace(/\./g, '\\.')}: GET /api/v1/destinations: HTTP 404$`, 'm'));

  // the older node alone: no paths, no requeued rate, still a snapshot
  const alone = await runCli(['top', '--once', '--json', '--interval', '300ms', '--node', older.url]);
  assert.equal(alone.code, 0, alone.stderr);
  const old = JSON.parse(alone.stdout);
  assert.deepEqual(old.paths, []);
  assert.equal(old.lanes.find((l: { lane: string }) => l.lane === 'bulk').rates.requeued, undefined);
});

test('--once with every node down exits 1 and says why', async () => {
  const dead = await closedPort();
  const result = await runCli(['top', '--once', '--node', dead]);
  assert.equal(result.code, 1);
  assert.match(result.stdout, /0\/1 node\(s\) up/);
  assert.ok(result.stdout.includes(`${new URL(dead).host}: GET /health: ECONNREFUSED`), result.stdout);
  assert.match(result.stdout, /no lane data \(no node up\)/);
});

test('usage errors exit 2 and name the flag', async () => {
  const cases: [string[], RegExp][] = [
    [['--once', '--node', 'ftp://relay:21'], /--node: "ftp:\/\/relay:21": only http:\/\/ and https:\/\/ nodes/],
    [['--once', '--node', 'http://[bad'], /--node: "http:\/\/\[bad" is not a URL/],
    [['--once', '--interval', 'fast'], /--interval: expected a duration of at least 100ms/],
    [['--once', '--interval', '1s', '--history', '1s'], /--history: expected a duration of at least two intervals/],
    [['--json'], /--json: only with --once/],
    [['--once', '--top', '0'], /--top: expected a positive integer/],
    [[], /the live dashboard needs a terminal; use --once/],
  ];
  for (const [args, message] of cases) {
    const result = await runCli(['top', ...args]);
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message);
  }
  const help = await runCli(['top', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Examples:\n {2}\$ mailops top\n/);
  assert.match(help.stdout, /Keys: q quits, n\/p switch/);
});

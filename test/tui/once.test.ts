// `mailops top --once [--json]` against real relay processes: sums over nodes, a node that is down,
// nodes that answer badly or not at all, delivery latency and rates; and the usage errors.
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

// Relay nodes sharing state through a real redis-server (Debian's package, started by the test):
// connection caps and message rates per egress path held across nodes, a provider's TSS04 seen by
// one node pausing the path on all, a suppression on one node refusing on another, and Redis
// lost mid-run: delivery goes on under each node's share of the limits, nothing is lost, and the
// nodes rejoin when Redis is back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsServer } from '../helpers/dns-server.ts';
import { startReceiver } from '../helpers/receiver.ts';
import { startRedis } from '../helpers/redis.ts';
import { startTestRelay, submit, type TestRelay } from '../helpers/relay.ts';
import { until } from '../helpers/wait.ts';
import { runCli } from '../helpers/cli.ts';

/** Every node sends from 127.0.0.3, as nodes behind one egress address do: they share its limits. */
function nodeConfig(name: string, redis: string, extra = ''): string {
  return `smtp: { hostname: ${name}.test }
lanes:
  transactional: { egress: { address: 127.0.0.3, helo: ${name}.test }, retry: { initial: 200ms, max: 1s } }
  member: { egress: { address: 127.0.0.3, helo: ${name}.test }, retry: { initial: 200ms, max: 1s } }
  bulk: { egress: { address: 127.0.0.3, helo: ${name}.test }, retry: { initial: 200ms, max: 1s } }
cluster: { redis: "${redis}", node: ${name}, heartbeat: 200ms, leaseTtl: 3s }
${extra}`;
}

async function health(relay: TestRelay): Promise<{ cluster: { redis: string; liveNodes: number } }> {
  return (await fetch(`${relay.httpUrl}/health`)).json() as Promise<{ cluster: { redis: string; liveNodes: number } }>;
}

async function submitMany(relay: TestRelay, to: (i: number) => string, n: number, lane = 'bulk'): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      await submit(relay.smtpPort, { from: 'news@sender.test', to: to(i), subject: `m${i}`, text: 'x', headers: { 'X-Mailops-Lane': lane } });
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

test('two nodes behind one egress address share a smarthost\'s connection limit', { timeout: 90_000 }, async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const receiver = await startReceiver({ dataDelayMs: 20 });
  t.after(() => receiver.close());
  const delivery = `delivery: { smarthost: "127.0.0.1:${receiver.port}", maxConnectionsPerDestination: 3, idleTimeout: 300ms }`;
  const a = await startTestRelay(nodeConfig('node-a', redis.url, delivery));
  t.after(() => a.stop());
  const b = await startTestRelay(nodeConfig('node-b', redis.url, delivery));
  t.after(() => b.stop());
  await Promise.all([submitMany(a, (i) => `a${i}@dest.test`, 150), submitMany(b, (i) => `b${i}@dest.test`, 150)]);
  await receiver.waitFor(300, 60_000);
  const helos = new Set(receiver.sessions.map((s) => s.helo));
  assert.ok(helos.has('node-a.test') && helos.has('node-b.test'), 'both nodes delivered');
  assert.ok(receiver.maxConcurrent <= 3, `never more than the 3 connections between both nodes (saw ${receiver.maxConcurrent})`);
  const seen = await health(a);
  assert.equal(seen.cluster.redis, 'up');
  assert.equal(seen.cluster.liveNodes, 2);
});

test('a cluster-wide message rate: two nodes together stay under the provider\'s rate', { timeout: 90_000 }, async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const receiver = await startReceiver();
  t.after(() => receiver.close());
  const dns = await startDnsServer({
    'gmail.test': { MX: [{ priority: 5, exchange: 'gmail-smtp-in.l.google.com' }] },
    'gmail-smtp-in.l.google.com': { A: ['127.0.0.1'] },
  });
  t.after(() => dns.close());
  const RATE = 40;
  const extra = `delivery: { dnsServers: ["${dns.address}"], port: ${receiver.port} }
shaping: { profiles: { google: { maxConnections: 4, rate: { perSecond: ${RATE} } } } }`;
  const a = await startTestRelay(nodeConfig('node-a', redis.url, extra));
  t.after(() => a.stop());
  const b = await startTestRelay(nodeConfig('node-b', redis.url, extra));
  t.after(() => b.stop());
  const N = 200;
  await Promise.all([submitMany(a, (i) => `a${i}@gmail.test`, N / 2), submitMany(b, (i) => `b${i}@gmail.test`, N / 2)]);
  const arrivals = await receiver.waitFor(N, 60_000);
  const times = arrivals.map((x) => x.at).sort((x, y) => x - y);
  // GCRA allows a burst of one second's worth; beyond it, no window may carry more than the rate
  let worst = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i] - times[j] >= 1000) j++;
    worst = Math.max(worst, i - j + 1);
  }
  const spanSeconds = (times[times.length - 1] - times[0]) / 1000;
  const steady = (N - RATE) / spanSeconds;
  assert.ok(steady <= RATE * 1.05, `both nodes together at most the rate after the burst (${steady.toFixed(1)}/s)`);
  assert.ok(worst <= 2 * RATE + 10, `no second carried much more than the burst and the rate (${worst}; tokens are taken in batches)`);
  assert.ok(steady >= RATE * 0.6, `and the limit is used, not starved (${steady.toFixed(1)}/s; bench/cluster.sh measures it exactly)`);
  const helos = new Set(receiver.sessions.map((s) => s.helo));
  assert.ok(helos.has('node-a.test') && helos.has('node-b.test'), 'both nodes delivered');
});

test('a TSS04 seen by one node suspends the path on the other; a suppression on one refuses on the other', { timeout: 90_000 }, async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const receiver = await startReceiver({
    rcpt: (address) => (address.startsWith('throttled') ? [421, '4.7.0 [TSS04] Messages from 127.0.0.3 temporarily deferred due to unexpected volume'] : address.startsWith('gone') ? [550, '5.1.1 No such user'] : undefined),
  });
  t.after(() => receiver.close());
  const dns = await startDnsServer({
    'yahoo.test': { MX: [{ priority: 1, exchange: 'mta5.am0.yahoodns.net' }] },
    'mta5.am0.yahoodns.net': { A: ['127.0.0.1'] },
    'dest.test': { MX: [{ priority: 1, exchange: 'mx.dest.test' }] },
    'mx.dest.test': { A: ['127.0.0.1'] },
  });
  t.after(() => dns.close());
  const extra = `delivery: { dnsServers: ["${dns.address}"], port: ${receiver.port} }`;
  const a = await startTestRelay(nodeConfig('node-a', redis.url, extra));
  t.after(() => a.stop());
  const b = await startTestRelay(nodeConfig('node-b', redis.url, extra));
  t.after(() => b.stop());

  await submit(b.smtpPort, { from: 'news@sender.test', to: 'before@yahoo.test', subject: 'x', text: 'x' });
  await receiver.waitFor(1, 10_000); // node b has its own path to yahoo now
  await submit(a.smtpPort, { from: 'news@sender.test', to: 'throttled@yahoo.test', subject: 'x', text: 'x' });
  await until('node b hears of the suspension', () => b.events().some((e) => e.event === 'shaping' && e.by === 'cluster' && e.action === 'suspend'), 10_000);
  await submit(b.smtpPort, { from: 'news@sender.test', to: 'fine@yahoo.test', subject: 'x', text: 'x' });
  await until('node b holds its yahoo mail', () => b.events().some((e) => e.event === 'deferred' && String(e.reply).includes('TSS04')), 10_000);
  assert.equal(receiver.delivered.filter((d) => d.to.includes('fine@yahoo.test')).length, 0, 'node b sent nothing to the suspended path');

  await submit(a.smtpPort, { from: 'news@sender.test', to: 'gone@dest.test', subject: 'x', text: 'x' });
  await until('node b learns the hard bounce', () => b.events().some((e) => e.event === 'suppressed' && e.address === 'gone@dest.test' && e.by === 'cluster'), 10_000);
  await submit(b.smtpPort, { from: 'news@sender.test', to: 'gone@dest.test', subject: 'again', text: 'x' });
  await until('node b refuses the suppressed address itself', () => b.events().some((e) => e.event === 'failed' && e.rcpt === 'gone@dest.test'), 10_000);
  assert.equal(receiver.attempts.filter((x) => x.to.includes('gone@dest.test')).length, 0, 'the suppressed address never reached the receiver from node b (node a\'s was refused at RCPT)');
});

test('Redis killed mid-run: delivery goes on under each node\'s share, nothing is lost, the nodes rejoin', { timeout: 90_000 }, async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const receiver = await startReceiver({ dataDelayMs: 20 });
  t.after(() => receiver.close());
  const delivery = `delivery: { smarthost: "127.0.0.1:${receiver.port}", maxConnectionsPerDestination: 4, idleTimeout: 300ms }`;
  const a = await startTestRelay(nodeConfig('node-a', redis.url, delivery));
  t.after(() => a.stop());
  const b = await startTestRelay(nodeConfig('node-b', redis.url, delivery));
  t.after(() => b.stop());
  for (const node of [a, b]) {
    for (let i = 0; (await health(node)).cluster.liveNodes !== 2; i++) {
      assert.ok(i < 100, 'both nodes see each other in the registry');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  await redis.kill();
  await until('node a notices', () => a.events().some((e) => e.event === 'cluster-redis-down'), 10_000);
  await Promise.all([submitMany(a, (i) => `a${i}@dest.test`, 100), submitMany(b, (i) => `b${i}@dest.test`, 100)]);
  await receiver.waitFor(200, 60_000);
  assert.ok(receiver.maxConcurrent <= 4, `each node kept to its share (2 of 4) while Redis was away: at most ${receiver.maxConcurrent} together`);
  const metrics = await (await fetch(`${a.httpUrl}/metrics`)).text();
  assert.match(metrics, /mailops_cluster_redis_up\{node="node-a"\} 0/);
  await redis.restart();
  await until('node a rejoins', () => a.events().some((e) => e.event === 'cluster-redis-up' && e.again === true), 15_000);
  await submitMany(a, (i) => `later${i}@dest.test`, 20);
  await receiver.waitFor(220, 30_000);
  const ids = receiver.delivered.map((d) => d.to[0]);
  assert.equal(new Set(ids).size, ids.length, 'nothing delivered twice');
  assert.equal(a.events().filter((e) => e.event === 'cluster-redis-down').length, 1, 'the loss was logged once');
});

test('the operator\'s suspend and resume on one node act on every node', { timeout: 60_000 }, async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const receiver = await startReceiver();
  t.after(() => receiver.close());
  const dns = await startDnsServer({ 'dest.test': { MX: [{ priority: 1, exchange: 'mx.dest.test' }] }, 'mx.dest.test': { A: ['127.0.0.1'] } });
  t.after(() => dns.close());
  const extra = `delivery: { dnsServers: ["${dns.address}"], port: ${receiver.port} }
http: { token: s3cret }`;
  const a = await startTestRelay(nodeConfig('node-a', redis.url, extra));
  t.after(() => a.stop());
  const b = await startTestRelay(nodeConfig('node-b', redis.url, extra));
  t.after(() => b.stop());
  const call = (node: TestRelay, what: string, body: Record<string, unknown>) =>
    fetch(`${node.httpUrl}/api/v1/destinations/${what}`, { method: 'POST', headers: { authorization: 'Bearer s3cret', 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal((await call(a, 'suspend', { domain: 'dest.test', reason: 'complaints' })).status, 200);
  await until('node b applies the suspension', () => b.events().some((e) => e.event === 'shaping' && e.action === 'suspend' && e.domain === 'dest.test'), 10_000);
  await submit(b.smtpPort, { from: 'news@sender.test', to: 'x@dest.test', subject: 'x', text: 'x' });
  await until('node b holds it', () => b.events().some((e) => e.event === 'deferred' && String(e.reply).includes('suspended by the operator (complaints)')), 10_000);
  assert.equal(receiver.delivered.length, 0);
  assert.equal((await call(a, 'resume', { domain: 'dest.test' })).status, 200);
  await receiver.waitFor(1, 10_000); // due at once on node b too, not at its next retry
  assert.deepEqual(receiver.delivered[0].to, ['x@dest.test']);
});

test('the tools find every node through the registry, and a node that stopped shows as down', { timeout: 60_000 }, async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const a = await startTestRelay(nodeConfig('node-a', redis.url));
  t.after(() => a.stop());
  const b = await startTestRelay(nodeConfig('node-b', redis.url));
  let bStopped = false;
  t.after(() => (bStopped ? undefined : b.stop()));
  const summary = await runCli(['queue', 'summary', '--cluster', redis.url]);
  assert.equal(summary.code, 0, summary.stderr);
  assert.match(summary.stdout, new RegExp(`== node node-a \\(${a.httpUrl}\\)`));
  assert.match(summary.stdout, new RegExp(`== node node-b \\(${b.httpUrl}\\)`));
  const top = await runCli(['top', '--once', '--json', '--cluster', redis.url, '--interval', '200ms', '--history', '1s']);
  assert.equal(top.code, 0, top.stderr);
  const watched = (JSON.parse(top.stdout) as { nodes: { url: string; status: string }[] }).nodes;
  assert.deepEqual(watched.map((n) => n.url).sort(), [a.httpUrl, b.httpUrl].sort(), 'top watches both nodes');
  assert.ok(watched.every((n) => n.status === 'up'), JSON.stringify(watched));
  await b.stop();
  bStopped = true;
  const after = await runCli(['queue', 'summary', '--cluster', redis.url]);
  assert.equal(after.code, 0, after.stderr);
  assert.match(after.stderr, /node node-b .* is down/);
  assert.doesNotMatch(after.stdout, /== node node-b/);
  const bad = await runCli(['queue', 'summary', '--cluster', 'redis://127.0.0.1:1']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--cluster: cannot reach the cluster's Redis at redis:\/\/127.0.0.1:1/);
});

// Three relay nodes sending from one egress address into the simulated internet (`mailops sink
// --dns`: Google's MX on its own loopback address, counting connections per client IP and
// answering 421 over its cap of 5, as Gmail does): alone, each node would open up to its profile's
// 5 connections, 15 together; sharing the limit through Redis, the provider never sees more than 5.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startCli } from '../helpers/cli.ts';
import { freePort } from '../helpers/haproxy.ts';
import { startRedis } from '../helpers/redis.ts';
import { startTestRelay, submit, type TestRelay } from '../helpers/relay.ts';

interface SinkStats {
  byProfile: Record<string, number>;
  deferredNow: number;
  refusals: { profile: string; phase: string; code: number; text: string; count: number }[];
}

/** Messages to the simulated Gmail that reached an outcome there: accepted, refused for good, or held by a relay after a 4xx. */
function settled(s: SinkStats): number {
  const refused = s.refusals.filter((r) => r.profile === 'google' && r.code >= 500).reduce((n, r) => n + r.count, 0);
  return (s.byProfile.google ?? 0) + refused + s.deferredNow;
}

test('three nodes on one egress address never exceed the simulated Gmail\'s connection cap', { timeout: 120_000 }, async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const [dnsPort, smtpPort, httpPort] = [await freePort(), await freePort(), await freePort()];
  const sink = await startCli(['sink', '--dns', `127.0.0.1:${dnsPort}`, '--smtp', `127.0.0.1:${smtpPort}`, '--http', `127.0.0.1:${httpPort}`, '--quiet'], /SMTP on/);
  t.after(() => sink.child.kill('SIGKILL'));
  const stats = async () => (await (await fetch(`http://127.0.0.1:${httpPort}/api/v1/stats`)).json()) as SinkStats;
  const nodes: TestRelay[] = [];
  for (const name of ['n1', 'n2', 'n3']) {
    const node = await startTestRelay(`smtp: { hostname: ${name}.test }
lanes:
  transactional: { egress: { address: 127.0.0.3, helo: ${name}.test } }
  member: { egress: { address: 127.0.0.3, helo: ${name}.test } }
  bulk: { egress: { address: 127.0.0.3, helo: ${name}.test }, retry: { initial: 500ms, max: 2s } }
delivery: { dnsServers: ["127.0.0.1:${dnsPort}"], port: ${smtpPort} }
cluster: { redis: "${redis.url}", node: ${name}, heartbeat: 200ms, leaseTtl: 3s }
`);
    t.after(() => node.stop());
    nodes.push(node);
  }
  const PER_NODE = 120;
  await Promise.all(nodes.map(async (node, k) => {
    for (let i = 0; i < PER_NODE; i += 12) {
      await Promise.all(Array.from({ length: 12 }, (_, j) => submit(node.smtpPort, {
        from: 'news@news.example', to: `m${k}-${i + j}@gmail.com`, subject: 'x', text: 'x', headers: { 'X-Mailops-Lane': 'bulk' },
      })));
    }
  }));
  const deadline = Date.now() + 90_000;
  while (settled(await stats()) < nodes.length * PER_NODE) {
    assert.ok(Date.now() < deadline, `all ${nodes.length * PER_NODE} reach the simulated Gmail (so far ${JSON.stringify(await stats())})`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const overCap = (await stats()).refusals.filter((r) => r.profile === 'google' && /Too many concurrent SMTP connections/.test(r.text));
  assert.deepEqual(overCap, [], 'the simulated Gmail never refused a connection over its cap of 5 from 127.0.0.3');
  const leases = await Promise.all(nodes.map(async (n) => /mailops_cluster_leases_refused_total\{node="[^"]+"\} (\d+)/.exec(await (await fetch(`${n.httpUrl}/metrics`)).text())![1]));
  assert.ok(leases.some((n) => Number(n) > 0), `the nodes did want more than the cap between them: leases refused ${leases.join(', ')}`);
});

// The cluster's figures (issue "Cluster"), all on loopback with the real parts: redis-server,
// HAProxy running deploy/haproxy.cfg, `mailops relay start` processes, every node sending from
// the same egress address (127.0.0.3), so that they share its limits through Redis.
//  A. one node, standalone and then with `cluster` on (Redis local): msgs/s from the first message
//     offered to the last one received (the target: cluster >= 0.9 x standalone);
//  B. three nodes behind HAProxy's bulk pool, delivering to a provider that allows 5 connections
//     and 600 messages a minute from one address: the most connections the receiver saw from
//     127.0.0.3 (<= 5) and the rate after the first second's burst (within 5 % of 10/s);
//     then the three together without a provider limit: msgs/s, and CPU per message per node;
//  C. kill -9 of one node during a 100,000-message run through HAProxy: sessions failed at the
//     load generator, time until HAProxy marks the node DOWN, acknowledged, delivered (after the
//     node is started again on its spool), lost (must be 0), duplicates.
// Usage: node_modules/.bin/node bench/cluster.ts [A_MESSAGES=30000] [B_MESSAGES=900] [C_MESSAGES=100000]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDnsServer } from '../src/util/dns-server.ts';
import { freePort, startHaproxy } from '../test/helpers/haproxy.ts';
import { startRedis } from '../test/helpers/redis.ts';
import { SeqSender, startSeqReceiver, tally, type SeqReceiver } from './lib/seq-mail.ts';
import { cpuSeconds } from './lib/proc.ts';

const [A, B, C] = [Number(process.argv[2] ?? 30_000), Number(process.argv[3] ?? 900), Number(process.argv[4] ?? 100_000)];
const MAILOPS = new URL('../bin/mailops', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'mailops-cluster-bench-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const children = new Set<ChildProcess>();
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));

interface Node { name: string; smtp: number; http: number; child: ChildProcess; config: string }

/** `proxied`: behind HAProxy, which sends PROXY headers from 127.0.0.1 (only there: a direct client from 127.0.0.1 would be refused). */
async function startNode(name: string, yaml: string, proxied = true): Promise<Node> {
  const smtp = await freePort();
  const http = await freePort();
  const config = join(dir, `${name}.yaml`);
  writeFileSync(config, `smtp: { listen: "127.0.0.1:${smtp}", hostname: ${name}.bench, proxy: [${proxied ? '"127.0.0.1/32"' : ''}], relayNetworks: ["127.0.0.0/8"] }
http: { listen: "127.0.0.1:${http}" }
spool: { dir: "${join(dir, `${name}-spool`)}" }
log: { file: /dev/null }
lanes:
  transactional: { egress: { address: 127.0.0.3 } }
  member: { egress: { address: 127.0.0.3 } }
  bulk: { egress: { address: 127.0.0.3 }, concurrency: 200 }
${yaml}`);
  return run({ name, smtp, http, config });
}

/** Starts (again) the node of this config file: its spool, its ports. */
async function run({ name, smtp, http, config }: Omit<Node, 'child'>): Promise<Node> {
  const child = spawn(process.execPath, [MAILOPS, 'relay', 'start', '--config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${http}/health`)).ok) break;
    } catch {
      if (i > 400) throw new Error(`${name} did not start`);
      await sleep(50);
    }
  }
  return { name, smtp, http, child, config };
}

function kill(node: Node, signal: NodeJS.Signals): Promise<void> {
  return new Promise((resolve) => {
    if (node.child.exitCode !== null) return resolve();
    node.child.once('exit', () => resolve());
    node.child.kill(signal);
  });
}

async function received(node: Node): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.http}/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(/^mailops_received_total\{lane="[^"]+"\} (\d+)$/gm)) n += Number(m[1]);
  return n;
}

async function waitArrived(receiver: SeqReceiver, n: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (receiver.arrived < n) {
    if (Date.now() > deadline) throw new Error(`only ${receiver.arrived} of ${n} arrived`);
    await sleep(20);
  }
  return performance.now();
}

const redis = await startRedis();
const cluster = (name: string) => `cluster: { redis: "${redis.url}", node: ${name}, heartbeat: 1s }\n`;

/** Three cluster nodes (NAME1..3) in HAProxy's bulk pool (node 2 also serves the transactional pool and the API), all UP. */
async function startTrio(prefix: string, yaml: string): Promise<{ nodes: Node[]; haproxy: Awaited<ReturnType<typeof startHaproxy>> }> {
  const nodes: Node[] = [];
  for (const k of [1, 2, 3]) nodes.push(await startNode(`${prefix}${k}`, yaml + cluster(`${prefix}${k}`)));
  const haproxy = await startHaproxy({
    MAILOPS_TX1_SMTP: `127.0.0.1:${nodes[1].smtp}`, MAILOPS_TX1_HTTP: `127.0.0.1:${nodes[1].http}`,
    MAILOPS_BULK1_SMTP: `127.0.0.1:${nodes[0].smtp}`, MAILOPS_BULK2_SMTP: `127.0.0.1:${nodes[1].smtp}`, MAILOPS_BULK3_SMTP: `127.0.0.1:${nodes[2].smtp}`,
  });
  // the health checks: every node of both pools UP
  for (let i = 0; ![...(await haproxy.states()).values()].every((state) => state.startsWith('UP')); i++) {
    if (i > 200) throw new Error(`HAProxy never saw every node up: ${JSON.stringify([...(await haproxy.states())])}`);
    await sleep(50);
  }
  return { nodes, haproxy };
}

// --- A: one node, standalone and in cluster mode -----------------------------------------------
async function throughput(label: string, clusterYaml: string): Promise<number> {
  const receiver = await startSeqReceiver();
  const node = await startNode(`a-${label}`, `delivery: { smarthost: "127.0.0.1:${receiver.port}" }\n${clusterYaml}`, false);
  const sender = new SeqSender({ port: node.smtp, connections: 20, rate: 0, limit: A, to: (seq) => `m${seq}@dest.test` });
  const start = performance.now();
  sender.start();
  await sender.done();
  const end = await waitArrived(receiver, A, 600_000);
  await kill(node, 'SIGTERM');
  receiver.close();
  const rate = (A * 1000) / (end - start);
  console.log(`A ${label.padEnd(10)} ${A} msgs in ${((end - start) / 1000).toFixed(1)} s = ${rate.toFixed(0)} msgs/s`);
  return rate;
}
const standalone = await throughput('standalone', '');
const withCluster = await throughput('cluster', cluster('a-cluster'));
console.log(`A cluster mode / standalone = ${(withCluster / standalone).toFixed(2)} (target >= 0.9)`);

// --- B: three nodes behind HAProxy -------------------------------------------------------------
{
  const receiver = await startSeqReceiver({ times: true });
  const dns = await startDnsServer({
    'gmail.test': { MX: [{ priority: 5, exchange: 'gmail-smtp-in.l.google.com' }] },
    'gmail-smtp-in.l.google.com': { A: ['127.0.0.1'] },
  });
  const provider = `delivery: { dnsServers: ["${dns.address}"], port: ${receiver.port} }
shaping: { profiles: { google: { maxConnections: 5, messagesPerConnection: 50, rate: { perSecond: 10 } } } }
`;
  const { nodes, haproxy } = await startTrio('b', provider);
  const sender = new SeqSender({ port: haproxy.bulkPort, connections: 12, rate: 0, limit: B, to: (seq) => `m${seq}@gmail.test` });
  sender.start();
  await sender.done();
  await waitArrived(receiver, B, 600_000);
  const times = receiver.times.sort((x, y) => x - y);
  const burst = 10; // the GCRA's burst: one second's worth
  const steady = ((times.length - 1 - burst) * 1000) / (times[times.length - 1] - times[burst]);
  const perNode = await Promise.all(nodes.map(received));
  console.log(`B limits: ${B} messages over 3 nodes (${perNode.join(' / ')} received by each through HAProxy); the receiver saw at most ` +
    `${receiver.maxOpen.get('127.0.0.3') ?? 0} connections at once from 127.0.0.3 (limit 5); rate after the burst ${steady.toFixed(2)}/s ` +
    `(limit 10/s: ${(((steady - 10) / 10) * 100).toFixed(1)} %)`);
  for (const node of nodes) await kill(node, 'SIGTERM');
  await haproxy.stop();
  await dns.close();
  receiver.close();
}
{
  const receiver = await startSeqReceiver();
  const open = `delivery: { smarthost: "127.0.0.1:${receiver.port}", maxConnectionsPerDestination: 60 }\n`;
  const { nodes, haproxy } = await startTrio('t', open);
  const before = nodes.map((n) => cpuSeconds(n.child.pid!));
  const sender = new SeqSender({ port: haproxy.bulkPort, connections: 30, rate: 0, limit: A, to: (seq) => `m${seq}@dest.test` });
  const start = performance.now();
  sender.start();
  await sender.done();
  const end = await waitArrived(receiver, A, 600_000);
  const cpu = nodes.map((n, i) => cpuSeconds(n.child.pid!) - before[i]);
  const perNode = await Promise.all(nodes.map(received));
  console.log(`B throughput: three nodes together ${A} msgs in ${((end - start) / 1000).toFixed(1)} s = ${((A * 1000) / (end - start)).toFixed(0)} msgs/s ` +
    `(all on this machine's 2 cores, with HAProxy, Redis and the load generator)`);
  console.log(`B CPU per message: ${nodes.map((n, i) => `${n.name} ${perNode[i]} msgs, ${cpu[i].toFixed(1)} s CPU = ${((cpu[i] * 1e6) / Math.max(1, perNode[i])).toFixed(0)} µs/msg`).join('; ')}`);
  for (const node of nodes) await kill(node, 'SIGTERM');
  await haproxy.stop();
  receiver.close();
}

// --- C: kill -9 of one node during a 100,000-message run ----------------------------------------
{
  const receiver = await startSeqReceiver();
  const open = `delivery: { smarthost: "127.0.0.1:${receiver.port}", maxConnectionsPerDestination: 60 }\n`;
  const { nodes, haproxy } = await startTrio('k', open);
  const sender = new SeqSender({ port: haproxy.bulkPort, connections: 30, rate: 0, limit: C, to: (seq) => `m${seq}@dest.test` });
  sender.start();
  while (sender.acked < C * 0.3) await sleep(50);
  const failedBefore = sender.sessionsFailed;
  const killedAt = performance.now();
  await kill(nodes[0], 'SIGKILL');
  let downAfter = NaN;
  for (;;) {
    if ((await haproxy.states()).get('bulk_pool/bulk1')?.startsWith('DOWN')) {
      downAfter = performance.now() - killedAt;
      break;
    }
    if (performance.now() - killedAt > 30_000) break;
    await sleep(10);
  }
  await sender.done();
  const failedSessions = sender.sessionsFailed - failedBefore;
  // the killed node's spool runs again: what it acknowledged is delivered
  nodes[0] = await run(nodes[0]);
  for (let last = -1; ; ) {
    await sleep(1000);
    const queued = await Promise.all(nodes.map(async (n) => (await (await fetch(`http://127.0.0.1:${n.http}/api/v1/queue`)).json() as { total: number }).total));
    if (queued.every((q) => q === 0) && receiver.arrived === last) break;
    last = receiver.arrived;
  }
  const t = tally(sender, receiver);
  console.log(`C kill -9 of 1 of 3 nodes at ${Math.round(C * 0.3)} acknowledged of ${C}: HAProxy marked it DOWN after ${downAfter.toFixed(0)} ms; ` +
    `${failedSessions} client sessions failed (and were opened again); acknowledged ${t.acknowledged}, delivered ${t.delivered} ` +
    `(${t.unacknowledgedDelivered} of them committed but never acknowledged), lost ${t.lost}, duplicates ${t.duplicates}`);
  for (const node of nodes) await kill(node, 'SIGTERM');
  await haproxy.stop();
  receiver.close();
}
await redis.stop();
rmSync(dir, { recursive: true, force: true });
process.exit(0);

// The front door of a cluster, end to end with real processes: the shipped deploy/haproxy.cfg in
// a real HAProxy, three relay nodes (`mailops relay start`, each its own spool) in two lane pools
// sharing a real redis-server, clients on loopback source addresses of their own, one receiver.
//
// 1. Mail flows through both SMTP frontends and the API frontend; the PROXY header carries the
//    client's address to the node (Received field; relaying decided on it); a lane sent to the
//    wrong pool is refused with 451 4.3.2.
// 2. kill -9 of a node under load: HAProxy marks it down (time measured), the client whose session
//    it cut retries and succeeds on the other node, new sessions succeed at the first try.
// 3. A node started on the dead node's spool delivers everything it acknowledged.
// 4. `mailops relay drain`: the node leaves both pools, delivers what it holds and exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import nodemailer from 'nodemailer';
import { runCli, startCli } from '../helpers/cli.ts';
import { startHaproxy, type TestHaproxy } from '../helpers/haproxy.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { startRedis } from '../helpers/redis.ts';
import { RawSmtp } from '../helpers/smtp-client.ts';
import { until } from '../helpers/wait.ts';

const TOKEN = 'front-door-test-token';
/** The clients' source address: the only relay network, so only the PROXY header can make a node relay for them. */
const CLIENT = '127.0.0.44';

interface NodeProcess { name: string; child: ChildProcess; smtp: string; http: string; queued: number; recoveredInFlight: number; output: () => string }

function nodeConfig(dir: string, name: string, lanes: string[], redis: string, receiverPort: number): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, `smtp:
  listen: "127.0.0.1:0"
  hostname: ${name}.test
  proxy: ["127.0.0.1/32"]
  relayNetworks: ["${CLIENT}/32"]
http: { listen: "127.0.0.1:0", token: "${TOKEN}" }
spool: { dir: "${join(dir, `${name}-spool`)}" }
delivery: { smarthost: "127.0.0.1:${receiverPort}", unreachableBackoff: 200ms, idleTimeout: 200ms }
lanes:
  transactional: { retry: { initial: 200ms, max: 500ms } }
  member: { retry: { initial: 200ms, max: 500ms } }
  bulk: { retry: { initial: 200ms, max: 500ms } }
cluster: { redis: "${redis}", node: ${name}, lanes: [${lanes.join(', ')}], heartbeat: 200ms }
`);
  return file;
}

async function startNode(name: string, config: string): Promise<NodeProcess> {
  const { child, output } = await startCli(['relay', 'start', '--config', config], /"event":"listening".*\n/);
  const listening = JSON.parse(output().split('\n').find((line) => line.includes('"listening"'))!);
  return { name, child, smtp: listening.smtp[0], http: `http://${listening.http}`, queued: listening.queued, recoveredInFlight: listening.recoveredInFlight, output };
}

function exited(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null ? Promise.resolve(child.exitCode) : new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** One message through a frontend, from `from`; rejects with the SMTP error (responseCode) or the broken connection. */
async function send(port: number, seq: string, options: { lane?: string; from?: string } = {}) {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port, localAddress: options.from ?? CLIENT, ignoreTLS: true, connectionTimeout: 5_000, greetingTimeout: 5_000, socketTimeout: 10_000 });
  try {
    return await transport.sendMail({
      from: 'app@sender.test', to: `u-${seq}@dest.test`, subject: `seq ${seq}`, text: 'hello',
      headers: { 'X-Seq': seq, 'X-Mailops-Lane': options.lane ?? 'transactional' },
    });
  } finally {
    transport.close();
  }
}

const seqOf = (text: string) => /^X-Seq: (\S+)/m.exec(text)?.[1];

async function untilState(haproxy: TestHaproxy, server: string, wanted: RegExp, timeoutMs = 15_000): Promise<number> {
  const started = Date.now();
  for (;;) {
    const state = (await haproxy.states()).get(server);
    if (state && wanted.test(state)) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`${server} is ${state}, not ${wanted}, after ${timeoutMs} ms:\n${haproxy.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('HAProxy in front of lane pools: PROXY, kill -9 failover, a node started on a dead node\'s spool, drain', { timeout: 90_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mailops-front-door-'));
  const redis = await startRedis();
  t.after(() => redis.stop());
  // refuses one mailbox for good: the bulk node writes a DSN, in a lane it does not take mail for
  let receiver: Receiver = await startReceiver({ rcpt: (address) => (address.startsWith('u-gone') ? [550, '5.1.1 No such user'] : undefined) });
  const receiverPort = receiver.port;
  const arrivedSeqs = new Set<string>();
  const receivers: Receiver[] = [receiver];
  t.after(() => Promise.all(receivers.map((r) => r.close())));
  const children: ChildProcess[] = [];
  t.after(() => children.forEach((c) => c.exitCode === null && c.kill('SIGKILL')));

  const configs = {
    tx1: nodeConfig(dir, 'tx1', ['transactional', 'member'], redis.url, receiverPort),
    tx2: nodeConfig(dir, 'tx2', ['transactional', 'member'], redis.url, receiverPort),
    bulk1: nodeConfig(dir, 'bulk1', ['bulk'], redis.url, receiverPort),
  };
  const [tx1, tx2, bulk1] = await Promise.all([startNode('tx1', configs.tx1), startNode('tx2', configs.tx2), startNode('bulk1', configs.bulk1)]);
  children.push(tx1.child, tx2.child, bulk1.child);
  const haproxy = await startHaproxy({
    MAILOPS_TX1_SMTP: tx1.smtp, MAILOPS_TX1_HTTP: tx1.http.slice(7),
    MAILOPS_TX2_SMTP: tx2.smtp, MAILOPS_TX2_HTTP: tx2.http.slice(7),
    MAILOPS_BULK1_SMTP: bulk1.smtp,
  });
  t.after(() => haproxy.stop());
  for (const server of ['transactional_pool/tx1', 'transactional_pool/tx2', 'bulk_pool/bulk1', 'api_pool/tx1', 'api_pool/tx2']) {
    await untilState(haproxy, server, /^UP/);
  }

  // 1. Mail flows; the nodes see the client, not HAProxy.
  for (let i = 0; i < 6; i++) await send(haproxy.transactionalPort, `flow-${i}`);
  await send(haproxy.bulkPort, 'flow-bulk', { lane: 'bulk' });
  await send(haproxy.bulkPort, 'gone', { lane: 'bulk' });
  const injected = await fetch(`http://127.0.0.1:${haproxy.apiPort}/api/v1/messages`, {
    method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ from: 'app@sender.test', to: ['u-flow-api@dest.test'], lane: 'transactional', raw: 'From: app@sender.test\r\nX-Seq: flow-api\r\nSubject: api\r\n\r\nhello\r\n' }),
  });
  assert.equal(injected.status, 202, await injected.text());
  const flowed = await receiver.waitFor(8);
  const by = (seq: string) => /^\tby (\S+) \(mailops\)/m.exec(flowed.find((m) => seqOf(m.text) === seq)!.text)?.[1];
  assert.equal(by('flow-bulk'), 'bulk1.test', 'bulk mail went to the bulk pool');
  const dsn = await until('the DSN for u-gone', () => receiver.delivered.find((m) => m.from === '' && m.to[0] === 'app@sender.test'));
  assert.match(dsn.text, /u-gone@dest\.test/);
  assert.match(dsn.text, /^\tby bulk1\.test \(mailops\)/m, 'the bulk node keeps the DSN it wrote, though it serves only bulk');
  assert.deepEqual(new Set([0, 1, 2, 3, 4, 5].map((i) => by(`flow-${i}`))), new Set(['tx1.test', 'tx2.test']), 'both transactional nodes took sessions');
  for (const m of flowed.filter((m) => seqOf(m.text)!.startsWith('flow-') && seqOf(m.text) !== 'flow-api')) {
    assert.match(m.text, /^Received: from \S+ \(\[127\.0\.0\.44\]\)/m, 'the Received field names the client behind HAProxy');
  }
  await assert.rejects(send(haproxy.transactionalPort, 'wrong-pool', { lane: 'bulk' }),
    (err: Error & { responseCode?: number }) => err.responseCode === 451 && /4\.3\.2 This node does not take bulk mail \(it serves transactional, member\)/.test(err.message));
  await assert.rejects(send(haproxy.transactionalPort, 'outsider', { from: '127.0.0.45' }),
    (err: Error & { responseCode?: number }) => err.responseCode === 550 && /Relaying denied/.test(err.message));

  // 2. kill -9 under load. The receiver is down, so what the nodes acknowledge stays in their spools.
  await receiver.close();
  // a session cut in the middle of DATA: opened until HAProxy gives one to tx1
  let cut: RawSmtp | undefined;
  for (let i = 0; i < 6 && !cut; i++) {
    const session = await RawSmtp.open(haproxy.transactionalPort, '127.0.0.1', CLIENT);
    if ((await session.reply()).startsWith('220 tx1.test')) cut = session;
    else session.close();
  }
  assert.ok(cut, 'HAProxy gave a session to tx1');
  for (const line of ['EHLO client.test', 'MAIL FROM:<app@sender.test>', 'RCPT TO:<u-cut@dest.test>']) assert.match(await cut.command(line), /^250/);
  assert.match(await cut.command('DATA'), /^354/);
  cut.send('From: app@sender.test\r\nX-Seq: cut\r\nSubject: cut\r\n\r\nhalf a mess');

  const acked = new Set<string>();
  let retries = 0;
  let loading = true;
  const client = async (c: number) => {
    for (let i = 0; loading; i++) {
      const seq = `load-${c}-${i}`;
      for (let attempt = 0; ; attempt++) {
        try {
          await send(haproxy.transactionalPort, seq);
          acked.add(seq);
          break;
        } catch (err) {
          // cut off by the kill (or refused meanwhile): an SMTP client tries again later, here at once
          if (attempt >= 20) throw err;
          retries++;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }
  };
  const load = [1, 2, 3, 4].map(client);
  for (;;) {
    const queue = await (await fetch(`${tx1.http}/api/v1/queue`)).json() as { total: number };
    if (queue.total >= 10 && acked.size >= 20) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const killedAt = Date.now();
  tx1.child.kill('SIGKILL');
  await exited(tx1.child);
  const downMs = await untilState(haproxy, 'transactional_pool/tx1', /^DOWN/);
  const markedDownMs = Date.now() - killedAt;
  assert.equal(await cut.reply(), '(closed)', 'the session on tx1 was cut, without a reply to its DATA');
  await send(haproxy.transactionalPort, 'cut'); // the cut client retries: another node takes it
  acked.add('cut');
  loading = false;
  await Promise.all(load);
  for (let i = 0; i < 5; i++) {
    await send(haproxy.transactionalPort, `after-${i}`); // one try each: tx1 is out of the pool
    acked.add(`after-${i}`);
  }
  t.diagnostic(`HAProxy marked the killed node DOWN ${markedDownMs} ms after kill -9 (${downMs} ms of polling); ${acked.size} acknowledged, ${retries} client retries`);
  assert.ok(markedDownMs < 10_000, `marked down within seconds (${markedDownMs} ms)`);

  // 3. The receiver is back; tx1 will not come back: a node started on its spool delivers its mail.
  receiver = await startReceiver({}, receiverPort);
  receivers.push(receiver);
  const rescuer = await startNode('tx1-rescuer', configs.tx1);
  children.push(rescuer.child);
  assert.ok(rescuer.queued >= 10, `the dead node's spool holds its acknowledged mail (${rescuer.queued})`);
  await until('every acknowledged message delivered', () => {
    for (const m of receiver.delivered) arrivedSeqs.add(seqOf(m.text)!);
    return [...acked].every((seq) => arrivedSeqs.has(seq));
  }, 30_000);
  const seqs = receiver.delivered.map((m) => seqOf(m.text));
  const duplicates = seqs.length - new Set(seqs).size;
  // twice: what the killed node was delivering (recovered in flight), and what it had committed
  // when the kill cut its client's session before the 250 (the client tried again elsewhere)
  assert.ok(duplicates <= rescuer.recoveredInFlight + retries,
    `${duplicates} duplicates, ${rescuer.recoveredInFlight} recovered in flight, ${retries} client retries`);
  assert.ok(!arrivedSeqs.has(undefined as unknown as string));
  rescuer.child.kill('SIGTERM');
  assert.equal(await exited(rescuer.child), 0);

  // 4. Drain tx2 while its receiver is down: it leaves both pools, then delivers and exits.
  await receiver.close();
  for (let i = 0; i < 5; i++) await send(haproxy.transactionalPort, `drain-${i}`);
  const drainStarted = Date.now();
  const draining = runCli(['relay', 'drain', '--node', tx2.http, '--token', TOKEN, '--timeout', '60s'], { timeoutMs: 60_000 });
  await untilState(haproxy, 'transactional_pool/tx2', /^DOWN/);
  await untilState(haproxy, 'api_pool/tx2', /^DOWN/);
  t.diagnostic(`the draining node was out of both pools ${Date.now() - drainStarted} ms after the drain started`);
  const health = await fetch(`${tx2.http}/health`);
  assert.equal(health.status, 503);
  const status = await health.json() as { status: string; queued: number };
  assert.equal(status.status, 'draining');
  assert.ok(status.queued >= 5, `still holding ${status.queued}`);
  receiver = await startReceiver({}, receiverPort);
  receivers.push(receiver);
  assert.equal(await exited(tx2.child), 0, 'the drained node exits 0');
  const cli = await draining;
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /drained: the node delivered everything it held and stopped/);
  const delivered = new Set(receiver.delivered.map((m) => seqOf(m.text)));
  for (let i = 0; i < 5; i++) assert.ok(delivered.has(`drain-${i}`), `drain-${i} delivered before the node exited`);
  assert.match(tx2.output(), /"event":"drain-ended".*"left":0/);
});

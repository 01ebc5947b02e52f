// Traffic shaping over real sockets and a loopback DNS server: a provider's domains share one
// site's connection limit and messages per connection; a [TSS04] reply suspends that site while
// other destinations keep flowing; the message rate holds; operator suspend/resume (also across a
// restart); lane egress.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsServer } from '../helpers/dns-server.ts';
import { runCli } from '../helpers/cli.ts';
import { startTestRelay } from '../helpers/relay.ts';
import { PathShaping } from '../../src/relay/shape/path-shaping.ts';
import { SiteRate } from '../../src/relay/shape/rate.ts';
import { FAST, startReceiver, submit, until } from './helpers.ts';

const ZONE = {
  'a.limited.test': { MX: [{ priority: 10, exchange: 'mx1.limited-provider.test' }] },
  'b.limited.test': { MX: [{ priority: 10, exchange: 'mx2.limited-provider.test' }] },
  'mx1.limited-provider.test': { A: ['127.0.0.1'] },
  'mx2.limited-provider.test': { A: ['127.0.0.1'] },
  'ymail.test': { MX: [{ priority: 1, exchange: 'mta5.am0.yahoodns.net' }] },
  'mta5.am0.yahoodns.net': { A: ['127.0.0.1'] },
  'flow.test': { MX: [{ priority: 10, exchange: 'mx.flow.test' }] },
  'mx.flow.test': { A: ['127.0.0.1'] },
  'bulk.slow.test': { MX: [{ priority: 10, exchange: 'mx.slow-provider.test' }] },
  'tx.slow.test': { MX: [{ priority: 10, exchange: 'mx.slow-provider.test' }] },
  'mx.slow-provider.test': { A: ['127.0.0.1'] },
  'busy.test': { MX: [{ priority: 10, exchange: 'mx.busy-provider.test' }] },
  'mx.busy-provider.test': { A: ['127.0.0.1'] },
  'rated.test': { MX: [{ priority: 10, exchange: 'in.rated-provider.test' }] },
  'in.rated-provider.test': { A: ['127.0.0.1'] },
};

async function setup(t: { after: (fn: () => Promise<void>) => void }, receiverOptions: Parameters<typeof startReceiver>[0], extra = '') {
  const receiver = await startReceiver(receiverOptions);
  const dns = await startDnsServer(ZONE);
  const relay = await startTestRelay(`${FAST}  dnsServers: ["${dns.address}"]\n  port: ${receiver.port}\nhttp: { token: secret }\n${extra}`);
  t.after(async () => { await relay.stop(); await receiver.close(); await dns.close(); });
  return { receiver, dns, relay };
}

const api = async (url: string) => (await fetch(url)).json() as Promise<any>;

test('domains of one provider share its connection limit and messages per connection', async (t) => {
  const { receiver, relay } = await setup(t, { dataDelayMs: 40 }, `shaping:
  profiles:
    limited: { mx: [limited-provider.test], maxConnections: 2, messagesPerConnection: 3 }
`);
  const sends = [];
  for (let i = 0; i < 24; i++) sends.push(submit(relay.smtpPort, { from: 'n@sender.test', to: `u${i}@${i % 2 ? 'a' : 'b'}.limited.test`, subject: `m${i}`, text: 'x' }));
  await Promise.all(sends);
  await until('all delivered', () => receiver.delivered.length === 24);
  assert.ok(receiver.maxConcurrent <= 2, `at most 2 connections at once, saw ${receiver.maxConcurrent}`);
  assert.ok(receiver.maxConcurrent >= 1);
  assert.ok(receiver.sessions.every((s) => s.messages <= 3), `messages per connection: ${receiver.sessions.map((s) => s.messages)}`);
  const sites = (await api(`${relay.httpUrl}/api/v1/destinations`)).paths;
  const limited = sites.find((s: { site: string }) => s.site === 'provider:limited');
  assert.equal(limited.maxConnections, 2);
  assert.deepEqual([...limited.destinations].sort(), ['mx:a.limited.test', 'mx:b.limited.test']);
});

test('421 4.7.0 [TSS04] suspends the provider site while other destinations keep flowing; resume brings it back', async (t) => {
  let blocking = true;
  const { receiver, relay } = await setup(t, {
    rcpt: (a) => (blocking && a.endsWith('@ymail.test') ? [421, '4.7.0 [TSS04] Messages from 127.0.0.1 temporarily deferred due to unexpected volume or user complaints'] : undefined),
  });
  for (let i = 0; i < 3; i++) await submit(relay.smtpPort, { from: 'n@sender.test', to: `y${i}@ymail.test`, subject: 'y', text: 'x' });
  const action = await until('suspension', () => relay.events().find((e) => e.event === 'shaping' && e.action === 'suspend'));
  assert.equal(action.site, 'provider:yahoo');
  assert.match(String(action.reply), /\[TSS04\]/);
  assert.equal(action.by, 'reply');
  await until('all yahoo recipients deferred', () => relay.events().filter((e) => e.event === 'deferred' && e.domain === 'ymail.test').length >= 3);
  const later = Date.now() + 60 * 60_000;
  for (const e of relay.events().filter((e) => e.event === 'deferred' && e.domain === 'ymail.test')) {
    assert.ok(Date.parse(String(e.nextAttempt)) > later, `deferred until the suspension ends: ${e.nextAttempt}`);
    assert.equal(e.class, 'throttled');
  }
  // other destinations flow meanwhile
  for (let i = 0; i < 3; i++) await submit(relay.smtpPort, { from: 'n@sender.test', to: `f${i}@flow.test`, subject: 'f', text: 'x' });
  await until('flow.test delivered', () => receiver.delivered.filter((m) => m.to[0].endsWith('@flow.test')).length === 3);
  const attemptsAtYahoo = receiver.sessions.length;
  const site = (await api(`${relay.httpUrl}/api/v1/destinations`)).paths.find((s: { site: string }) => s.site === 'provider:yahoo');
  assert.equal(site.state, 'suspended');
  assert.match(site.reply, /TSS04/);
  assert.equal(site.history.at(-1).action, 'suspend');
  // new yahoo mail waits without a connection
  await submit(relay.smtpPort, { from: 'n@sender.test', to: 'y9@ymail.test', subject: 'y', text: 'x' });
  await until('new yahoo mail deferred', () => relay.events().some((e) => e.event === 'deferred' && e.rcpt === 'y9@ymail.test'));
  assert.equal(receiver.sessions.length, attemptsAtYahoo);

  blocking = false;
  const resumed = await runCli(['queue', 'resume', '--domain', 'ymail.test', '--node', relay.httpUrl, '--token', 'secret']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stdout, /ymail\.test resumed \(site provider:yahoo\); 4 recipient\(s\) due now/);
  await until('yahoo delivered after resume', () => receiver.delivered.filter((m) => m.to[0].endsWith('@ymail.test')).length === 4);
  const after = (await api(`${relay.httpUrl}/api/v1/destinations`)).paths.find((s: { site: string }) => s.site === 'provider:yahoo');
  assert.equal(after.state, 'reduced', 'returns gradually: one connection first');
  assert.equal(after.limit, 1);
});

test('reserved slots hold within a provider site: a bulk backlog leaves a connection for transactional mail', async (t) => {
  const { receiver, relay } = await setup(t, { dataDelayMs: 150 }, `shaping:
  profiles:
    slow: { mx: [slow-provider.test], maxConnections: 2 }
`);
  await Promise.all(Array.from({ length: 16 }, (_, i) => submit(relay.smtpPort, { from: 'n@sender.test', to: `b${i}@bulk.slow.test`, subject: `bulk ${i}`, text: 'x', headers: { 'X-Mailops-Lane': 'bulk' } })));
  await until('bulk flowing', () => receiver.delivered.length >= 1);
  await submit(relay.smtpPort, { from: 'n@sender.test', to: 'reset@tx.slow.test', subject: 'reset', text: 'x', headers: { 'X-Mailops-Lane': 'transactional' } });
  await until('all delivered', () => receiver.delivered.length === 17);
  const order = receiver.delivered.map((m) => m.to[0]);
  assert.ok(order.indexOf('reset@tx.slow.test') <= 4, `transactional overtook the bulk backlog: position ${order.indexOf('reset@tx.slow.test')} of 17`);
  assert.ok(receiver.maxConcurrent <= 2, `site limit held: ${receiver.maxConcurrent}`);
});

test('421 Too many connections at the greeting cuts the site down to fewer connections, and the mail still arrives', async (t) => {
  const { receiver, relay } = await setup(t, { dataDelayMs: 50, connect: (n) => (n > 1 ? [421, '4.7.0 Too many connections from your IP'] : undefined) }, `shaping:
  profiles:
    busy: { mx: [busy-provider.test], maxConnections: 4, backoff: [{ match: "Too many connections", action: reduce, connections: 1 }] }
`);
  await Promise.all(Array.from({ length: 12 }, (_, i) => submit(relay.smtpPort, { from: 'n@sender.test', to: `u${i}@busy.test`, subject: 'b', text: 'x' })));
  const action = await until('reduce', () => relay.events().find((e) => e.event === 'shaping' && e.action === 'reduce'));
  assert.equal(action.site, 'provider:busy');
  assert.equal(action.limit, 1);
  assert.match(String(action.reply), /421 4\.7\.0 Too many connections/);
  await until('all delivered', () => receiver.delivered.length === 12);
  const site = (await api(`${relay.httpUrl}/api/v1/destinations`)).paths.find((s: { site: string }) => s.site === 'provider:busy');
  assert.equal(site.state, 'reduced');
  assert.equal(site.history[0].action, 'reduce');
});

test('the site message rate holds (GCRA: a burst of one second, then the rate)', async (t) => {
  const { receiver, relay } = await setup(t, {}, `shaping:
  profiles:
    rated: { mx: [rated-provider.test], rate: { perSecond: 10 } }
`);
  await Promise.all(Array.from({ length: 20 }, (_, i) => submit(relay.smtpPort, { from: 'n@sender.test', to: `r${i}@rated.test`, subject: 'r', text: 'x' })));
  await until('all delivered', () => receiver.delivered.length === 20);
  const times = receiver.delivered.map((m) => m.at).sort((a, b) => a - b);
  assert.ok(times[19] - times[0] >= 800, `20 messages at 10/s with a burst of 10 take about a second, took ${times[19] - times[0]} ms`);
});

test('operator suspend with --for, visible in the destinations view, then resume', async (t) => {
  const { receiver, relay } = await setup(t, {});
  const suspended = await runCli(['queue', 'suspend', '--domain', 'flow.test', '--for', '2h', '--reason', 'maintenance', '--node', relay.httpUrl, '--token', 'secret']);
  assert.equal(suspended.code, 0, suspended.stderr);
  assert.match(suspended.stdout, /^flow\.test suspended until \d{4}-/);
  await submit(relay.smtpPort, { from: 'n@sender.test', to: 'f@flow.test', subject: 'f', text: 'x' });
  const deferred = await until('deferred', () => relay.events().find((e) => e.event === 'deferred' && e.rcpt === 'f@flow.test'));
  assert.match(String(deferred.reply), /suspended by the operator \(maintenance\)/);
  const view = await runCli(['queue', 'destinations', '--node', relay.httpUrl]);
  assert.match(view.stdout, /flow\.test {2}suspended by operator until .*: maintenance/);
  assert.equal(receiver.sessions.length, 0);
  const bad = await runCli(['queue', 'suspend', '--domain', 'flow.test', '--for', 'soon', '--node', relay.httpUrl, '--token', 'secret']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--for: expected a duration/);
  await runCli(['queue', 'resume', '--domain', 'flow.test', '--node', relay.httpUrl, '--token', 'secret']);
  await until('delivered after resume', () => receiver.delivered.length === 1);
});

test('an operator suspension survives a restart of the relay, and resume still lifts it', async (t) => {
  const receiver = await startReceiver({});
  const dns = await startDnsServer(ZONE);
  const yaml = `${FAST}  dnsServers: ["${dns.address}"]\n  port: ${receiver.port}\nhttp: { token: secret }\n`;
  const first = await startTestRelay(yaml);
  let relay = first;
  t.after(async () => { await relay.stop(); await receiver.close(); await dns.close(); });
  const suspended = await runCli(['queue', 'suspend', '--domain', 'flow.test', '--for', '2h', '--reason', 'maintenance', '--node', first.httpUrl, '--token', 'secret']);
  assert.equal(suspended.code, 0, suspended.stderr);
  await first.stop();
  relay = await startTestRelay(yaml, {}, first.dir);
  const listed = (await api(`${relay.httpUrl}/api/v1/destinations`)).suspended;
  assert.deepEqual(listed.map((s: { domain: string; reason: string }) => [s.domain, s.reason]), [['flow.test', 'maintenance']]);
  await submit(relay.smtpPort, { from: 'n@sender.test', to: 'f@flow.test', subject: 'f', text: 'x' });
  const deferred = await until('deferred', () => relay.events().find((e) => e.event === 'deferred' && e.rcpt === 'f@flow.test'));
  assert.match(String(deferred.reply), /suspended by the operator \(maintenance\)/);
  assert.equal(receiver.sessions.length, 0, 'no connection to the suspended domain after the restart');
  const resumed = await runCli(['queue', 'resume', '--domain', 'flow.test', '--node', relay.httpUrl, '--token', 'secret']);
  assert.equal(resumed.code, 0, resumed.stderr);
  await until('delivered after resume', () => receiver.delivered.length === 1);
  await relay.stop();
  relay = await startTestRelay(yaml, {}, first.dir);
  assert.deepEqual((await api(`${relay.httpUrl}/api/v1/destinations`)).suspended, [], 'resume is remembered too');
});

test('lane egress: source address and HELO name per lane', async (t) => {
  const receiver = await startReceiver();
  const relay = await startTestRelay(`lanes:\n  transactional: { egress: { address: 127.0.0.2, helo: tx.relay.test } }\ndelivery: { idleTimeout: 200ms }\n`, { smarthost: receiver.address });
  t.after(async () => { await relay.stop(); await receiver.close(); });
  await submit(relay.smtpPort, { from: 'a@app.test', to: 'u@dest.test', subject: 'tx', text: 'x', headers: { 'X-Mailops-Lane': 'transactional' } });
  await submit(relay.smtpPort, { from: 'a@app.test', to: 'u@dest.test', subject: 'bulk', text: 'x', headers: { 'X-Mailops-Lane': 'bulk' } });
  await until('both delivered', () => receiver.delivered.length === 2);
  const tx = receiver.delivered.find((m) => m.body.includes('Subject: tx'))!;
  const bulk = receiver.delivered.find((m) => m.body.includes('Subject: bulk'))!;
  assert.equal(tx.session.remoteAddress, '127.0.0.2');
  assert.equal(tx.session.helo, 'tx.relay.test');
  assert.equal(bulk.session.remoteAddress, '127.0.0.1');
  assert.notEqual(bulk.session.helo, 'tx.relay.test');
});

const LANES = ['transactional', 'member', 'bulk'].map((name, priority) => ({ name, priority, concurrency: 10, reserve: 0, retry: { initial: 1000, max: 1000, factor: 2 }, lifetime: 1e9 }));

test('path backoff: reduce halves the connection limit and it grows back one per step; a pause restarts at one', () => {
  const profile = { name: 'p', mx: ['p.test'], maxConnections: 8, messagesPerConnection: 10, ratePerSecond: 0, ratePerHour: 0, idleTimeout: 1000, backoff: [] };
  const path = new PathShaping(profile, LANES, 1000, new SiteRate(0, 0), [true, false, false]); // transactional sends from this address alone
  const t0 = 1_000_000;
  const reduce = { match: 'x', regex: /x/, action: 'reduce' as const };
  const top = 0;
  assert.equal(path.apply(reduce, '421 x', top, t0)!.limit, 4);
  assert.equal(path.apply(reduce, '421 x', top, t0 + 10), undefined, 'one reduction per step');
  assert.equal(path.limit(top, t0 + 999), 4);
  assert.equal(path.limit(top, t0 + 2000), 6);
  assert.equal(path.limit(top, t0 + 10_000), 8);
  const pause = { match: 'y', regex: /y/, action: 'pause' as const, duration: 5000 };
  path.apply(pause, '451 y', top, t0 + 20_000);
  assert.equal(path.laneState(top, t0 + 21_000), 'paused');
  assert.equal(path.apply(pause, '451 y', top, t0 + 21_000), undefined, 'a pause is not extended by replies during it');
  assert.equal(path.laneState(top, t0 + 25_000), 'reduced');
  assert.equal(path.limit(top, t0 + 25_000), 1);
  assert.equal(path.limit(top, t0 + 27_000), 3);
  const suspend = path.apply({ match: 'z', regex: /z/, action: 'suspend' }, '421 z', top, t0 + 30_000)!;
  assert.equal(suspend.action, 'suspend');
  assert.equal(suspend.until, undefined, 'without a duration: until resumed');
  assert.deepEqual(suspend.lanes, ['transactional', 'member', 'bulk']);
  assert.equal(path.laneState(2, t0 + 1e9), 'suspended');
  path.resume(t0 + 40_000);
  assert.equal(path.laneState(top, t0 + 40_000), 'reduced');
});

test('path backoff on a shared egress: a reply to bulk traffic cuts bulk; one to member traffic cuts bulk first, member when refused again', () => {
  const profile = { name: 'p', mx: ['p.test'], maxConnections: 8, messagesPerConnection: 10, ratePerSecond: 0, ratePerHour: 0, idleTimeout: 1000, backoff: [] };
  const path = new PathShaping(profile, LANES, 1000, new SiteRate(0, 0));
  const t0 = 1_000_000;
  const reduced = path.apply({ match: 'x', regex: /x/, action: 'reduce', connections: 2 }, '421 x', 2, t0)!;
  assert.deepEqual(reduced.lanes, ['bulk']);
  assert.deepEqual([0, 1, 2].map((p) => path.limit(p, t0)), [8, 8, 2]);
  const pause = { match: 'y', regex: /y/, action: 'pause' as const, duration: 60_000 };
  const first = path.apply(pause, '421 y', 1, t0)!;
  assert.deepEqual(first.lanes, ['bulk'], 'the lowest lane is cut first');
  assert.deepEqual([0, 1, 2].map((p) => path.paused(p, t0 + 1)), [false, false, true]);
  const again = path.apply(pause, '421 y', 1, t0 + 1)!;
  assert.deepEqual(again.lanes, ['member'], 'member is cut when its own traffic is refused with bulk already paused');
  assert.deepEqual([0, 1, 2].map((p) => path.paused(p, t0 + 1)), [false, true, true]);
  assert.equal(path.laneState(0, t0 + 1), 'active', 'transactional is not slowed by the others\' refusals');
  // after the pause the paused lanes come back at one connection, never above a higher lane
  assert.deepEqual([0, 1, 2].map((p) => path.limit(p, t0 + 60_000)), [8, 1, 1]);
});

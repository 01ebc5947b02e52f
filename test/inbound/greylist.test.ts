// Greylisting with postgrey's semantics: the triplet lifecycle on an injected clock (first try
// refused, early retries refused until the delay, accepted within the retry window, started over
// after it, passed triplets kept), client networks (/24, /64) and sender normalisation,
// auto-allowlisting after five passes counted at most hourly, allow entries by network and by
// verified client name; the state in the spool database (kept across a restart) and in Redis
// (seen by every node). Then on sockets: a 450 4.2.0 at RCPT and the retry accepted, on one
// node and across two cluster nodes sharing a redis-server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InboundConfig } from '../../src/config/inbound.ts';
import { RedisLink } from '../../src/relay/cluster/link.ts';
import { Greylist, normalSender, RedisGreylistStore, type GreylistStore } from '../../src/relay/inbound/greylist.ts';
import { EventLog } from '../../src/relay/log.ts';
import { Spool } from '../../src/relay/spool/spool.ts';
import { startRedis } from '../helpers/redis.ts';
import { until } from '../helpers/wait.ts';
import { LOCAL, message, session, startMx, transaction } from './helpers.ts';

const S = 1000;
const H = 3_600_000;
const D = 24 * H;
const CONFIG: InboundConfig['greylist'] = { enabled: true, delay: 300 * S, window: 2 * D, maxAge: 35 * D, autoAllow: 5, allow: [] };

function openSpool(dir: string): Spool {
  return new Spool(dir, { commitBatch: 500, commitInterval: 0, lanes: ['inbound'] });
}

/** A clock the test moves. */
function clock(start = Date.now()) {
  let now = start;
  return { now: () => now, advance: (ms: number) => { now += ms; } };
}

const noName = async () => undefined;

async function lifecycle(store: GreylistStore, other: GreylistStore = store): Promise<void> {
  const time = clock();
  const grey = new Greylist({ config: CONFIG, store, verifiedName: noName, now: time.now });
  // a second greylist on the same records (another node, or the same one after a restart)
  const elsewhere = new Greylist({ config: CONFIG, store: other, verifiedName: noName, now: time.now });
  const first = await grey.check('192.0.2.10', 'news@sender.test', 'alice@mx.test');
  assert.deepEqual(first, { pass: false, retryIn: 300 * S, network: '192.0.2.0/24' });
  time.advance(100 * S);
  // an early retry from a neighbour address of the same /24: still refused, the wait counts from the first try
  assert.deepEqual(await elsewhere.check('192.0.2.11', 'News@Sender.test', 'Alice@mx.test'), { pass: false, retryIn: 200 * S, network: '192.0.2.0/24' });
  time.advance(200 * S);
  assert.deepEqual(await elsewhere.check('192.0.2.12', 'news@sender.test', 'alice@mx.test'), { pass: true, why: 'retried' });
  time.advance(10 * D);
  assert.deepEqual(await grey.check('192.0.2.10', 'news@sender.test', 'alice@mx.test'), { pass: true, why: 'passed' });
  // another recipient, another sender, another network: new triplets
  assert.equal((await grey.check('192.0.2.10', 'news@sender.test', 'bob@mx.test')).pass, false);
  assert.equal((await grey.check('192.0.2.10', 'other@sender.test', 'alice@mx.test')).pass, false);
  assert.equal((await grey.check('198.51.100.1', 'news@sender.test', 'alice@mx.test')).pass, false);
  // a triplet not retried within the window starts over
  time.advance(2 * D + S);
  assert.deepEqual(await grey.check('192.0.2.10', 'news@sender.test', 'bob@mx.test'), { pass: false, retryIn: 300 * S, network: '192.0.2.0/24' });
  // IPv6 clients count as their /64
  assert.equal((await grey.check('2001:db8:1:2::25', 'news@sender.test', 'alice@mx.test')).pass, false);
  time.advance(301 * S);
  assert.deepEqual(await elsewhere.check('2001:db8:1:2:ffff::1', 'news@sender.test', 'alice@mx.test'), { pass: true, why: 'retried' });
}

test('greylist lifecycle on the spool tables, kept across a restart of the spool', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mailops-grey-'));
  let spool = openSpool(dir);
  t.after(() => spool.close());
  await lifecycle(spool.greylist);
  // the records survive the process: a client that passed is not greylisted again after a restart
  const time = clock(Date.now() + 12 * D + 302 * S);
  await spool.close();
  spool = openSpool(dir);
  const grey = new Greylist({ config: CONFIG, store: spool.greylist, verifiedName: noName, now: time.now });
  assert.deepEqual(await grey.check('2001:db8:1:2::7', 'news@sender.test', 'alice@mx.test'), { pass: true, why: 'passed' });
  // and what is past its time is purged
  assert.ok((await spool.greylist.purge(Date.now() + 100 * D)) > 0);
  assert.equal((await grey.check('2001:db8:1:2::7', 'news@sender.test', 'alice@mx.test')).pass, false);
});

test('greylist lifecycle in Redis, shared by two nodes (each with its own link)', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const dir = mkdtempSync(join(tmpdir(), 'mailops-grey-'));
  const spool = openSpool(dir);
  t.after(() => spool.close());
  const log = new EventLog(join(dir, 'events.log'));
  const links = [new RedisLink(redis.url, 'node-a', log), new RedisLink(redis.url, 'node-b', log)];
  t.after(() => Promise.all(links.map((l) => l.close())));
  await Promise.all(links.map((l) => l.start()));
  const [a, b] = links.map((link) => new RedisGreylistStore(link, spool.greylist));
  await lifecycle(a, b);
  // it was Redis that held the records, not the spool standing in for it
  assert.equal(await spool.greylist.triplet('192.0.2.0/24|news@sender.test|alice@mx.test', Date.now()), undefined);
});

test('auto-allowlisting after 5 passes counted at most hourly; allow entries by network and by verified client name', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mailops-grey-'));
  const spool = openSpool(dir);
  t.after(() => spool.close());
  const time = clock();
  const names: Record<string, string> = { '203.0.113.9': 'out-9.mail.example.com' };
  const grey = new Greylist({
    config: { ...CONFIG, allow: ['192.0.2.0/25', 'example.com'] }, store: spool.greylist, now: time.now,
    verifiedName: async (ip) => names[ip],
  });
  assert.deepEqual(await grey.check('192.0.2.100', 'x@sender.test', 'alice@mx.test'), { pass: true, why: 'allowed' });
  assert.equal((await grey.check('192.0.2.200', 'x@sender.test', 'alice@mx.test')).pass, false);
  assert.deepEqual(await grey.check('203.0.113.9', 'x@sender.test', 'alice@mx.test'), { pass: true, why: 'allowed' });

  // five passes, an hour apart; passes within the same hour do not count
  for (let i = 0; i < 5; i++) {
    const rcpt = `user${i}@mx.test`;
    assert.equal((await grey.check('198.51.100.7', 'news@sender.test', rcpt)).pass, false);
    time.advance(301 * S);
    assert.deepEqual(await grey.check('198.51.100.7', 'news@sender.test', rcpt), { pass: true, why: 'retried' });
    // within the hour: not counted again (after the fifth, the network is allowlisted)
    assert.deepEqual(await grey.check('198.51.100.7', 'news@sender.test', rcpt), { pass: true, why: i < 4 ? 'passed' : 'auto-allowed' });
    if (i < 4) assert.equal((await grey.check('198.51.100.8', 'news@sender.test', `new${i}@mx.test`)).pass, false, `not allowed after ${i + 1} passes`);
    time.advance(H);
  }
  assert.deepEqual(await grey.check('198.51.100.9', 'someone-else@other.test', 'never-seen@mx.test'), { pass: true, why: 'auto-allowed' });
  // unseen for maxAge: forgotten
  time.advance(36 * D);
  assert.equal((await grey.check('198.51.100.9', 'someone-else@other.test', 'never-seen@mx.test')).pass, false);
  assert.equal(normalSender('Bounce-1234+list=x@Lists.Example'), 'bounce-#@lists.example');
});

/** The MX's clock, moved on by the test instead of waiting out the greylisting delay. */
function testClock() {
  let ahead = 0;
  return { now: () => Date.now() + ahead, advance: (ms: number) => { ahead += ms; } };
}

test('on the socket: 450 4.2.0 at RCPT, the retry after the delay is accepted and delivered', async (t) => {
  const clock = testClock();
  const mx = await startMx({ inbound: { greylist: { enabled: true, delay: '1s', window: '1h' } }, node: { inbound: { now: clock.now } } });
  t.after(() => mx.stop());
  const client = await session(mx.port);
  t.after(() => client.close());
  const first = await transaction(client, 'news@sender.test', [`alice@${LOCAL}`], message('news@sender.test', `alice@${LOCAL}`));
  assert.match(first[1], /^450 4\.2\.0 <alice@mx\.test>: Recipient address rejected: Greylisted, try again in 1 s$/);
  assert.match(first[2], /^5\d\d /); // DATA without a recipient
  await client.command('RSET');
  clock.advance(1100);
  const retry = await transaction(client, 'news@sender.test', [`alice@${LOCAL}`], message('news@sender.test', `alice@${LOCAL}`));
  assert.match(retry.at(-1)!, /^250 /);
  await mx.mailbox.waitFor(1);
  assert.equal(mx.relay.inbound!.stats.refused.greylisted, 1);
});

test('cluster: a retry that lands on another node is recognised (state in the cluster\'s Redis)', { timeout: 60_000 }, async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const greylist = { enabled: true, delay: '1s', window: '1h' };
  const clock = testClock(); // one clock for both nodes, as NTP gives real ones
  const a = await startMx({ inbound: { greylist }, extra: { cluster: { redis: redis.url, node: 'mx-a', heartbeat: '200ms' } }, node: { inbound: { now: clock.now } } });
  t.after(() => a.stop());
  const b = await startMx({ inbound: { greylist }, extra: { cluster: { redis: redis.url, node: 'mx-b', heartbeat: '200ms' } }, node: { inbound: { now: clock.now } } });
  t.after(() => b.stop());
  const onA = await session(a.port);
  t.after(() => onA.close());
  await onA.command('MAIL FROM:<news@sender.test>');
  assert.match(await onA.command(`RCPT TO:<alice@${LOCAL}>`), /^450 4\.2\.0 /);
  clock.advance(1100);
  const onB = await session(b.port);
  t.after(() => onB.close());
  const retry = await transaction(onB, 'news@sender.test', [`alice@${LOCAL}`], message('news@sender.test', `alice@${LOCAL}`));
  assert.match(retry[1], /^250 /, 'node B knows the first try made on node A');
  assert.match(retry.at(-1)!, /^250 /);
  await until('delivery from node B', () => b.mailbox.delivered.length === 1);
  assert.equal(b.relay.inbound!.stats.refused.greylisted, 0);
});

// Delivery: real receivers on loopback, routes, MX lookups through a DNS server the test runs,
// per-recipient outcomes, retries, and the spool emptying as mail is delivered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import nodemailer, { type SendMailOptions } from 'nodemailer';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { startReceiver } from '../helpers/receiver.ts';
import { FAST_RETRY, startTestRelay, submit as submitTo, type TestRelay } from '../helpers/relay.ts';
import { until } from '../helpers/wait.ts';
import { startDnsServer } from '../helpers/dns-server.ts';

const submit = (relay: TestRelay, mail: SendMailOptions) => submitTo(relay.smtpPort, mail);

test('nodemailer submission is delivered with the tag header removed, and leaves the spool', async (t) => {
  const receiver = await startReceiver();
  const relay = await startTestRelay(FAST_RETRY, { smarthost: receiver.address });
  t.after(async () => { await relay.stop(); await receiver.close(); });
  const info = await submit(relay, {
    from: 'news@sender.test', to: ['a@dest.test', 'b@other.test'], subject: 'Weekly', text: 'hello',
    headers: { 'X-Mailops-Lane': 'bulk' },
  });
  assert.match(info.response, /^250 2\.0\.0 Ok: queued as [0-9A-F]{8}$/);
  const messages = await receiver.waitFor(2);
  // one stored copy, one transaction per destination domain
  assert.deepEqual(messages.map((m) => m.to).sort(), [['a@dest.test'], ['b@other.test']]);
  for (const m of messages) {
    assert.equal(m.from, 'news@sender.test');
    assert.doesNotMatch(m.text, /X-Mailops-Lane/i);
    assert.match(m.text, /Subject: Weekly/);
  }
  await until('spool to empty', () => relay.spool.messages === 0);
  const remaining = relay.spool.db.prepare('SELECT (SELECT count(*) FROM messages) + (SELECT count(*) FROM recipients) AS n').get()!;
  assert.equal(Number(remaining.n), 0);
  const delivered = relay.events().filter((e) => e.event === 'delivered');
  assert.equal(delivered.length, 2);
  assert.equal(delivered[0].lane, 'bulk');
  assert.match(String(delivered[0].reply), /^250 /);
  assert.equal(typeof delivered[0].queuedMs, 'number');
});

test('lane from rules when there is no tag: sender domain, then default', async (t) => {
  const receiver = await startReceiver();
  const relay = await startTestRelay(`${FAST_RETRY}classify:\n  rules:\n    - { senderDomain: newsletter.test, lane: bulk }\n    - { sender: reset@app.test, lane: transactional }\n`, { smarthost: receiver.address });
  t.after(async () => { await relay.stop(); await receiver.close(); });
  await submit(relay, { from: 'weekly@newsletter.test', to: 'a@dest.test', subject: 's', text: 't' });
  await submit(relay, { from: 'reset@app.test', to: 'a@dest.test', subject: 's', text: 't' });
  await submit(relay, { from: 'someone@app.test', to: 'a@dest.test', subject: 's', text: 't' });
  await receiver.waitFor(3);
  const lanes = relay.events().filter((e) => e.event === 'received').map((e) => [e.from, e.lane]);
  assert.deepEqual(lanes, [['weekly@newsletter.test', 'bulk'], ['reset@app.test', 'transactional'], ['someone@app.test', 'member']]);
});

test('per-recipient outcomes: 250 delivered, 550 failed, 450 deferred then delivered on retry', async (t) => {
  let greylist = true;
  const receiver = await startReceiver({
    rcpt: (address) => {
      if (address.startsWith('unknown')) return [550, '5.1.1 No such user'];
      if (address.startsWith('grey') && greylist) return [450, '4.2.0 Greylisted, try later'];
      return undefined;
    },
  });
  const relay = await startTestRelay(FAST_RETRY, { smarthost: receiver.address });
  t.after(async () => { await relay.stop(); await receiver.close(); });
  await submit(relay, { from: 'a@sender.test', to: ['ok@dest.test', 'unknown@dest.test', 'grey@dest.test'], subject: 's', text: 't' });
  await until('deferral', () => relay.events().find((e) => e.event === 'deferred'));
  greylist = false;
  await until('spool to empty', () => relay.spool.messages === 0);
  const events = relay.events();
  const failed = events.filter((e) => e.event === 'failed');
  assert.deepEqual(failed.map((e) => e.rcpt), ['unknown@dest.test']);
  assert.match(String(failed[0].reply), /^550 5\.1\.1 /);
  const deferred = events.filter((e) => e.event === 'deferred');
  assert.equal(deferred[0].rcpt, 'grey@dest.test');
  assert.match(String(deferred[0].reply), /^450 /);
  // (the sender's bounce for unknown@ travels too; only the original recipients matter here)
  const toDest = (rcpt: unknown) => String(rcpt).endsWith('@dest.test');
  const delivered = events.filter((e) => e.event === 'delivered' && toDest(e.rcpt)).map((e) => [e.rcpt, e.attempt]);
  assert.deepEqual(delivered.sort(), [['grey@dest.test', 2], ['ok@dest.test', 1]]);
  assert.deepEqual(receiver.delivered.filter((m) => m.to.every(toDest)).map((m) => m.to), [['ok@dest.test'], ['grey@dest.test']]);
});

test('an unreachable destination defers, and mail flows once it answers', async (t) => {
  const probe = await startReceiver();
  const port = probe.port;
  await probe.close(); // the port is now closed: connections are refused
  const relay = await startTestRelay(FAST_RETRY, { smarthost: `127.0.0.1:${port}` });
  t.after(() => relay.stop());
  await submit(relay, { from: 'a@sender.test', to: 'b@dest.test', subject: 's', text: 't' });
  const deferred = await until('deferral', () => relay.events().find((e) => e.event === 'deferred'));
  assert.match(String(deferred.reply), /^451 4\.4\.1 Connection failed: .*ECONNREFUSED/);
  const receiver = await startReceiver({}, port);
  t.after(() => receiver.close());
  await receiver.waitFor(1);
});

test('MX lookup: preference order, A fallback, null MX and unknown domains fail permanently', async (t) => {
  const receiver = await startReceiver();
  const dns = await startDnsServer({
    'mx.test': { MX: [{ priority: 20, exchange: 'backup.mx.test' }, { priority: 10, exchange: 'dead.mx.test' }] },
    'dead.mx.test': { A: ['127.0.0.2'] }, // nothing listens there: the relay moves on to the next MX
    'backup.mx.test': { A: ['127.0.0.1'] },
    'plain.test': { A: ['127.0.0.1'] },
    'nullmx.test': { MX: [{ priority: 0, exchange: '.' }] },
  });
  const relay = await startTestRelay(`${FAST_RETRY}  dnsServers: ["${dns.address}"]\n  port: ${receiver.port}\n  connectTimeout: 2s\n`);
  t.after(async () => { await relay.stop(); await receiver.close(); await dns.close(); });
  await submit(relay, { from: 'a@sender.test', to: ['x@mx.test', 'y@plain.test', 'z@nullmx.test', 'w@nxdomain.test'], subject: 's', text: 't' });
  await receiver.waitFor(2);
  await until('spool to empty', () => relay.spool.messages === 0);
  const events = relay.events();
  const delivered = events.filter((e) => e.event === 'delivered');
  assert.deepEqual(delivered.map((e) => [e.rcpt, e.mx]).sort(), [['x@mx.test', 'backup.mx.test'], ['y@plain.test', 'plain.test']]);
  const failed = Object.fromEntries(events.filter((e) => e.event === 'failed').map((e) => [e.rcpt, e.reply]));
  assert.match(String(failed['z@nullmx.test']), /^556 5\.1\.10 /);
  assert.match(String(failed['w@nxdomain.test']), /^550 5\.1\.2 /);
});

test('a destination never sees more connections than its limit', async (t) => {
  const receiver = await startReceiver({ dataDelayMs: 5 });
  const relay = await startTestRelay(`${FAST_RETRY}  maxConnectionsPerDestination: 3\n`, { smarthost: receiver.address });
  t.after(async () => { await relay.stop(); await receiver.close(); });
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: relay.smtpPort, pool: true, maxConnections: 10, ignoreTLS: true });
  t.after(() => transport.close());
  await Promise.all(Array.from({ length: 200 }, (_, i) =>
    transport.sendMail({ from: 'a@sender.test', to: `r${i}@dest.test`, subject: 's', text: 't', headers: { 'X-Mailops-Lane': ['bulk', 'member', 'transactional'][i % 3] } })));
  await receiver.waitFor(200);
  assert.ok(receiver.maxConcurrent <= 3, `receiver saw ${receiver.maxConcurrent} concurrent connections`);
  assert.ok(receiver.maxConcurrent >= 2, 'more than one connection was used');
});

test('opportunistic TLS: a receiver whose TLS handshake fails gets the mail in clear', async (t) => {
  // STARTTLS offered, but only TLS 1.0/1.1, which the relay's TLS refuses
  const arrived: string[] = [];
  const receiver = new SMTPServer({
    authOptional: true, logger: false, disableReverseLookup: true, closeTimeout: 100, minVersion: 'TLSv1', maxVersion: 'TLSv1.1',
    onData(stream, session, callback) {
      stream.resume();
      stream.on('end', () => { arrived.push(`${session.envelope.rcptTo[0].address} secure=${session.secure}`); callback(null, 'Ok'); });
    },
  } as ConstructorParameters<typeof SMTPServer>[0]);
  receiver.on('error', () => {}); // the failed handshakes
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const relay = await startTestRelay(FAST_RETRY, { smarthost: `127.0.0.1:${(receiver.server.address() as AddressInfo).port}` });
  t.after(async () => { await relay.stop(); await new Promise<void>((resolve) => receiver.close(() => resolve())); });
  await submit(relay, { from: 'a@sender.test', to: 'b@dest.test', subject: 's', text: 't' });
  await until('delivered in clear', () => arrived.length === 1);
  assert.deepEqual(arrived, ['b@dest.test secure=false']);
  const delivered = relay.events().find((e) => e.event === 'delivered');
  assert.equal(delivered?.tls, false);
  assert.equal(relay.events().filter((e) => e.event === 'deferred').length, 0, 'no attempt was lost to the failed handshake');
});

// Priority where providers push back, over real sockets: a receiver that caps connections per
// client address, answers slowly and ends sessions after a few messages, with thousands of bulk
// messages queued for it; and a receiver that throttles only the bulk lane's sending address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import nodemailer from 'nodemailer';
import { startDnsServer } from '../helpers/dns-server.ts';
import { startReceiver } from '../helpers/receiver.ts';
import { startTestRelay } from '../helpers/relay.ts';
import { until } from '../helpers/wait.ts';

const CAP = 4;

test('reminders go out next while bulk holds every connection a capped, slow receiver allows, and none waits for the retry schedule', { timeout: 120_000 }, async (t) => {
  const receiver = await startReceiver({
    dataDelayMs: 100,
    connect: (_all, fromAddress) => (fromAddress > CAP ? [421, '4.7.0 Too many connections from your IP, try again later'] : undefined),
    mail: (_from, session) => (session.messages >= 20 ? [421, '4.7.0 Too many messages in this session, closing connection'] : undefined),
  });
  // the README tour's layout: one smarthost, the relay's defaults (20 connections, 100 messages each)
  const relay = await startTestRelay('', { smarthost: receiver.address });
  t.after(async () => { await relay.stop(); await receiver.close(); });
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: relay.smtpPort, pool: true, maxConnections: 8, maxMessages: Infinity, ignoreTLS: true });
  t.after(() => transport.close());

  const BULK = 5000;
  await Promise.all(Array.from({ length: BULK }, (_, i) => transport.sendMail({
    from: 'news@sender.test', to: `member${i}@dest.test`, subject: `Newsletter ${i}`, text: 'x'.repeat(2000), headers: { 'X-Mailops-Lane': 'bulk' },
  })));
  await until('bulk flowing', () => receiver.delivered.length >= 50, 30_000);

  const between: number[] = [];
  for (let i = 0; i < 50; i++) {
    const subject = `Password reset ${i}`;
    await transport.sendMail({ from: 'reset@app.test', to: `user${i}@dest.test`, subject, text: 'your link', headers: { 'X-Mailops-Lane': 'transactional' } });
    const readyAt = receiver.delivered.length; // every bulk message arriving after this point became ready after the reminder or was in flight
    const position = await until(`${subject} arrived`, () => receiver.delivered.findIndex((m) => m.text.includes(`Subject: ${subject}\r`)) + 1, 30_000);
    const arrival = position - 1;
    between.push(Math.max(0, arrival - readyAt));
  }
  t.diagnostic(`bulk messages delivered between a reminder's 250 and its arrival: ${between.join(' ')}; bulk delivered ${receiver.delivered.length - 50} of ${BULK}`);
  // The receiver takes 100 ms per message on at most 4 connections: a reminder that waited in a
  // lane's retry schedule, or behind the bulk ready queue, would see hundreds of bulk messages go first.
  // Overtaking at the next message boundary lets through at most those in flight on each connection.
  assert.ok(Math.max(...between) <= 2 * CAP, `bulk messages delivered while a reminder waited: ${between.join(' ')}`);
  const txDeferred = relay.events().filter((e) => e.event === 'deferred' && e.lane === 'transactional');
  assert.deepEqual(txDeferred, [], 'no reminder went onto the retry schedule');
  assert.ok(relay.events().some((e) => e.event === 'shaping' && e.action === 'reduce'), 'the connection cap was learnt');
  assert.ok(receiver.delivered.length - 50 < BULK, 'bulk was still queued: the reminders overtook it');
});

test('two egress addresses: a throttle reply to the bulk address pauses bulk only, and bulk ramps back', { timeout: 60_000 }, async (t) => {
  let throttling = false;
  const receiver = await startReceiver({
    dataDelayMs: 5,
    rcpt: (_a, session) => (throttling && session.remoteAddress === '127.0.0.3'
      ? [421, '4.7.28 [127.0.0.3] Our system has detected an unusual rate of unsolicited mail originating from your IP address.'] : undefined),
  });
  const dns = await startDnsServer({
    'gmail.test': { MX: [{ priority: 5, exchange: 'gmail-smtp-in.l.google.com' }] },
    'gmail-smtp-in.l.google.com': { A: ['127.0.0.1'] },
  });
  const relay = await startTestRelay(`lanes:
  transactional: { egress: { address: 127.0.0.2, helo: tx.relay.test } }
  bulk: { egress: { address: 127.0.0.3, helo: bulk.relay.test } }
delivery: { dnsServers: ["${dns.address}"], port: ${receiver.port}, idleTimeout: 300ms }
shaping:
  rampStep: 300ms
  profiles:
    google: { backoff: [{ match: "4\\\\.7\\\\.28", action: pause, for: 1500ms }] }
`);
  t.after(async () => { await relay.stop(); await receiver.close(); await dns.close(); });
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: relay.smtpPort, pool: true, maxConnections: 4, ignoreTLS: true });
  t.after(() => transport.close());
  const send = (lane: string, i: number) => transport.sendMail({ from: 'a@app.test', to: `${lane}${i}@gmail.test`, subject: `${lane} ${i}`, text: 'x', headers: { 'X-Mailops-Lane': lane } });

  await Promise.all(Array.from({ length: 20 }, (_, i) => send('bulk', i)));
  await until('first bulk delivered', () => receiver.delivered.length >= 20);
  throttling = true;
  await Promise.all(Array.from({ length: 20 }, (_, i) => send('bulk', 100 + i)));
  const pause = await until('bulk paused', () => relay.events().find((e) => e.event === 'shaping' && e.action === 'pause'));
  assert.equal(pause.egress, '127.0.0.3');
  assert.deepEqual(pause.lanes, ['bulk'], 'the pause names the lanes it touched');
  // reminders keep flowing from their own address while bulk is paused
  const sentAt = Date.now();
  for (let i = 0; i < 10; i++) await send('transactional', i);
  await until('reminders delivered', () => receiver.delivered.filter((m) => m.to[0].startsWith('transactional')).length === 10);
  assert.ok(Date.now() - sentAt < 1500, 'within the bulk pause');
  assert.ok(receiver.delivered.filter((m) => m.to[0].startsWith('transactional')).every((m) => m.session.remoteAddress === '127.0.0.2'));
  assert.equal(relay.events().filter((e) => e.event === 'deferred' && e.lane === 'transactional').length, 0);
  assert.ok(relay.events().filter((e) => e.event === 'shaping').every((e) => !(e.lanes as string[] | undefined)?.includes('transactional')), 'no shaping action touched transactional');
  const view = await (await fetch(`${relay.httpUrl}/api/v1/destinations`)).json() as { paths: { egress: string; site: string; lanes: Record<string, { state: string; limit: number }> }[] };
  const bulkPath = view.paths.find((p) => p.egress === '127.0.0.3')!;
  const txPath = view.paths.find((p) => p.egress === '127.0.0.2')!;
  assert.equal(bulkPath.site, 'provider:google');
  assert.equal(bulkPath.lanes.bulk.state, 'paused');
  assert.equal(txPath.lanes.transactional.state, 'active');
  // the pause ends: bulk comes back at one connection and ramps up
  throttling = false;
  await until('bulk delivered after the pause', () => receiver.delivered.filter((m) => /^bulk1\d\d@/.test(m.to[0])).length === 20, 30_000);
  const metrics = await (await fetch(`${relay.httpUrl}/metrics`)).text();
  assert.match(metrics, /mailops_path_state\{egress="127\.0\.0\.3",site="provider:google",lane="bulk",state="paused"\} 0/);
  assert.match(metrics, /mailops_path_limit\{egress="127\.0\.0\.2",site="provider:google",lane="transactional"\} 5/);
});

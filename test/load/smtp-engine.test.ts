// The SMTP engine against real servers on loopback: Postfix's smtp-sink, an SMTP server without
// PIPELINING, a server that refuses recipients, a slow server (coordinated omission) and a port
// nobody listens on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SMTPServer } from 'smtp-server';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { parseScenario } from '../../src/load/scenario/parse.ts';
import { runLoad } from '../../src/load/run.ts';
import { startReceiver } from '../helpers/receiver.ts';
import { startPostfixSink, startRawServer } from './servers.ts';

const smtp = (port: number) => ({ kind: 'smtp' as const, host: '127.0.0.1', port, url: `smtp://127.0.0.1:${port}` });

test('3000 messages into smtp-sink: all accepted, connections reused up to messagesPerConnection', async () => {
  const sink = await startPostfixSink();
  try {
    const scenario = parseScenario({ messages: 3000, rate: 'max', connections: 8, messagesPerConnection: 50, bulk: { size: 4096 } }, 'inline.yaml');
    const r = await runLoad({ scenario, target: smtp(sink.port), seed: 1 });
    assert.equal(r.totals.accepted, 3000);
    assert.equal(r.totals.failed, 0);
    await sink.waitFor(3000);
    assert.equal(sink.messages(), 3000, 'smtp-sink counted every message');
    // 3000 / 50 per connection; at the end a few fresh connections may find no work left.
    assert.ok(r.totals.connections >= 60 && r.totals.connections <= 68, `connections ${r.totals.connections}`);
    assert.ok(r.totals.bytes > 3000 * 4000 && r.totals.bytes < 3000 * 4200, `bytes ${r.totals.bytes}`);
    for (const phase of ['connect', 'banner', 'ehlo', 'mail', 'rcpt', 'data', 'eod'] as const) {
      assert.ok(r.phases[phase].count > 0, `${phase} measured`);
    }
    assert.equal(r.phases.eod.count, 3000);
    assert.ok(r.timeline.length >= 1 && r.timeline.reduce((n, p) => n + p.sent, 0) === 3000, 'timeline adds up');
  } finally {
    await sink.stop();
  }
});

test('full pipelining: MAIL, RCPT and DATA in one write; the next transaction rides on the message', async () => {
  const server = await startRawServer();
  try {
    const scenario = parseScenario({ messages: 20, rate: 'max', connections: 1, messagesPerConnection: 100, bulk: { size: 2048 } }, 'inline.yaml');
    const r = await runLoad({ scenario, target: smtp(server.port), seed: 1 });
    assert.equal(r.totals.accepted, 20);
    assert.equal(server.messages, 20);
    const envelope = server.chunks.filter((c) => /^MAIL FROM:<[^>]+>\r\nRCPT TO:<[^>]+>\r\nDATA\r\n$/.test(c));
    assert.equal(envelope.length, 1, 'the first envelope is one write');
    const riding = server.chunks.filter((c) => /\r\n\.\r\nMAIL FROM:<[^>]+>\r\nRCPT TO:<[^>]+>\r\nDATA\r\n$/.test(c));
    assert.equal(riding.length, 19, 'each later envelope follows the previous message in the same write');
  } finally {
    await server.close();
  }
});

test('a server without PIPELINING gets one command at a time (RSET after a refusal), and still every message', async () => {
  let mails = 0;
  const server = new SMTPServer({
    hidePIPELINING: true, authOptional: true, disabledCommands: ['STARTTLS'], logger: false, disableReverseLookup: true,
    onMailFrom(_a, _s, cb) { mails++; cb(); },
    onRcptTo(a, _s, cb) { cb(a.address.startsWith('unknown') ? Object.assign(new Error('5.1.1 user unknown'), { responseCode: 550 }) : undefined); },
    onData(stream, _s, cb) { stream.resume(); stream.on('end', () => cb()); },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const port = (server.server.address() as AddressInfo).port;
    const scenario = parseScenario({ messages: 200, rate: 'max', connections: 4, bulk: { size: 3000 }, recipients: { unknown: '10%' } }, 'inline.yaml');
    const r = await runLoad({ scenario, target: smtp(port), seed: 2 });
    // Refused recipients are followed by RSET, so no later MAIL is refused as nested.
    assert.ok(r.totals.unknownRecipients > 5);
    assert.equal(r.totals.failed, r.totals.unknownRecipients);
    assert.deepEqual(Object.keys(r.errors.byCode), ['550']);
    assert.equal(r.totals.accepted, 200 - r.totals.unknownRecipients);
    assert.equal(mails, 200);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('refusals are counted by reply code, enhanced code, provider and phase', async () => {
  const receiver = await startReceiver({
    rcpt: (address) => address.startsWith('unknown') ? [550, '5.1.1 user unknown']
      : address.endsWith('@gmail.com') ? [452, '4.2.2 mailbox full'] : undefined,
  });
  try {
    const scenario = parseScenario({
      messages: 2000, rate: 'max', connections: 4, bulk: { size: 2000 },
      recipients: { providers: { 'gmail.com': 10 }, corporate: { weight: 90, domains: 50 }, unknown: '10%' },
      thresholds: ['error_rate < 1%'],
    }, 'inline.yaml');
    const r = await runLoad({ scenario, target: smtp(receiver.port), seed: 3 });
    const e = r.errors;
    assert.equal(r.totals.accepted + r.totals.failed, 2000);
    assert.equal(receiver.delivered.length, r.totals.accepted);
    assert.equal(e.byCode['550'] + e.byCode['452'], r.totals.failed);
    assert.equal(e.byEnhanced['5.1.1'], e.byCode['550']);
    assert.equal(e.byEnhanced['4.2.2'], e.byCode['452']);
    assert.equal(e.byPhase.rcpt, r.totals.failed);
    // Unknown gmail users get 550 (checked first); every other gmail recipient 452.
    assert.equal(e.byCode['550'], r.totals.unknownRecipients);
    assert.ok(e.byProvider.google >= e.byCode['452'] && e.byProvider.corporate > 0);
    assert.equal(r.passed, false, 'error_rate above 1 % fails the threshold');
    assert.equal(r.thresholds[0].ok, false);
  } finally {
    await receiver.close();
  }
});

test('open loop: a slow server shows up in the send latency (coordinated omission corrected)', async () => {
  const receiver = await startReceiver({ dataDelayMs: 100 });
  try {
    // 1 connection can do about 10 messages/s; the schedule asks for 40/s for 1 s.
    const scenario = parseScenario({ messages: 40, rate: 40, connections: 1, transactional: { rate: 0 }, member: { rate: 0 }, bulk: { size: 1500 } }, 'inline.yaml');
    const r = await runLoad({ scenario, target: smtp(receiver.port), seed: 4 });
    assert.equal(r.totals.accepted, 40);
    assert.ok(r.lanes.bulk.service.p50 >= 90 && r.lanes.bulk.service.p50 < 1000, `service p50 ${r.lanes.bulk.service.p50}`);
    // The last message was due at ~1 s but could only finish at ~4 s.
    assert.ok(r.send.max > 2500, `send max ${r.send.max} ms`);
    assert.ok(r.send.max > 10 * r.lanes.bulk.service.max / 2, 'send latency includes the wait for a free connection');
  } finally {
    await receiver.close();
  }
});

test('an unreachable target fails the run with the address and the reason', async () => {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  const scenario = parseScenario({ messages: 10, rate: 'max', connections: 2 }, 'inline.yaml');
  await assert.rejects(runLoad({ scenario, target: smtp(port), seed: 1 }), new RegExp(`cannot connect to smtp://127\\.0\\.0\\.1:${port}: ECONNREFUSED`));
});

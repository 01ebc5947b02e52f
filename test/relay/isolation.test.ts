// A transactional message never waits behind bulk: thousands of bulk messages queue for one
// destination that accepts slowly, and password reminders sent meanwhile arrive promptly on the
// connection slots reserved for their lane.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import nodemailer from 'nodemailer';
import { startReceiver } from '../helpers/receiver.ts';
import { startTestRelay } from '../helpers/relay.ts';

test('transactional mail is delivered promptly while thousands of bulk messages wait for the same destination', { timeout: 90_000 }, async (t) => {
  // 50 ms per message over 6 connections: the backlog drains at about 120/s, far slower than it is injected
  const receiver = await startReceiver({ dataDelayMs: 50 });
  const relay = await startTestRelay('delivery:\n  maxConnectionsPerDestination: 6\n', { smarthost: receiver.address });
  t.after(async () => { await relay.stop(); await receiver.close(); });
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: relay.smtpPort, pool: true, maxConnections: 8, maxMessages: Infinity, ignoreTLS: true });
  t.after(() => transport.close());

  const BULK = 3000;
  await Promise.all(Array.from({ length: BULK }, (_, i) => transport.sendMail({
    from: 'news@sender.test', to: `member${i}@dest.test`, subject: `Newsletter ${i}`, text: 'x'.repeat(3000),
    headers: { 'X-Mailops-Lane': 'bulk' },
  })));
  const bulkWaiting = () => {
    const c = relay.spool.counts.get('bulk')!;
    return c.queued + c.deferred + c.active;
  };
  assert.ok(bulkWaiting() > 2000, `bulk backlog ${bulkWaiting()}`);

  const latencies: number[] = [];
  for (let i = 0; i < 10; i++) {
    const subject = `Password reset ${i}`;
    await transport.sendMail({ from: 'reset@app.test', to: 'user@dest.test', subject, text: 'your link', headers: { 'X-Mailops-Lane': 'transactional' } });
    const acked = Date.now();
    const deadline = acked + 10_000;
    let arrived: number | undefined;
    while (arrived === undefined && Date.now() < deadline) {
      arrived = receiver.delivered.find((m) => m.text.includes(`Subject: ${subject}`))?.at;
      if (arrived === undefined) await new Promise((r) => setTimeout(r, 2));
    }
    assert.ok(arrived, `${subject} did not arrive within 10 s`);
    latencies.push(arrived - acked);
  }
  const backlog = bulkWaiting();
  t.diagnostic(`transactional 250-to-arrival ms: ${latencies.join(', ')}; bulk still waiting afterwards: ${backlog}`);
  assert.ok(backlog > 1000, `bulk was still draining (${backlog} waiting) when the last reminder arrived`);
  // With 50 ms per message at the receiver, a reminder queued behind the bulk backlog would wait
  // many seconds; on its reserved slots it waits for one transaction at most.
  assert.ok(Math.max(...latencies) < 1000, `slowest reminder took ${Math.max(...latencies)} ms`);
});

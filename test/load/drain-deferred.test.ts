// The drain after sending, when the sink defers some recipients (452 Mailbox full on every attempt):
// a run through the relay ends after the quiet period instead of the drain timeout, counts those
// messages as deferred (held by the relay), not missing, and passes `missing == 0`; arrivals that
// keep coming restart the quiet period; a rest that is not all deferred still waits for the timeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSink } from '../../src/sink/index.ts';
import { parseScenario } from '../../src/load/scenario/parse.ts';
import { runLoad } from '../../src/load/run.ts';
import { fetchSinkStats, RunArrivalTimeline, waitForArrival } from '../../src/load/sink-client.ts';
import { renderSummary } from '../../src/load/report/summary-md.ts';
import { renderHtml } from '../../src/load/report/html.ts';
import { FAST_RETRY, startTestRelay } from '../helpers/relay.ts';
import { message, session } from '../sink/client.ts';

/** Short enough for a test, long enough that the relay's retries (every 200 ms..1 s here) fall inside it. */
const QUIET_MS = 1500;

test('run through the relay: 452 mailboxes end the drain after the quiet period as deferred, missing 0, threshold passes', async () => {
  // Every 20th recipient or so has a full mailbox (hashed per address: every retry gets 452 again);
  // local parts starting `unknown` are refused for good.
  const sink = await startSink({
    smtp: '127.0.0.1:0', http: '127.0.0.1:0', tls: false, profile: 'lab',
    profiles: { profiles: { lab: {
      unknownUsers: { share: 0, prefix: 'unknown', reply: '550 5.1.1 <{recipient}>: User unknown' },
      mailboxFull: { share: 0.05, reply: '452 4.2.2 <{recipient}>: Mailbox full' },
    } } },
  });
  // Fast retries: the relay keeps presenting the full mailboxes during the drain, as it would for days.
  const relay = await startTestRelay(FAST_RETRY, { smarthost: `127.0.0.1:${sink.smtpPort}` });
  try {
    const scenario = parseScenario({
      name: 'deferred-drain', messages: 200, stages: [{ target: 200, duration: '1s' }], connections: 2,
      recipients: { unknown: '5%' }, thresholds: ['missing == 0'], drainTimeout: '60s',
    }, 'deferred-drain.yaml');
    const report = await runLoad({
      scenario, seed: 11, sink: `http://127.0.0.1:${sink.httpPort}`, drainQuietMs: QUIET_MS,
      target: { kind: 'smtp', host: '127.0.0.1', port: relay.smtpPort, url: `smtp://127.0.0.1:${relay.smtpPort}` },
    });
    const a = report.arrival!;
    const stats = sink.stats();
    const queue = (await (await fetch(`${relay.httpUrl}/api/v1/queue`)).json()) as { total: number };

    assert.equal(report.totals.failed, 0);
    assert.ok(a.deferred > 0 && a.refused > 0 && a.arrived > 0, JSON.stringify({ ...a, timeline: undefined, refusals: undefined }));
    assert.equal(a.deferred, stats.deferredNow, 'deferred: the recipients the sink defers');
    assert.equal(a.deferred, queue.total, 'deferred: the messages the relay still holds');
    assert.ok((stats.repliesByPhase.rcpt['452'] ?? 0) >= a.deferred);
    assert.equal(a.arrived - a.duplicates + a.refused + a.deferred, report.totals.accepted);
    assert.equal(a.missing, 0);
    assert.equal(a.complete, true);
    assert.ok(a.drainMs >= QUIET_MS, `waited the quiet period: ${a.drainMs} ms`);
    assert.ok(a.drainMs < scenario.drainTimeout, `ended before the drain timeout: ${a.drainMs} ms`);
    assert.deepEqual(report.thresholds.map((t) => [t.expression, t.actual, t.ok]), [['missing == 0', 0, true]]);
    assert.equal(report.passed, true);

    const md = renderSummary(report);
    assert.match(md, new RegExp(`deferred by it ${a.deferred} \\(held by the relay after a 4xx\\), duplicates 0, \\*\\*missing 0\\*\\*; drain took [\\d.]+ s \\(the rest deferred at the sink\\)`));
    const html = renderHtml(report);
    assert.match(html, new RegExp(`missing \\(arrived ${a.arrived}, refused ${a.refused}, deferred ${a.deferred}\\)`));
    assert.match(html, new RegExp(`<th>deferred \\(4xx, held by the relay\\)</th>[\\s\\S]*<td>${a.deferred}</td><td>0</td><td>0</td><td>[\\d.]+ s \\(the rest deferred at the sink\\)</td>`));
  } finally {
    await relay.stop();
    await sink.close();
  }
});

test('drain: arrivals restart the quiet period; a rest that is not all deferred waits for the timeout', async () => {
  // accept-all on the shared port; "full" answers 452 to every recipient.
  const sink = await startSink({
    smtp: '127.0.0.1:0', http: '127.0.0.1:0', tls: false, profile: 'accept-all',
    listeners: [{ profile: 'full', smtp: '127.0.0.1:0' }],
    profiles: { profiles: { full: { mailboxFull: { share: 1, reply: '452 4.2.2 <{recipient}>: Mailbox full' } } } },
  });
  const base = `http://127.0.0.1:${sink.httpPort}`;
  const sendTagged = async (seq: number) => {
    const { client } = await session(sink.smtpPort);
    const replies = await client.send('news@shop.test', [`m${seq}@acme.test`], message({ 'X-Mailops-Load': `run=drain; seq=${seq}; lane=bulk; sent=${Date.now()}` }));
    assert.equal(replies.at(-1)?.code, 250);
    await client.quit();
  };
  try {
    // Six recipients deferred at the sink, as a rate limit leaves them while the relay still delivers.
    const full = await session(sink.listenerPorts.full);
    await full.client.command('MAIL FROM:<news@shop.test>');
    for (let i = 0; i < 6; i++) assert.equal((await full.client.command(`RCPT TO:<held${i}@acme.test>`))?.code, 452);
    await full.client.quit();

    // Six expected, six deferred: the drain could end after one quiet period, but three messages
    // arrive 600 ms apart, each restarting it.
    const before = await fetchSinkStats(base);
    const quietMs = 1000;
    const sends: Promise<void>[] = [];
    let lastSentAt = 0;
    const a = await waitForArrival(base, before, 6, 30_000, new RunArrivalTimeline(before), {
      quietMs,
      onPoll: ({ drainMs }) => {
        if (sends.length < 3 && drainMs >= 600 * (sends.length + 1)) {
          lastSentAt = drainMs;
          sends.push(sendTagged(sends.length));
        }
      },
    });
    await Promise.all(sends);
    assert.equal(a.arrived, 3);
    assert.equal(a.deferred, 3, 'the shortfall, not all six deferred recipients');
    assert.equal(a.complete, true);
    assert.ok(lastSentAt >= 1800 && a.drainMs >= lastSentAt + quietMs, `ended ${a.drainMs} ms in, last arrival sent at ${lastSentAt} ms`);

    // Seven expected, three arrived and six deferred, but a message of it is neither: no early end.
    const again = await fetchSinkStats(base);
    const b = await waitForArrival(base, again, 7, 2 * quietMs + 500, new RunArrivalTimeline(again), { quietMs });
    assert.equal(b.arrived, 0);
    assert.equal(b.deferred, 6);
    assert.equal(b.complete, false);
    assert.ok(b.drainMs >= 2 * quietMs + 500, `waited for the timeout: ${b.drainMs} ms`);
  } finally {
    await sink.close();
  }
});

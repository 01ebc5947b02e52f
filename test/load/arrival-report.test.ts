// The run's report with a sink: arrival latency per lane over time, cut to the run's window (a
// message held up for a minute is a spike; an earlier run's late mail is not this run's), and the
// sink's deferrals and refusals by provider and reply, in report.json, summary.md and report.html.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSink } from '../../src/sink/index.ts';
import { parseScenario } from '../../src/load/scenario/parse.ts';
import { runLoad } from '../../src/load/run.ts';
import { RunArrivalTimeline, type SinkStats } from '../../src/load/sink-client.ts';
import { renderSummary } from '../../src/load/report/summary-md.ts';
import { renderHtml } from '../../src/load/report/html.ts';
import { message, session } from '../sink/client.ts';

/** Sends one tagged message straight to the sink, as if it had been on its way for `ageMs`. */
async function sendTagged(port: number, lane: string, ageMs: number): Promise<void> {
  const { client } = await session(port);
  const replies = await client.send('late@shop.test', ['late@acme.test'], message({ 'X-Mailops-Load': `run=elsewhere; seq=1; lane=${lane}; sent=${Date.now() - ageMs}` }));
  assert.equal(replies.at(-1)?.code, 250);
  await client.quit();
}

test('report: arrival latency per lane over the run (a late reminder is a spike) and deferrals by provider and reply', async () => {
  const sink = await startSink({
    smtp: '127.0.0.1:0', http: '127.0.0.1:0', tls: false, profile: 'lab',
    profiles: { profiles: { lab: {
      unknownUsers: { share: 0, prefix: 'unknown', reply: '550 5.1.1 <{recipient}>: User unknown' },
      mailboxFull: { share: 0.05, reply: '452 4.2.2 <{recipient}>: Mailbox full' },
    } } },
  });
  try {
    // Before the run: a member message half a minute late, from an earlier run that is still draining.
    await sendTagged(sink.smtpPort, 'member', 30_000);
    const scenario = parseScenario({
      name: 'arrival-check', messages: 200, startRate: 100, stages: [{ target: 100, duration: '2s' }], connections: 2,
      transactional: { rate: 10 }, member: { rate: 5 }, recipients: { unknown: '5%' },
    }, 'arrival-check.yaml');
    let late: Promise<void> | undefined;
    const report = await runLoad({
      scenario, seed: 3, sink: `http://127.0.0.1:${sink.httpPort}`,
      target: { kind: 'smtp', host: '127.0.0.1', port: sink.smtpPort, url: `smtp://127.0.0.1:${sink.smtpPort}` },
      // A second into sending, a password reminder that was stuck a minute on its way arrives.
      onProgress: (p) => { if (p.stage === 'sending') late ??= sendTagged(sink.smtpPort, 'transactional', 60_000); },
    });
    await late;
    const a = report.arrival!;
    const stats = sink.stats();

    assert.ok(a.timeline.length >= 2, JSON.stringify(a.timeline));
    const end = report.totals.sendSeconds + a.drainMs / 1000 + 2;
    for (const p of a.timeline) assert.ok(p.t > 0 && p.t <= end, `point inside the run: ${p.t} of ${end}`);
    const spikes = a.timeline.filter((p) => (p.lanes.transactional?.max ?? 0) >= 60_000);
    assert.equal(spikes.length, 1, JSON.stringify(a.timeline));
    assert.ok(spikes[0].t >= 1 && spikes[0].t <= report.totals.sendSeconds + 2, `spike when it arrived: ${spikes[0].t}`);
    assert.ok(a.timeline.every((p) => (p.lanes.member?.max ?? 0) < 30_000), 'the earlier run\'s late message is not in this run\'s timeline');
    const bulk = a.timeline.reduce((n, p) => n + (p.lanes.bulk?.count ?? 0), 0);
    assert.equal(bulk, stats.byLane.bulk.count, 'every bulk arrival is in the timeline');
    for (const p of a.timeline) for (const l of Object.values(p.lanes)) assert.ok(l.p50 <= l.p99 && l.p99 <= l.max);

    // The sink was the target: its refusals are the generator's failures, by code.
    assert.deepEqual(a.refusals, stats.refusals);
    assert.deepEqual(a.refusals.map((r) => [r.profile, r.phase, r.code, r.enhanced, r.text]).sort(), [
      ['lab', 'rcpt', 452, '4.2.2', '<{recipient}>: Mailbox full'],
      ['lab', 'rcpt', 550, '5.1.1', '<{recipient}>: User unknown'],
    ]);
    for (const r of a.refusals) assert.equal(r.count, report.errors.byCode[String(r.code)], `${r.code}`);

    const md = renderSummary(report);
    assert.match(md, /^- worst transactional arrival second: max 60\.\d s, p99 60\.\d s over \d+ messages?, in the second ending \d+ s after the start$/m);
    assert.match(md, /^- top deferrals and refusals at the sink:\n {2}- \d+ × lab rcpt: (452|550) /m);
    assert.match(md, /## Deferrals and refusals by provider and reply[\s\S]*\| lab \| rcpt \| 550 5\.1\.1 <\{recipient\}>: User unknown \| \d+ \|/);

    const html = renderHtml(report);
    assert.match(html, /<svg id="chart-arrival"/);
    for (const series of ['transactional p99', 'transactional max', 'bulk max']) assert.match(html, new RegExp(`data-series="${series}" data-points="[1-9]`));
    assert.match(html, /<td>lab<\/td><td>rcpt<\/td><td>452 4\.2\.2 &lt;\{recipient\}&gt;: Mailbox full<\/td><td>\d+<\/td>/);
    assert.match(html, /worst transactional arrival second: max 60\.\d s/);
  } finally {
    await sink.close();
  }
});

test('run window: buckets before the start are left out, and in the second holding it, lanes that already had arrivals', () => {
  const lane = (max: number) => ({ count: 1, p50: max, p99: max, max });
  const before = {
    received: 0, duplicates: 0, bytes: 0, replies: {}, byLane: {},
    arrivalTimeline: { bucketMs: 1000, now: 10_500, buckets: [{ start: 9000, lanes: { bulk: lane(1) } }, { start: 10_000, lanes: { bulk: lane(2) } }] },
  } as SinkStats;
  const timeline = new RunArrivalTimeline(before);
  assert.equal(timeline.since(), 10_500);
  timeline.add({ ...before, arrivalTimeline: { bucketMs: 1000, now: 11_200, buckets: [
    { start: 9000, lanes: { bulk: lane(1) } },
    { start: 10_000, lanes: { bulk: lane(30_000), member: lane(40) } },
    { start: 11_000, lanes: { bulk: lane(50), transactional: lane(60) } },
  ] } });
  // A later poll's copy of a second replaces the earlier one (it was still in progress).
  timeline.add({ ...before, arrivalTimeline: { bucketMs: 1000, now: 11_900, buckets: [{ start: 11_000, lanes: { bulk: lane(70), transactional: lane(60) } }] } });
  assert.equal(timeline.since(), 11_000);
  assert.deepEqual(timeline.points(), [
    { t: 0.5, lanes: { member: lane(40) } },
    { t: 1.5, lanes: { transactional: lane(60), bulk: lane(70) } },
  ]);
  assert.deepEqual(new RunArrivalTimeline({ ...before, arrivalTimeline: undefined }).points(), [], 'a sink without a timeline');
});

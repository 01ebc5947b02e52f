// One load run: plan → engine → (optional) wait for arrival at the sink → report. The progress
// callback gets a snapshot every second; the caller decides how to show it (ink, lines, JSON).
import { randomBytes } from 'node:crypto';
import { LANES, type Lane, type Scenario } from './scenario/types.ts';
import { Plan } from './generate/plan.ts';
import { Recipients } from './generate/recipients.ts';
import { Random } from './generate/random.ts';
import { MessageFactory } from './generate/message.ts';
import { Metrics } from './measure/metrics.ts';
import { SmtpEngine } from './engine/smtp-engine.ts';
import { fetchSinkStats, resetSink, RunArrivalTimeline, waitForArrival, type Arrival } from './sink-client.ts';
import { buildReport } from './report/build.ts';
import type { Report } from './report/model.ts';

export interface Target { kind: 'smtp' | 'http'; host: string; port: number; url: string; token?: string }

export interface RunOptions {
  scenario: Scenario;
  target: Target;
  sink?: string;
  sinkReset?: boolean;
  seed: number;
  onProgress?: (p: Progress) => void;
  /** Aborts sending (SIGINT): in-flight transactions complete, the report is still written. */
  signal?: AbortSignal;
  /** With a sink: the drain's quiet period (default DRAIN_QUIET_MS in sink-client.ts); tests shorten it. */
  drainQuietMs?: number;
}

export interface Progress {
  stage: 'sending' | 'draining' | 'done';
  elapsed: number;
  accepted: number;
  failed: number;
  expected: number;
  inFlight: number;
  /** Accepted in the last second. */
  rate: number;
  etaSeconds: number | null;
  lanes: Partial<Record<Lane, { p50: number; p99: number }>>;
  arrived?: number;
}

export interface Engine { run(): Promise<void>; stop(): void; inFlight: number }

/** While sending, the sink's arrival timeline is collected this often: well inside its ring of 900 s. */
const TIMELINE_POLL_SECONDS = 60;

export async function runLoad(o: RunOptions): Promise<Report> {
  const s = o.scenario;
  const runId = randomBytes(4).toString('hex');
  const plan = new Plan(s, o.seed);
  const recipients = new Recipients(s.recipients, new Random(o.seed * 7919 + 1));
  const factory = new MessageFactory();
  const metrics = new Metrics();
  if (o.sink && o.sinkReset) await resetSink(o.sink);
  const before = o.sink ? await fetchSinkStats(o.sink) : undefined;
  const arrivalTimeline = before && new RunArrivalTimeline(before);
  // During a long run the sink's timeline is read now and then, so that no second of it leaves the
  // sink's ring unread. A failed read is skipped: the drain's polls report a sink that is down, and
  // the next read picks up from the same point.
  let timelineRead: Promise<void> | undefined;
  const readTimeline = () => {
    if (!o.sink || !arrivalTimeline || timelineRead) return;
    timelineRead = fetchSinkStats(o.sink, arrivalTimeline.since()).then((stats) => arrivalTimeline.add(stats), () => {})
      .finally(() => (timelineRead = undefined));
  };

  const startedAt = new Date();
  const epoch = Date.now();
  const t0 = performance.now();
  const now = () => performance.now() - t0;
  let engine: Engine;
  if (o.target.kind === 'smtp') {
    engine = new SmtpEngine({ host: o.target.host, port: o.target.port, runId, plan, recipients, factory, metrics, now, epoch });
  } else {
    const { HttpEngine } = await import('./engine/http-engine.ts');
    engine = new HttpEngine({ url: o.target.url, token: o.target.token, runId, plan, recipients, factory, metrics, now, epoch });
  }
  o.signal?.addEventListener('abort', () => engine.stop(), { once: true });

  let rssMax = process.memoryUsage.rss();
  const progress = (stage: Progress['stage'], arrived?: number): Progress => {
    const elapsed = now() / 1000;
    const last = metrics.timeline.at(-1);
    const done = metrics.accepted + metrics.failed;
    // Once sending is over the plan's estimate is moot: what was attempted is the total.
    const expected = stage === 'sending' ? Math.max(plan.expectedTotal(now()), done) : done;
    const rate = stage === 'sending' && last ? Math.round(last.sent / Math.max(last.span, 0.001)) : 0;
    const lanes: Progress['lanes'] = {};
    for (const lane of LANES) if (last?.lanes[lane]) lanes[lane] = { p50: last.lanes[lane]!.p50, p99: last.lanes[lane]!.p99 };
    return {
      stage, elapsed, accepted: metrics.accepted, failed: metrics.failed, expected, inFlight: engine.inFlight, rate,
      etaSeconds: stage === 'sending' && rate > 0 && expected > done ? (expected - done) / rate : null, lanes, arrived,
    };
  };
  const ticker = setInterval(() => {
    // Buckets end at the real elapsed time: a late timer makes a longer bucket, not a wrong rate.
    const point = metrics.tick(now() / 1000);
    // Memory per second in the timeline: a flat line is the proof that volume costs no memory.
    const mem = process.memoryUsage();
    point.rssMB = Math.round(mem.rss / 1048576);
    point.heapMB = Math.round(mem.heapUsed / 1048576);
    rssMax = Math.max(rssMax, mem.rss);
    o.onProgress?.(progress('sending'));
    if (metrics.timeline.length % TIMELINE_POLL_SECONDS === 0) readTimeline();
  }, 1000);
  try {
    await engine.run();
  } finally {
    clearInterval(ticker);
  }
  const sendMs = now();
  // The last partial second still belongs in the timeline.
  if (sendMs / 1000 > (metrics.timeline.at(-1)?.t ?? 0) + 0.001) metrics.tick(sendMs / 1000);
  rssMax = Math.max(rssMax, process.memoryUsage.rss());

  let arrival: Arrival | undefined;
  if (o.sink && before) {
    // A read still on its way would otherwise land after the drain's fresher copies.
    await timelineRead;
    let shown = 0;
    arrival = await waitForArrival(o.sink, before, metrics.accepted, s.drainTimeout, arrivalTimeline!, {
      quietMs: o.drainQuietMs,
      onPoll: (a) => {
        if (a.drainMs - shown < 1000) return;
        shown = a.drainMs;
        o.onProgress?.(progress('draining', a.arrived));
      },
    });
  }
  const report = buildReport({
    scenario: s, target: o.target, sink: o.sink, seed: o.seed, runId, plan, metrics, sendMs, startedAt, arrival,
    templateBytes: factory.templateBytes, rssMax,
  });
  report.interrupted = o.signal?.aborted ?? false;
  o.onProgress?.(progress('done', arrival?.arrived));
  return report;
}


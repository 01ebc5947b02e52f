// Reads the mailops sink's /api/v1/stats and waits, after sending, until every injected message
// has arrived or been refused for good, or the rest is deferred at the sink (held by the relay
// after a 4xx) and nothing has moved for a quiet period, or the drain timeout passes. Counts are
// taken as deltas from a snapshot before the run, so a long-running sink can serve several runs;
// the sink's arrival timeline is collected bucket by bucket and cut to the run's window the same
// way. Talks to the sink over HTTP only (the sink types are imported for their shape, nothing
// runs from there).
import { LANES, type Lane } from './scenario/types.ts';
import type { ArrivalBucket, ArrivalTimelineSnapshot, BucketLane } from '../sink/arrival-timeline.ts';
import type { RefusalCount } from '../sink/refusals.ts';

export interface SinkStats {
  received: number;
  duplicates: number;
  bytes: number;
  byDomain?: Record<string, number>;
  byProfile?: Record<string, number>;
  replies: Record<string, number>;
  repliesByPhase?: Record<string, Record<string, number>>;
  byLane: Record<string, { count: number; latencyMs: { p50: number; p90: number; p99: number; max: number } }>;
  /** Absent from sinks older than the timeline. */
  arrivalTimeline?: ArrivalTimelineSnapshot;
  refusals?: RefusalCount[];
  /** Recipients the sink is deferring right now (latest answer a 4xx); absent from older sinks. */
  deferredNow?: number;
}

/** One second of arrivals at the sink during the run. */
export interface ArrivalPoint {
  /** Seconds since the run's start at the end of the sink's bucket. */
  t: number;
  lanes: Partial<Record<Lane, BucketLane>>;
}

export interface Arrival {
  /** Tagged messages (with X-Mailops-Load) that arrived during this run. */
  arrived: number;
  /** Permanent refusals (5xx at MAIL, RCPT or end of data) the sink gave during this run. */
  refused: number;
  /**
   * Messages neither arrived nor refused whose recipient the sink is deferring at the last poll
   * (its `deferredNow`, at most the shortfall): held by the relay after a 4xx, not lost.
   */
  deferred: number;
  duplicates: number;
  byLane: SinkStats['byLane'];
  byProfile: Record<string, number>;
  replies: Record<string, number>;
  /** The sink's 4xx/5xx during this run by profile, phase and reply, most frequent first. */
  refusals: RefusalCount[];
  /** Arrival latency per lane per second of the run; [] from a sink without a timeline. */
  timeline: ArrivalPoint[];
  /** ms from the end of sending until the wait ended (complete, quiet with the rest deferred, or the timeout). */
  drainMs: number;
  /** Every message accounted for: arrived, refused or deferred at the sink. */
  complete: boolean;
}

/**
 * How long the arrived, refused and deferred counts must stand still before a drain whose
 * remaining messages are all deferred at the sink stops waiting. A recipient also counts as
 * deferred for a moment when the sink rate-limits a relay that is still delivering (a 421 at
 * RCPT), so "the rest is deferred" alone could end a drain in the middle of delivery. A relay at
 * work, even one held to a provider's rate, lands a message every second or so; a relay that
 * only retries mailboxes that stay full changes none of the counts (each retry gets the same
 * 4xx). 15 s of standstill tells the two apart with a wide margin, and costs a run little.
 */
export const DRAIN_QUIET_MS = 15_000;

/** How often the drain reads the sink's stats. */
const DRAIN_POLL_MS = 200;

/** `since` (epoch ms, the sink's clock): the arrival timeline from then on instead of its last minute. */
export async function fetchSinkStats(base: string, since?: number): Promise<SinkStats> {
  const url = new URL('/api/v1/stats', base);
  if (since !== undefined) url.searchParams.set('since', String(Math.floor(since)));
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  } catch (err) {
    throw new Error(`--sink ${base}: GET ${url.pathname} failed: ${(err as Error).cause ?? (err as Error).message}`);
  }
  if (!res.ok) throw new Error(`--sink ${base}: GET ${url.pathname} answered ${res.status}`);
  return (await res.json()) as SinkStats;
}

export async function resetSink(base: string): Promise<void> {
  const res = await fetch(new URL('/api/v1/reset', base), { method: 'POST', signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`--sink ${base}: POST /api/v1/reset answered ${res.status}`);
}

const tagged = (s: SinkStats) => Object.values(s.byLane ?? {}).reduce((sum, l) => sum + l.count, 0);

function refusals(s: SinkStats): number {
  // One recipient per generated message, so permanent refusals count messages. The summary
  // `replies` map mixes phases; prefer the per-phase breakdown when the sink gives it.
  const phases = s.repliesByPhase ? [s.repliesByPhase.mail, s.repliesByPhase.rcpt, s.repliesByPhase.dataEnd] : [s.replies];
  let n = 0;
  for (const map of phases) for (const [code, count] of Object.entries(map ?? {})) if (code.startsWith('5')) n += count;
  return n;
}

function delta(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) !== 0) out[k] = v - (before[k] ?? 0);
  return out;
}

const refusalKey = (r: RefusalCount) => `${r.profile}\0${r.phase}\0${r.code}\0${r.enhanced}\0${r.text}`;

function refusalDelta(after: RefusalCount[], before: RefusalCount[]): RefusalCount[] {
  const earlier = new Map(before.map((r) => [refusalKey(r), r.count]));
  return after.map((r) => ({ ...r, count: r.count - (earlier.get(refusalKey(r)) ?? 0) })).filter((r) => r.count > 0).sort((a, b) => b.count - a.count);
}

/**
 * The sink's arrival timeline during one run. The sink keeps a ring of one-second buckets by
 * arrival time; this merges what each poll returns (a later poll's bucket replaces an earlier
 * copy: the second may have been in progress) and keeps only buckets that end after the run's
 * start, measured on the sink's clock. In the bucket holding the start, a lane that already had
 * arrivals before it is left out: its percentiles would mix in the previous run's mail.
 */
export class RunArrivalTimeline {
  /** The sink's clock at the snapshot before the run; undefined: the sink keeps no timeline. */
  private readonly start: number | undefined;
  private readonly bucketMs: number;
  private readonly lanesBeforeStart = new Set<string>();
  private readonly buckets = new Map<number, ArrivalBucket>();

  constructor(before: SinkStats) {
    const timeline = before.arrivalTimeline;
    this.start = timeline?.now;
    this.bucketMs = timeline?.bucketMs ?? 1000;
    for (const b of timeline?.buckets ?? []) {
      if (b.start <= timeline!.now && timeline!.now < b.start + this.bucketMs) for (const lane of Object.keys(b.lanes)) this.lanesBeforeStart.add(lane);
    }
  }

  /** Epoch ms (the sink's clock) to ask the next stats from: the latest bucket seen may still have grown. */
  since(): number | undefined {
    if (this.start === undefined) return undefined;
    return Math.max(this.start, ...this.buckets.keys());
  }

  add(stats: SinkStats): void {
    if (this.start === undefined) return;
    for (const b of stats.arrivalTimeline?.buckets ?? []) if (b.start + this.bucketMs > this.start) this.buckets.set(b.start, b);
  }

  points(): ArrivalPoint[] {
    if (this.start === undefined) return [];
    const out: ArrivalPoint[] = [];
    for (const b of [...this.buckets.values()].sort((x, y) => x.start - y.start)) {
      const straddles = b.start <= this.start;
      const lanes: ArrivalPoint['lanes'] = {};
      for (const lane of LANES) if (b.lanes[lane] && !(straddles && this.lanesBeforeStart.has(lane))) lanes[lane] = b.lanes[lane];
      if (Object.keys(lanes).length) out.push({ t: (b.start + this.bucketMs - this.start) / 1000, lanes });
    }
    return out;
  }
}

export interface DrainOptions {
  /** Quiet period before a drain whose rest is all deferred ends; default DRAIN_QUIET_MS (tests shorten it). */
  quietMs?: number;
  onPoll?: (progress: { arrived: number; drainMs: number }) => void;
}

/**
 * Polls until arrived + refused >= expected; or until the rest is deferred at the sink
 * (arrived + refused + deferredNow >= expected) and arrivals, refusals and deferrals have not
 * changed for `quietMs`; or until `timeoutMs` passes. Every poll adds to `timeline`.
 */
export async function waitForArrival(base: string, before: SinkStats, expected: number, timeoutMs: number, timeline: RunArrivalTimeline,
  options: DrainOptions = {}): Promise<Arrival> {
  const quietMs = options.quietMs ?? DRAIN_QUIET_MS;
  const start = Date.now();
  let countsBefore = '';
  let movedAt = start;
  for (;;) {
    const now = await fetchSinkStats(base, timeline.since());
    timeline.add(now);
    const arrived = tagged(now) - tagged(before);
    const refused = refusals(now) - refusals(before);
    const duplicates = now.duplicates - before.duplicates;
    // deferredNow is the sink's current set, not a delta: recipients it defers are deferred whatever
    // run their mail came from, and an earlier run's are gone after a reset (--sink-reset).
    const deferredNow = now.deferredNow ?? 0;
    const polledAt = Date.now();
    const drainMs = polledAt - start;
    const settled = arrived - duplicates + refused;
    // Any change, a new deferral included, means the relay is still at work: the quiet period restarts.
    const countsNow = `${arrived} ${refused} ${deferredNow}`;
    if (countsNow !== countsBefore) {
      countsBefore = countsNow;
      movedAt = polledAt;
    }
    const complete = settled >= expected;
    const restDeferred = settled + deferredNow >= expected;
    options.onPoll?.({ arrived, drainMs });
    if (!complete && !(restDeferred && polledAt - movedAt >= quietMs) && drainMs < timeoutMs) {
      await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
      continue;
    }
    const deferred = Math.max(0, Math.min(deferredNow, expected - settled));
    const byLane: SinkStats['byLane'] = {};
    for (const [lane, l] of Object.entries(now.byLane ?? {})) {
      const count = l.count - (before.byLane?.[lane]?.count ?? 0);
      if (count > 0) byLane[lane] = { count, latencyMs: l.latencyMs };
    }
    return {
      arrived, refused, deferred, duplicates, drainMs, complete: settled + deferred >= expected, byLane,
      byProfile: delta(now.byProfile ?? {}, before.byProfile ?? {}),
      replies: delta(now.replies ?? {}, before.replies ?? {}),
      refusals: refusalDelta(now.refusals ?? [], before.refusals ?? []),
      timeline: timeline.points(),
    };
  }
}

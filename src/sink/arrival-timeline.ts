// Arrival latency per lane over time, for the sink's stats: one bucket per second of arrival time,
// kept in a ring of the last 900 seconds that had arrivals. Only the second in progress holds a
// histogram per lane; once that second is over each lane is reduced to count, p50, p99 and max, so
// a past bucket costs a few numbers and memory stays flat however long the sink runs. Pure
// bookkeeping: it touches nothing outside itself (Stats feeds it, the HTTP API reads it).
import * as hdr from 'hdr-histogram-js';

/** Longest latency recorded; larger ones (a week-old stamp) count as this. */
export const MAX_LATENCY_MS = 7 * 86_400_000;
export const BUCKET_MS = 1000;
/** 900 buckets of a second: a quarter of an hour of arrivals between two polls of a load run. */
export const BUCKET_CAPACITY = 900;

/** A latency histogram in ms, 3 significant digits: the run-long lane histograms and the per-second ones. */
export function latencyHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: MAX_LATENCY_MS, numberOfSignificantValueDigits: 3 });
}

/**
 * A percentile no larger than the largest value recorded: above 2 s the histogram answers with the
 * top of the value's sub-bucket (60 031 for a single 60 000), which would put p99 above max.
 */
export function percentile(h: hdr.Histogram, q: number): number {
  return Math.min(h.getValueAtPercentile(q), h.maxValue);
}

/** One lane in one bucket: how many timed arrivals, and their latency in ms. */
export interface BucketLane { count: number; p50: number; p99: number; max: number }

/** Arrivals in [start, start + bucketMs), start in epoch ms; only lanes with arrivals are listed. */
export interface ArrivalBucket { start: number; lanes: Record<string, BucketLane> }

export interface ArrivalTimelineSnapshot {
  bucketMs: number;
  /** The sink's clock when the snapshot was taken (epoch ms): lets a client place buckets without trusting its own clock. */
  now: number;
  /** Oldest first; seconds without arrivals have no bucket. */
  buckets: ArrivalBucket[];
}

export class ArrivalTimeline {
  private readonly capacity: number;
  private readonly past: ArrivalBucket[] = [];
  /** Start of the second in progress; -1 before the first arrival. */
  private currentStart = -1;
  /** One histogram per lane, reset (not reallocated) when a second ends. */
  private readonly current = new Map<string, hdr.Histogram>();

  /** `capacity` counts the second in progress too (at least 2). */
  constructor(capacity = BUCKET_CAPACITY) {
    this.capacity = Math.max(2, capacity);
  }

  /** `lane` is already capped by the caller (Stats decides which lanes have a name of their own). */
  record(lane: string, arrived: number, latencyMs: number): void {
    const start = arrived - (arrived % BUCKET_MS);
    // An arrival whose time falls before the second in progress (the clock stepped back) counts in it.
    if (start > this.currentStart) {
      this.closeCurrent();
      this.currentStart = start;
    }
    let h = this.current.get(lane);
    if (!h) {
      h = latencyHistogram();
      this.current.set(lane, h);
    }
    h.recordValue(Math.min(MAX_LATENCY_MS, Math.round(latencyMs)));
  }

  snapshot(now: number): ArrivalTimelineSnapshot {
    const inProgress = this.summarise();
    return { bucketMs: BUCKET_MS, now, buckets: inProgress ? [...this.past, inProgress] : [...this.past] };
  }

  reset(): void {
    this.past.length = 0;
    this.current.clear();
    this.currentStart = -1;
  }

  private summarise(): ArrivalBucket | undefined {
    let lanes: Record<string, BucketLane> | undefined;
    for (const [lane, h] of this.current) {
      if (h.totalCount === 0) continue;
      lanes ??= {};
      lanes[lane] = { count: h.totalCount, p50: percentile(h, 50), p99: percentile(h, 99), max: h.maxValue };
    }
    return lanes && { start: this.currentStart, lanes };
  }

  private closeCurrent(): void {
    const bucket = this.summarise();
    if (!bucket) return;
    // The second about to start takes the last place in the ring.
    if (this.past.length >= this.capacity - 1) this.past.shift();
    this.past.push(bucket);
    for (const h of this.current.values()) h.reset();
  }
}

/** The buckets that end after `from` (epoch ms): the one holding `from` and every later one. */
export function bucketsSince(timeline: ArrivalTimelineSnapshot, from: number): ArrivalTimelineSnapshot {
  return { ...timeline, buckets: timeline.buckets.filter((b) => b.start + timeline.bucketMs > from) };
}

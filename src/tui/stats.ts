// Arithmetic on readings: rates from counter deltas, latency quantiles from histogram bucket
// deltas, and sums over nodes. Everything here sums across nodes before quantiles are taken, so
// the aggregate p99 is the p99 of all deliveries, not an average of p99s.
// May touch: nothing; pure functions of readings.
import { OUTCOMES, type Counters, type CumulativeHistogram, type LaneQueue, type LaneRow, type Quantiles, type Reading } from './types.ts';

/** A lane's numbers on one node (or summed over nodes), before quantiles. */
export interface LaneTotals {
  queue: LaneQueue;
  totals?: Counters;
  rates?: Counters;
  window?: CumulativeHistogram;
  all?: CumulativeHistogram;
}

/** Counters a node has in any case; the newer ones are added only when the node reports them. */
export const zeroCounters = (): Counters => ({ received: 0, delivered: 0, deferred: 0, failed: 0, expired: 0 });

/** Upper bound (seconds) of the bucket holding quantile q; good to one bucket, like the relay's own estimate. */
export function quantile(h: CumulativeHistogram, q: number): number | undefined {
  const count = h.counts.at(-1) ?? 0;
  if (count <= 0) return undefined;
  const rank = Math.max(1, Math.ceil(q * count));
  const i = h.counts.findIndex((c) => c >= rank);
  return i < 0 ? undefined : h.le[i];
}

export function quantiles(h: CumulativeHistogram | undefined): Quantiles | undefined {
  const count = h?.counts.at(-1) ?? 0;
  if (!h || count <= 0) return undefined;
  return { p50: quantile(h, 0.5)!, p99: quantile(h, 0.99)!, count };
}

/** Bucket-wise cur - old by upper bound; undefined if a count went down (the node restarted). */
export function histogramDelta(cur: CumulativeHistogram, old: CumulativeHistogram | undefined): CumulativeHistogram | undefined {
  if (!old) return cur;
  const before = new Map(old.le.map((le, i) => [le, old.counts[i]]));
  const counts = cur.counts.map((c, i) => c - (before.get(cur.le[i]) ?? 0));
  return counts.some((c) => c < 0) ? undefined : { le: cur.le, counts };
}

export function histogramSum(a: CumulativeHistogram | undefined, b: CumulativeHistogram | undefined): CumulativeHistogram | undefined {
  if (!a || !b) return a ?? b;
  const les = [...new Set([...a.le, ...b.le])].sort((x, y) => x - y);
  // a cumulative count at a bound the other histogram lacks is its count at the next lower bound
  const at = (h: CumulativeHistogram, le: number) => {
    let value = 0;
    for (let i = 0; i < h.le.length && h.le[i] <= le; i++) value = h.counts[i];
    return value;
  };
  return { le: les, counts: les.map((le) => at(a, le) + at(b, le)) };
}

/** The oldest reading no older than `windowMs` before `cur`, other than cur itself. */
export function baseline(readings: Reading[], cur: Reading, windowMs: number): Reading | undefined {
  return readings.find((r) => r !== cur && r.at < cur.at && cur.at - r.at <= windowMs + 250);
}

/** One node's lanes from its latest reading and the readings before it. */
export function nodeLanes(readings: Reading[], rateWindowMs: number, latencyWindowMs: number): Map<string, LaneTotals> {
  const out = new Map<string, LaneTotals>();
  const cur = readings.at(-1);
  if (!cur) return out;
  const rateBase = baseline(readings, cur, rateWindowMs);
  const latencyBase = baseline(readings, cur, latencyWindowMs);
  const names = new Set([...cur.lanes, ...Object.keys(cur.queue?.lanes ?? {}), ...Object.keys(cur.counters ?? {})]);
  for (const lane of names) {
    const totals = cur.counters?.[lane];
    const entry: LaneTotals = { queue: cur.queue?.lanes[lane] ?? { queued: 0, deferred: 0, active: 0, oldestAgeSeconds: 0 }, totals };
    const before = rateBase?.counters?.[lane];
    if (totals && before && rateBase) {
      const seconds = (cur.at - rateBase.at) / 1000;
      const rates = zeroCounters();
      for (const o of OUTCOMES) {
        const now = totals[o];
        const then = before[o];
        if (now !== undefined && then !== undefined) rates[o] = Math.max(0, now - then) / seconds;
      }
      entry.rates = rates;
    }
    const latency = cur.latency?.[lane];
    if (latency) {
      entry.all = latency;
      if (latencyBase?.latency) entry.window = histogramDelta(latency, latencyBase.latency[lane]);
    }
    out.set(lane, entry);
  }
  return out;
}

export function sumLanes(into: Map<string, LaneTotals>, add: Map<string, LaneTotals>): void {
  for (const [lane, b] of add) {
    const a = into.get(lane);
    if (!a) {
      into.set(lane, { ...b, queue: { ...b.queue } });
      continue;
    }
    a.queue = {
      queued: a.queue.queued + b.queue.queued, deferred: a.queue.deferred + b.queue.deferred, active: a.queue.active + b.queue.active,
      oldestAgeSeconds: Math.max(a.queue.oldestAgeSeconds, b.queue.oldestAgeSeconds),
    };
    a.totals = sumCounters(a.totals, b.totals);
    a.rates = sumCounters(a.rates, b.rates);
    a.window = histogramSum(a.window, b.window);
    a.all = histogramSum(a.all, b.all);
  }
}

function sumCounters(a: Counters | undefined, b: Counters | undefined): Counters | undefined {
  if (!a || !b) return a ?? b;
  const out = zeroCounters();
  // a node without a newer counter adds nothing to it (it does not have that outcome at all)
  for (const o of OUTCOMES) if (a[o] !== undefined || b[o] !== undefined) out[o] = (a[o] ?? 0) + (b[o] ?? 0);
  return out;
}

export function laneRow(lane: string, t: LaneTotals): LaneRow {
  return {
    lane, ...t.queue, depth: t.queue.queued + t.queue.deferred + t.queue.active,
    rates: t.rates, totals: t.totals, latency: quantiles(t.window), latencySinceStart: quantiles(t.all),
  };
}

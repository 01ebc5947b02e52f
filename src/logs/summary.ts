// The delivery-log summary, in the spirit of pflogsumm, and the graphs of the web page: records
// per event and time bucket, per provider, the top deferral and bounce reasons, and delivery
// latency per lane. Each store aggregates in SQL (a day of records never becomes objects here);
// this module turns its four grouped results into one answer, the same for both stores.
// May touch: nothing.
import { FilterError, type LogFilter } from './filter.ts';
import { OUTCOMES } from './record.ts';

/** What each store's SQL returns (see local-store.ts and postgres-store.ts). */
export interface SummaryGroups {
  byBucket: { bucket: number; event: string; n: number }[];
  byProvider: { provider: string | null; event: string; n: number }[];
  reasons: { event: string; class: string | null; code: string | null; n: number; example: string | null }[];
  latency: { bucket: number; lane: string | null; n: number; total: number; max: number }[];
}

export interface Reason { class: string; code: string; count: number; example: string }

export interface LogSummary {
  store: string;
  since: string;
  until: string;
  bucketMs: number;
  totals: Record<string, number>;
  /** Bucket start times (ms) and records per event in each. */
  series: { times: number[]; events: Record<string, number[]> };
  providers: { provider: string; total: number; events: Record<string, number> }[];
  /** Deferrals, and permanent failures (failed, expired), by class and code, most first. */
  reasons: { deferred: Reason[]; bounced: Reason[] };
  /** Receipt to delivery (ms) of delivered records per lane: overall, and the average per bucket. */
  latency: { lanes: Record<string, { delivered: number; avgMs: number; maxMs: number }>; series: Record<string, (number | null)[]> };
}

export const SUMMARY_DEFAULT_SPAN = 86_400_000;
const MAX_BUCKETS = 1500;
const TOP_PROVIDERS = 20;
const TOP_REASONS = 10;

/** The summary's time range and bucket: `since` defaults to a day before `until` (default now). */
export function summaryRange(filter: LogFilter, bucketMs: number, now: number): { since: number; until: number; bucketMs: number } {
  const until = filter.until ?? now;
  const since = filter.since ?? until - SUMMARY_DEFAULT_SPAN;
  if (!(bucketMs >= 1000)) throw new FilterError('bucket', `expected a duration of at least 1s such as 1m or 1h, got ${bucketMs}ms`);
  if ((until - since) / bucketMs > MAX_BUCKETS) {
    throw new FilterError('bucket', `${bucketMs / 1000}s buckets from ${new Date(since).toISOString()} to ${new Date(until).toISOString()} are more than ${MAX_BUCKETS}; take a larger bucket or a shorter range`);
  }
  return { since, until, bucketMs };
}

export function assembleSummary(store: string, range: { since: number; until: number; bucketMs: number }, groups: SummaryGroups): LogSummary {
  const { since, until, bucketMs } = range;
  const first = Math.floor(since / bucketMs) * bucketMs;
  const times: number[] = [];
  for (let t = first; t < until; t += bucketMs) times.push(t);
  const index = (bucket: number) => Math.floor((Number(bucket) - first) / bucketMs);
  const totals: Record<string, number> = Object.fromEntries(OUTCOMES.map((e) => [e, 0]));
  const events: Record<string, number[]> = Object.fromEntries(OUTCOMES.map((e) => [e, new Array(times.length).fill(0)]));
  for (const g of groups.byBucket) {
    const n = Number(g.n);
    totals[g.event] = (totals[g.event] ?? 0) + n;
    const i = index(g.bucket);
    if (i >= 0 && i < times.length) (events[g.event] ??= new Array(times.length).fill(0))[i] += n;
  }
  const providers = new Map<string, { provider: string; total: number; events: Record<string, number> }>();
  for (const g of groups.byProvider) {
    if (g.event === 'received') continue; // a provider is where mail went
    const name = g.provider ?? '(none)';
    let p = providers.get(name);
    if (!p) providers.set(name, (p = { provider: name, total: 0, events: {} }));
    p.total += Number(g.n);
    p.events[g.event] = (p.events[g.event] ?? 0) + Number(g.n);
  }
  const reasons = { deferred: [] as Reason[], bounced: [] as Reason[] };
  const merged = new Map<string, Reason>();
  for (const g of groups.reasons) {
    const kind = g.event === 'deferred' ? 'deferred' : 'bounced';
    const key = `${kind}\t${g.class}\t${g.code}`;
    let r = merged.get(key);
    if (!r) {
      merged.set(key, (r = { class: g.class ?? 'other', code: g.code ?? '', count: 0, example: g.example ?? '' }));
      reasons[kind].push(r);
    }
    r.count += Number(g.n);
  }
  for (const list of Object.values(reasons)) list.sort((a, b) => b.count - a.count).splice(TOP_REASONS);
  const lanes: LogSummary['latency']['lanes'] = {};
  const series: LogSummary['latency']['series'] = {};
  const sums: Record<string, number> = {};
  for (const g of groups.latency) {
    const lane = g.lane ?? '(none)';
    const n = Number(g.n);
    const l = (lanes[lane] ??= { delivered: 0, avgMs: 0, maxMs: 0 });
    l.delivered += n;
    sums[lane] = (sums[lane] ?? 0) + Number(g.total);
    l.maxMs = Math.max(l.maxMs, Number(g.max));
    const i = index(g.bucket);
    if (i >= 0 && i < times.length) (series[lane] ??= new Array(times.length).fill(null))[i] = n ? Math.round(Number(g.total) / n) : null;
  }
  for (const [lane, l] of Object.entries(lanes)) l.avgMs = l.delivered ? Math.round(sums[lane] / l.delivered) : 0;
  return {
    store, since: new Date(since).toISOString(), until: new Date(until).toISOString(), bucketMs, totals,
    series: { times, events },
    providers: [...providers.values()].sort((a, b) => b.total - a.total).slice(0, TOP_PROVIDERS),
    reasons,
    latency: { lanes, series },
  };
}

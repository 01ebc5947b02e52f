// What the sink counts. Counters and fixed-size histograms only, so memory stays flat however many
// messages arrive: label sets (domains, lanes, refusal replies) are capped, overflow goes to one
// "(other)" entry; arrival latency over time is a bounded ring of one-second buckets; the
// recipients deferred right now are a capped set. Sessions and the DKIM sampler call it; it
// touches nothing else.
import type * as hdr from 'hdr-histogram-js';
import { ArrivalTimeline, MAX_LATENCY_MS, latencyHistogram, percentile, type ArrivalTimelineSnapshot } from './arrival-timeline.ts';
import { SeqTracker } from './dedupe.ts';
import { DeferredRecipients } from './deferred.ts';
import type { LoadTag } from './load-header.ts';
import { refusalCounts, refusalKey, type RefusalCount, type RefusalSource } from './refusals.ts';

export const REPLY_PHASES = ['connect', 'mail', 'rcpt', 'dataEnd'] as const;
export type ReplyPhase = (typeof REPLY_PHASES)[number];
export const DKIM_RESULTS = ['pass', 'fail', 'neutral', 'none', 'policy', 'temperror', 'permerror'] as const;
export type DkimResult = (typeof DKIM_RESULTS)[number];

const OTHER = '(other)';

interface Lane { count: number; sumMs: number; timed: number; hist: hdr.Histogram }

export interface StatsSnapshot {
  received: number;
  duplicates: number;
  bytes: number;
  byDomain: Record<string, number>;
  byProfile: Record<string, number>;
  replies: Record<string, number>;
  repliesByPhase: Record<ReplyPhase, Record<string, number>>;
  byLane: Record<string, { count: number; latencyMs: { p50: number; p90: number; p99: number; max: number } }>;
  /** Arrival latency per lane per second of arrival (the last 900 seconds that had arrivals). */
  arrivalTimeline: ArrivalTimelineSnapshot;
  /** Every 4xx/5xx counted in `replies`, by profile, phase and normalised reply; most frequent first. */
  refusals: RefusalCount[];
  connections: { total: number; open: number };
  /** Recipients whose latest answer was a 4xx at RCPT or end of data: their mail is held by the sender. */
  deferredNow: number;
  /** 4xx answers to recipients left out of `deferredNow` because its set was full. */
  deferredUntracked: number;
  dkim: Record<DkimResult | 'sampled' | 'skipped', number>;
  since: string;
}

function bump(map: Map<string, number>, key: string, by: number, cap: number): void {
  const current = map.get(key);
  if (current !== undefined) map.set(key, current + by);
  else if (map.size < cap) map.set(key, by);
  else map.set(OTHER, (map.get(OTHER) ?? 0) + by);
}

export class Stats {
  received = 0;
  duplicates = 0;
  bytes = 0;
  connections = 0;
  open = 0;
  since = Date.now();
  readonly byDomain = new Map<string, number>();
  readonly byProfile = new Map<string, number>();
  readonly replies: Record<ReplyPhase, Map<number, number>> = { connect: new Map(), mail: new Map(), rcpt: new Map(), dataEnd: new Map() };
  readonly lanes = new Map<string, Lane>();
  readonly arrivalTimeline = new ArrivalTimeline();
  /** Refusal key (see refusals.ts) → count. */
  readonly refusals = new Map<string, number>();
  readonly dkim = Object.fromEntries([...DKIM_RESULTS, 'sampled', 'skipped'].map((k) => [k, 0])) as StatsSnapshot['dkim'];
  readonly seqs = new SeqTracker();
  readonly deferred: DeferredRecipients;
  private readonly maxDomains: number;
  private readonly maxLanes: number;
  private readonly maxRefusals: number;

  constructor(limits: { maxDomains?: number; maxLanes?: number; maxRefusals?: number; maxDeferred?: number } = {}) {
    this.maxDomains = limits.maxDomains ?? 10_000;
    this.maxLanes = limits.maxLanes ?? 64;
    this.maxRefusals = limits.maxRefusals ?? 256;
    this.deferred = new DeferredRecipients(limits.maxDeferred);
  }

  /**
   * A reply at a counted phase. `refusal` (whose reply, its template, the values it was rendered
   * with) labels a 4xx/5xx by provider and reply; without it only the code is known. `recipients`:
   * the addresses the reply decides on (at RCPT the one named, at end of data the message's), so
   * that a 4xx defers them and an acceptance or 5xx settles them.
   */
  reply(phase: ReplyPhase, code: number, refusal?: RefusalSource, recipients?: readonly string[]): void {
    const map = this.replies[phase];
    map.set(code, (map.get(code) ?? 0) + 1);
    if (code >= 400) bump(this.refusals, refusalKey(phase, code, refusal), 1, this.maxRefusals);
    if (recipients) this.deferred.answered(recipients, code);
  }

  /** An accepted message: one count per accepted recipient's domain and profile. */
  message(recipients: { domain: string; profile: string }[], bytes: number, tag: LoadTag | undefined, arrived: number): void {
    this.received++;
    this.bytes += bytes;
    for (const r of recipients) {
      bump(this.byDomain, r.domain, 1, this.maxDomains);
      bump(this.byProfile, r.profile, 1, Infinity);
    }
    if (!tag) return;
    if (this.seqs.seen(tag.run, tag.seq)) this.duplicates++;
    let name = tag.lane;
    let lane = this.lanes.get(name);
    if (!lane) {
      if (this.lanes.size >= this.maxLanes) name = OTHER;
      lane = this.lanes.get(name) ?? this.newLane(name);
    }
    lane.count++;
    if (Number.isFinite(tag.sent)) {
      // A sender whose clock runs ahead would give negative times: count them as 0.
      const ms = Math.min(MAX_LATENCY_MS, Math.max(0, arrived - tag.sent));
      lane.hist.recordValue(Math.round(ms));
      lane.sumMs += ms;
      lane.timed++;
      this.arrivalTimeline.record(name, arrived, ms);
    }
  }

  private newLane(name: string): Lane {
    const lane: Lane = { count: 0, sumMs: 0, timed: 0, hist: latencyHistogram() };
    this.lanes.set(name, lane);
    return lane;
  }

  snapshot(): StatsSnapshot {
    const replies: Record<string, number> = {};
    const repliesByPhase = {} as StatsSnapshot['repliesByPhase'];
    for (const phase of REPLY_PHASES) {
      repliesByPhase[phase] = {};
      for (const [code, n] of [...this.replies[phase]].sort((a, b) => a[0] - b[0])) {
        repliesByPhase[phase][code] = n;
        replies[code] = (replies[code] ?? 0) + n;
      }
    }
    const byLane: StatsSnapshot['byLane'] = {};
    for (const [name, lane] of this.lanes) {
      const h = lane.hist;
      const p = (q: number) => (lane.timed ? percentile(h, q) : 0);
      byLane[name] = { count: lane.count, latencyMs: { p50: p(50), p90: p(90), p99: p(99), max: lane.timed ? h.maxValue : 0 } };
    }
    return {
      received: this.received,
      duplicates: this.duplicates,
      bytes: this.bytes,
      byDomain: Object.fromEntries(this.byDomain),
      byProfile: Object.fromEntries(this.byProfile),
      replies,
      repliesByPhase,
      byLane,
      arrivalTimeline: this.arrivalTimeline.snapshot(Date.now()),
      refusals: refusalCounts(this.refusals),
      connections: { total: this.connections, open: this.open },
      deferredNow: this.deferred.size,
      deferredUntracked: this.deferred.untracked,
      dkim: { ...this.dkim },
      since: new Date(this.since).toISOString(),
    };
  }

  reset(): void {
    this.received = this.duplicates = this.bytes = this.connections = 0;
    this.since = Date.now();
    this.byDomain.clear();
    this.byProfile.clear();
    for (const phase of REPLY_PHASES) this.replies[phase].clear();
    this.lanes.clear();
    this.arrivalTimeline.reset();
    this.refusals.clear();
    for (const key of Object.keys(this.dkim) as (keyof StatsSnapshot['dkim'])[]) this.dkim[key] = 0;
    this.seqs.clear();
    this.deferred.clear();
  }
}

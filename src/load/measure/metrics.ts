// Everything a run measures, in bounded memory: HdrHistograms (µs) per SMTP phase and per lane,
// a per-second timeline (numbers only; the interval histograms are reset every second) and error
// counters keyed by phase, reply code, enhanced code and provider tag.
import * as hdr from 'hdr-histogram-js';
import { LANES, type Lane } from '../scenario/types.ts';

export const PHASES = ['connect', 'banner', 'ehlo', 'mail', 'rcpt', 'data', 'eod'] as const;
export type Phase = (typeof PHASES)[number];
export type LaneOrAll = Lane | 'all';

export function histogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
}

export interface Percentiles { count: number; mean: number; p50: number; p90: number; p95: number; p99: number; p999: number; max: number }

/** Percentiles in ms (the histograms hold µs). */
export function percentiles(h: hdr.Histogram): Percentiles {
  const ms = (us: number) => Math.round(us) / 1000;
  if (h.totalCount === 0) return { count: 0, mean: 0, p50: 0, p90: 0, p95: 0, p99: 0, p999: 0, max: 0 };
  return {
    count: h.totalCount, mean: ms(h.mean), p50: ms(h.getValueAtPercentile(50)), p90: ms(h.getValueAtPercentile(90)),
    p95: ms(h.getValueAtPercentile(95)), p99: ms(h.getValueAtPercentile(99)), p999: ms(h.getValueAtPercentile(99.9)), max: ms(h.maxValue),
  };
}

export interface TimelinePoint {
  /** Seconds since the start at the end of the bucket (ms precision). */
  t: number;
  /** Length of the bucket in seconds (about 1; the last one is shorter). */
  span: number;
  sent: number;
  failed: number;
  lanes: Partial<Record<Lane, { count: number; p50: number; p99: number }>>;
  /** Generator process memory at the end of the bucket (resident set, V8 heap in use). */
  rssMB?: number;
  heapMB?: number;
}

export interface ErrorEntry { phase: string; code: string; enhanced: string; provider: string; lane: string; count: number; sample: string }

export class Metrics {
  readonly phases: Record<Phase, hdr.Histogram>;
  /** Intended send time → 250 after DATA: coordinated-omission corrected (open loop). */
  readonly send: Record<LaneOrAll, hdr.Histogram>;
  /** First command written → 250 after DATA: what the server took, without the generator's queueing. */
  readonly service: Record<LaneOrAll, hdr.Histogram>;
  private readonly interval: Record<Lane, hdr.Histogram>;
  readonly timeline: TimelinePoint[] = [];
  readonly errors = new Map<string, ErrorEntry>();
  accepted = 0;
  failed = 0;
  bytes = 0;
  connections = 0;
  connectErrors = 0;
  readonly acceptedByLane: Record<Lane, number> = { transactional: 0, member: 0, bulk: 0 };
  readonly failedByLane: Record<Lane, number> = { transactional: 0, member: 0, bulk: 0 };
  /** Recipients the generator made unknown on purpose: expected 550 5.1.1 somewhere downstream. */
  unknownRecipients = 0;
  /** Connections that failed before EHLO completed, by reason (refused, 421, 554 at banner...). */
  readonly connectionErrors: Record<string, number> = {};
  private bucketSent = 0;
  private bucketFailed = 0;

  constructor() {
    this.phases = Object.fromEntries(PHASES.map((p) => [p, histogram()])) as Record<Phase, hdr.Histogram>;
    const lanes = [...LANES, 'all'] as LaneOrAll[];
    this.send = Object.fromEntries(lanes.map((l) => [l, histogram()])) as Record<LaneOrAll, hdr.Histogram>;
    this.service = Object.fromEntries(lanes.map((l) => [l, histogram()])) as Record<LaneOrAll, hdr.Histogram>;
    this.interval = Object.fromEntries(LANES.map((l) => [l, histogram()])) as Record<Lane, hdr.Histogram>;
  }

  phase(phase: Phase, us: number): void {
    this.phases[phase].recordValue(Math.max(1, Math.round(us)));
  }

  /** A message accepted with 250 after DATA. Times in µs. */
  ok(lane: Lane, fromIntended: number, fromWrite: number, bytes: number): void {
    const sendUs = Math.max(1, Math.round(fromIntended));
    const serviceUs = Math.max(1, Math.round(fromWrite));
    this.send[lane].recordValue(sendUs);
    this.send.all.recordValue(sendUs);
    this.service[lane].recordValue(serviceUs);
    this.service.all.recordValue(serviceUs);
    this.interval[lane].recordValue(sendUs);
    this.accepted++;
    this.acceptedByLane[lane]++;
    this.bucketSent++;
    this.bytes += bytes;
  }

  /** A message refused or lost. `code` is the SMTP reply code or a socket error code. */
  fail(lane: Lane, phase: string, code: string, enhanced: string, provider: string, text: string): void {
    this.failed++;
    this.failedByLane[lane]++;
    this.bucketFailed++;
    const key = `${phase}|${code}|${enhanced}|${provider}|${lane}`;
    const entry = this.errors.get(key);
    if (entry) entry.count++;
    else this.errors.set(key, { phase, code, enhanced, provider, lane, count: 1, sample: text.slice(0, 200) });
  }

  connectError(reason: string): void {
    this.connectionErrors[reason] = (this.connectionErrors[reason] ?? 0) + 1;
  }

  /** Closes the current bucket at `t` seconds since the start. */
  tick(t: number): TimelinePoint {
    const lanes: TimelinePoint['lanes'] = {};
    for (const lane of LANES) {
      const h = this.interval[lane];
      if (h.totalCount === 0) continue;
      lanes[lane] = { count: h.totalCount, p50: h.getValueAtPercentile(50) / 1000, p99: h.getValueAtPercentile(99) / 1000 };
      h.reset();
    }
    const end = Math.round(t * 1000) / 1000;
    const span = Math.round((end - (this.timeline.at(-1)?.t ?? 0)) * 1000) / 1000;
    const point = { t: end, span, sent: this.bucketSent, failed: this.bucketFailed, lanes };
    this.timeline.push(point);
    this.bucketSent = 0;
    this.bucketFailed = 0;
    return point;
  }

  /** Counts by one dimension of the error key. */
  errorsBy(field: 'code' | 'enhanced' | 'provider' | 'phase' | 'lane'): Record<string, number> {
    const out: Record<string, number> = {};
    for (const e of this.errors.values()) {
      const k = e[field] || '-';
      out[k] = (out[k] ?? 0) + e.count;
    }
    return out;
  }
}

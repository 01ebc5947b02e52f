// The report of one run: every number, as written to report.json and read by the HTML and
// Markdown renderers and by `mailops report compare`.
import type { Lane, Threshold } from '../scenario/types.ts';
import type { ErrorEntry, Percentiles, Phase, TimelinePoint } from '../measure/metrics.ts';
import type { ArrivalPoint } from '../sink-client.ts';
import type { RefusalCount } from '../../sink/refusals.ts';

export interface ThresholdResult extends Threshold {
  actual: number | null;
  /** null: the metric had no data in this run (for example arrival.* without --sink). */
  ok: boolean | null;
}

export interface LaneReport {
  planned: number;
  accepted: number;
  failed: number;
  /** Intended send time → 250 (coordinated-omission corrected), ms. */
  send: Percentiles;
  /** First command written → 250, ms. */
  service: Percentiles;
  arrival?: { count: number; latencyMs: { p50: number; p90: number; p99: number; max: number } };
}

export interface Report {
  version: 1;
  runId: string;
  scenario: { name: string; source: string; description: string };
  target: string;
  engine: 'smtp' | 'http';
  sink: string | null;
  seed: number;
  startedAt: string;
  endedAt: string;
  settings: {
    messages: number; rate: 'max' | { target: number; durationMs: number }[]; connections: number;
    messagesPerConnection: number; pipelining: boolean; bulkSize: { median: number; p95: number };
    transactionalRate: number; memberRate: number; unknownShare: number; durationCapMs: number;
  };
  totals: {
    attempted: number; accepted: number; failed: number; errorRate: number; bytes: number;
    sendSeconds: number; throughput: number; peakThroughput: number; connections: number; unknownRecipients: number;
  };
  lanes: Record<Lane, LaneReport>;
  send: Percentiles;
  phases: Record<Phase, Percentiles>;
  timeline: TimelinePoint[];
  errors: {
    byCode: Record<string, number>; byEnhanced: Record<string, number>; byProvider: Record<string, number>;
    byPhase: Record<string, number>; entries: ErrorEntry[]; connections: Record<string, number>;
  };
  arrival: null | {
    arrived: number; refused: number;
    /** Held by the relay after a 4xx from the sink: the recipient was deferred at the sink when the drain ended. */
    deferred: number;
    duplicates: number;
    /** accepted − (arrived − duplicates) − refused − deferred, at least 0: lost, or not yet presented to the sink. */
    missing: number;
    unexpected: number; drainMs: number; complete: boolean;
    byProfile: Record<string, number>; replies: Record<string, number>;
    /** Arrival latency (ms) per lane per second at the sink, within this run; [] from a sink without a timeline. */
    timeline: ArrivalPoint[];
    /** The sink's deferrals (4xx) and refusals (5xx) during this run by profile, phase and reply; the 50 most frequent. */
    refusals: RefusalCount[];
  };
  thresholds: ThresholdResult[];
  passed: boolean;
  /** Sending was stopped early (Ctrl-C): the totals cover what was sent until then. */
  interrupted: boolean;
  generator: { templateBytes: number; rssMaxMB: number };
}

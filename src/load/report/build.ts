// Turns a finished run's measurements into the Report (report.json) and evaluates thresholds.
import { LANES, type Lane, type Scenario } from '../scenario/types.ts';
import type { Plan } from '../generate/plan.ts';
import { PHASES, percentiles, type Metrics, type Phase, type Percentiles } from '../measure/metrics.ts';
import { evaluate } from '../measure/thresholds.ts';
import type { Arrival } from '../sink-client.ts';
import type { Target } from '../run.ts';
import type { LaneReport, Report } from './model.ts';

/** Distinct replies kept in report.json; the renderers show fewer. */
const MAX_REFUSALS = 50;

export interface BuildInput {
  scenario: Scenario; target: Target; sink?: string; seed: number; runId: string; plan: Plan; metrics: Metrics;
  sendMs: number; startedAt: Date; arrival?: Arrival; templateBytes: number; rssMax: number;
}

export function buildReport(b: BuildInput): Report {
  const { metrics: m, plan } = b;
  const s = b.scenario;
  const attempted = m.accepted + m.failed;
  const lanes = {} as Record<Lane, LaneReport>;
  for (const lane of LANES) {
    lanes[lane] = {
      planned: plan.counts[lane], accepted: m.acceptedByLane[lane], failed: m.failedByLane[lane],
      send: percentiles(m.send[lane]), service: percentiles(m.service[lane]),
      ...(b.arrival?.byLane[lane] ? { arrival: b.arrival.byLane[lane] } : {}),
    };
  }
  const phases = Object.fromEntries(PHASES.map((p) => [p, percentiles(m.phases[p])])) as Record<Phase, Percentiles>;
  const sendSeconds = b.sendMs / 1000;
  const report: Report = {
    version: 1,
    runId: b.runId,
    scenario: { name: s.name, source: s.source, description: s.description },
    target: b.target.url,
    engine: b.target.kind,
    sink: b.sink ?? null,
    seed: b.seed,
    startedAt: b.startedAt.toISOString(),
    endedAt: new Date().toISOString(),
    settings: {
      messages: s.messages,
      rate: s.rate === 'max' ? 'max' : s.rate.map((st) => ({ target: st.target, durationMs: st.duration })),
      connections: s.connections, messagesPerConnection: s.messagesPerConnection, pipelining: s.pipelining,
      bulkSize: s.bulk.size, transactionalRate: s.transactional?.rate ?? 0, memberRate: s.member?.rate ?? 0,
      unknownShare: s.recipients.unknown, durationCapMs: s.duration,
    },
    totals: {
      attempted, accepted: m.accepted, failed: m.failed, errorRate: attempted ? m.failed / attempted : 0, bytes: m.bytes,
      sendSeconds: Math.round(sendSeconds * 1000) / 1000,
      throughput: sendSeconds > 0 ? Math.round((m.accepted / sendSeconds) * 10) / 10 : 0,
      // Buckets of at least half a second only; a run shorter than that reports its average.
      peakThroughput: Math.round(Math.max(0, ...m.timeline.filter((p) => p.span >= 0.5).map((p) => p.sent / p.span)))
        || Math.round(m.accepted / Math.max(sendSeconds, 0.001)),
      connections: m.connections, unknownRecipients: m.unknownRecipients,
    },
    lanes,
    send: percentiles(m.send.all),
    phases,
    timeline: m.timeline,
    errors: {
      byCode: m.errorsBy('code'), byEnhanced: m.errorsBy('enhanced'), byProvider: m.errorsBy('provider'), byPhase: m.errorsBy('phase'),
      entries: [...m.errors.values()].sort((x, y) => y.count - x.count).slice(0, 100), connections: { ...m.connectionErrors },
    },
    arrival: b.arrival ? {
      arrived: b.arrival.arrived, refused: b.arrival.refused, deferred: b.arrival.deferred, duplicates: b.arrival.duplicates,
      // Deferred mail is held by the relay, as it should be: missing is what was lost or never presented.
      missing: Math.max(0, m.accepted - (b.arrival.arrived - b.arrival.duplicates) - b.arrival.refused - b.arrival.deferred),
      // More arrivals than injections: another run's mail was still draining into the same sink.
      unexpected: Math.max(0, b.arrival.arrived - b.arrival.duplicates + b.arrival.refused - m.accepted),
      drainMs: b.arrival.drainMs, complete: b.arrival.complete, byProfile: b.arrival.byProfile, replies: b.arrival.replies,
      timeline: b.arrival.timeline, refusals: b.arrival.refusals.slice(0, MAX_REFUSALS),
    } : null,
    thresholds: [],
    passed: true,
    interrupted: false,
    generator: { templateBytes: b.templateBytes, rssMaxMB: Math.round(b.rssMax / 1048576) },
  };
  report.thresholds = evaluate(report, s.thresholds);
  report.passed = report.thresholds.every((t) => t.ok !== false);
  return report;
}

// Evaluates threshold expressions against a finished report. A metric without data (arrival.*
// when no sink was given) is reported as not evaluated rather than passed or failed.
import type { Report, ThresholdResult } from '../report/model.ts';
import type { Threshold } from '../scenario/types.ts';

export function metricValue(r: Report, metric: string): number | null {
  const [head, a, b] = metric.split('.');
  switch (head) {
    case 'error_rate': return r.totals.errorRate;
    case 'throughput': return r.totals.throughput;
    case 'errors': return r.totals.failed;
    case 'sent': return r.totals.accepted;
    case 'missing': return r.arrival ? r.arrival.missing : null;
    case 'send': {
      const p = a === 'all' ? r.send : r.lanes[a as keyof Report['lanes']]?.send;
      return p && p.count > 0 ? (p as unknown as Record<string, number>)[b] : null;
    }
    case 'phase': {
      const p = r.phases[a as keyof Report['phases']];
      return p && p.count > 0 ? (p as unknown as Record<string, number>)[b] : null;
    }
    case 'arrival': {
      if (!r.arrival) return null;
      const lanes = a === 'all' ? Object.values(r.lanes) : [r.lanes[a as keyof Report['lanes']]];
      const values = lanes.filter((l) => l?.arrival && l.arrival.count > 0).map((l) => (l.arrival!.latencyMs as Record<string, number>)[b]);
      return values.length ? Math.max(...values) : null;
    }
  }
  return null;
}

function compare(actual: number, op: Threshold['op'], value: number): boolean {
  switch (op) {
    case '<': return actual < value;
    case '<=': return actual <= value;
    case '>': return actual > value;
    case '>=': return actual >= value;
    case '==': return actual === value;
  }
}

export function evaluate(r: Report, thresholds: Threshold[]): ThresholdResult[] {
  return thresholds.map((t) => {
    const actual = metricValue(r, t.metric);
    return { ...t, actual, ok: actual === null ? null : compare(actual, t.op, t.value) };
  });
}

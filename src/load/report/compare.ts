// `mailops report compare A B`: the numbers that matter side by side with their deltas.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../../config/errors.ts';
import { LANES } from '../scenario/types.ts';
import { PHASES } from '../measure/metrics.ts';
import type { Report } from './model.ts';

export interface CompareRow { metric: string; unit: string; a: number | null; b: number | null; delta: number | null; deltaPct: number | null; better: 'lower' | 'higher' }

export function readReport(path: string): Report {
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, 'report.json') : path;
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`${file}: cannot read a load report: ${(err as Error).message}`);
  }
  if (!data || typeof data !== 'object' || (data as Report).version !== 1 || !(data as Report).totals) {
    throw new ConfigError(`${file}: not a mailops load report (report.json version 1)`);
  }
  return data as Report;
}

function rows(r: Report): Map<string, [number | null, string, 'lower' | 'higher']> {
  const m = new Map<string, [number | null, string, 'lower' | 'higher']>();
  m.set('throughput', [r.totals.throughput, 'msgs/s', 'higher']);
  m.set('peak throughput', [r.totals.peakThroughput, 'msgs/s', 'higher']);
  m.set('accepted', [r.totals.accepted, 'msgs', 'higher']);
  m.set('error rate', [r.totals.errorRate * 100, '%', 'lower']);
  m.set('send p50', [r.send.p50, 'ms', 'lower']);
  m.set('send p99', [r.send.p99, 'ms', 'lower']);
  for (const lane of LANES) {
    const l = r.lanes[lane];
    if (l.planned === 0) continue;
    m.set(`${lane} send p99`, [l.send.p99, 'ms', 'lower']);
    if (l.arrival) m.set(`${lane} arrival p99`, [l.arrival.latencyMs.p99, 'ms', 'lower']);
  }
  for (const p of PHASES) if (r.phases[p].count) m.set(`phase ${p} p99`, [r.phases[p].p99, 'ms', 'lower']);
  if (r.arrival) {
    m.set('missing', [r.arrival.missing, 'msgs', 'lower']);
    m.set('drain', [r.arrival.drainMs / 1000, 's', 'lower']);
  }
  return m;
}

export function compareReports(a: Report, b: Report): CompareRow[] {
  const ra = rows(a);
  const rb = rows(b);
  const names = [...new Set([...ra.keys(), ...rb.keys()])];
  return names.map((metric) => {
    const [va, unit, better] = ra.get(metric) ?? [null, rb.get(metric)![1], rb.get(metric)![2]];
    const vb = rb.get(metric)?.[0] ?? null;
    const delta = va !== null && vb !== null ? vb - va : null;
    return { metric, unit, a: va, b: vb, delta, deltaPct: delta !== null && va ? (delta / va) * 100 : null, better };
  });
}

function num(v: number | null): string {
  return v === null ? '-' : Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2);
}

export function renderComparison(rows: CompareRow[], a: string, b: string): string {
  const lines = [`A: ${a}`, `B: ${b}`, ''];
  const head = ['metric', 'unit', 'A', 'B', 'delta', 'delta %', ''];
  const body = rows.map((r) => {
    const worse = r.delta !== null && r.delta !== 0 && (r.better === 'lower' ? r.delta > 0 : r.delta < 0);
    return [r.metric, r.unit, num(r.a), num(r.b), r.delta === null ? '-' : `${r.delta > 0 ? '+' : ''}${num(r.delta)}`,
      r.deltaPct === null ? '-' : `${r.deltaPct > 0 ? '+' : ''}${r.deltaPct.toFixed(1)} %`, r.delta ? (worse ? 'worse' : 'better') : ''];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const fmt = (row: string[]) => row.map((c, i) => (i === 0 || i === 1 || i === 6 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  lines.push(fmt(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(fmt));
  return `${lines.join('\n')}\n`;
}

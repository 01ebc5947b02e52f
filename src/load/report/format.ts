// Number formatting, and the few sentences that more than one renderer writes, shared by the
// Markdown, HTML and terminal renderers. Pure functions of the report.
import type { Lane } from '../scenario/types.ts';
import type { RefusalCount } from '../../sink/refusals.ts';
import type { Report } from './model.ts';

export function ms(value: number): string {
  if (value >= 10_000) return `${(value / 1000).toFixed(1)} s`;
  if (value >= 1000) return `${(value / 1000).toFixed(2)} s`;
  if (value >= 10) return `${value.toFixed(0)} ms`;
  return `${value.toFixed(2)} ms`;
}

export function int(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

export function pct(fraction: number): string {
  return `${(fraction * 100).toFixed(fraction < 0.001 && fraction > 0 ? 3 : 2)} %`;
}

export function bytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${n} B`;
}

/** How the drain wait ended: "12.3 s", "15.2 s (the rest deferred at the sink)" or "300.0 s (timed out)". */
export function drainText(a: NonNullable<Report['arrival']>): string {
  const how = !a.complete ? ' (timed out)' : a.deferred > 0 ? ' (the rest deferred at the sink)' : '';
  return `${(a.drainMs / 1000).toFixed(1)} s${how}`;
}

/** Threshold values in the unit the metric is written in. */
export function thresholdValue(metric: string, value: number | null): string {
  if (value === null) return 'n/a';
  if (metric === 'error_rate') return pct(value);
  if (/^(send|phase|arrival)\./.test(metric)) return ms(value);
  if (metric === 'throughput') return `${value.toFixed(1)}/s`;
  return int(value);
}

/** A sink reply as the tables show it: "421 4.7.28 [{ip}] Our system has detected...". */
export function replyText(r: RefusalCount): string {
  return [r.code ? String(r.code) : '', r.enhanced, r.text].filter(Boolean).join(' ');
}

/** The run's second with the slowest arrival in `lane` (largest max), as one line; undefined without arrival data. */
export function worstArrivalLine(r: Report, lane: Lane): string | undefined {
  let worst: { t: number; count: number; p99: number; max: number } | undefined;
  for (const p of r.arrival?.timeline ?? []) {
    const l = p.lanes[lane];
    if (l && (!worst || l.max > worst.max)) worst = { t: p.t, ...l };
  }
  if (!worst) return undefined;
  return `worst ${lane} arrival second: max ${ms(worst.max)}, p99 ${ms(worst.p99)} over ${int(worst.count)} message${worst.count === 1 ? '' : 's'}, ` +
    `in the second ending ${worst.t.toFixed(0)} s after the start`;
}

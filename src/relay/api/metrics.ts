// GET /metrics in the Prometheus text format.
import { LATENCY_BUCKETS_MS, OUTCOMES, type Histogram, type Metrics } from '../metrics.ts';
import type { Spool } from '../spool/spool.ts';

/** One Prometheus histogram (milliseconds recorded, seconds exposed), a series per label set. */
function histogram(lines: string[], name: string, help: string, series: [string, Histogram][]): void {
  lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
  for (const [labels, h] of series) {
    const sep = labels ? ',' : '';
    let cumulative = 0;
    LATENCY_BUCKETS_MS.forEach((le, i) => {
      cumulative += h.counts[i];
      lines.push(`${name}_bucket{${labels}${sep}le="${le / 1000}"} ${cumulative}`);
    });
    cumulative += h.counts[LATENCY_BUCKETS_MS.length];
    lines.push(`${name}_bucket{${labels}${sep}le="+Inf"} ${cumulative}`);
    const braces = labels ? `{${labels}}` : '';
    lines.push(`${name}_sum${braces} ${h.sum / 1000}`, `${name}_count${braces} ${h.count}`);
  }
}

export function prometheus(metrics: Metrics, spool: Spool): string {
  const lines: string[] = [];
  lines.push('# HELP mailops_queue_recipients Recipients in the spool by lane and state.', '# TYPE mailops_queue_recipients gauge');
  for (const [lane, counts] of spool.counts) {
    for (const state of ['queued', 'deferred', 'active'] as const) lines.push(`mailops_queue_recipients{lane="${lane}",state="${state}"} ${counts[state]}`);
  }
  lines.push('# HELP mailops_queue_messages Messages not yet finished.', '# TYPE mailops_queue_messages gauge', `mailops_queue_messages ${spool.messages}`);
  for (const outcome of OUTCOMES) {
    const name = `mailops_${outcome}_total`;
    lines.push(`# HELP ${name} ${outcome === 'received' ? 'Messages received' : `Recipients ${outcome}`} per lane.`, `# TYPE ${name} counter`);
    for (const [lane, m] of metrics.lanes) lines.push(`${name}{lane="${lane}"} ${m.counters[outcome]}`);
  }
  histogram(lines, 'mailops_delivery_latency_seconds', 'Time from the 250 at receipt to the 250 at delivery.',
    [...metrics.lanes].map(([lane, m]) => [`lane="${lane}"`, m.latency]));
  lines.push('# HELP mailops_spool_commits_total Spool transactions (group commits).', '# TYPE mailops_spool_commits_total counter',
    `mailops_spool_commits_total ${spool.commits.commits}`);
  histogram(lines, 'mailops_spool_sync_seconds', 'WAL fsync duration of the group commit.', [['', spool.commits.syncTimes]]);
  lines.push('# HELP mailops_recovered_in_flight Recipients that were being delivered when the previous process died (possible duplicates).',
    '# TYPE mailops_recovered_in_flight gauge', `mailops_recovered_in_flight ${spool.recoveredActive}`);
  return lines.join('\n') + '\n';
}

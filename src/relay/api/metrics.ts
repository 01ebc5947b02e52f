// GET /metrics in the Prometheus text format.
import { LATENCY_BUCKETS_MS, OUTCOMES, type Metrics } from '../metrics.ts';
import type { Spool } from '../spool/spool.ts';

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
  lines.push('# HELP mailops_delivery_latency_seconds Time from the 250 at receipt to the 250 at delivery.', '# TYPE mailops_delivery_latency_seconds histogram');
  for (const [lane, m] of metrics.lanes) {
    let cumulative = 0;
    LATENCY_BUCKETS_MS.forEach((le, i) => {
      cumulative += m.latency.counts[i];
      lines.push(`mailops_delivery_latency_seconds_bucket{lane="${lane}",le="${le / 1000}"} ${cumulative}`);
    });
    cumulative += m.latency.counts[LATENCY_BUCKETS_MS.length];
    lines.push(`mailops_delivery_latency_seconds_bucket{lane="${lane}",le="+Inf"} ${cumulative}`);
    lines.push(`mailops_delivery_latency_seconds_sum{lane="${lane}"} ${m.latency.sum / 1000}`);
    lines.push(`mailops_delivery_latency_seconds_count{lane="${lane}"} ${m.latency.count}`);
  }
  lines.push('# HELP mailops_spool_commits_total Spool transactions (group commits).', '# TYPE mailops_spool_commits_total counter',
    `mailops_spool_commits_total ${spool.commits.commits}`);
  lines.push('# HELP mailops_recovered_in_flight Recipients that were being delivered when the previous process died (possible duplicates).',
    '# TYPE mailops_recovered_in_flight gauge', `mailops_recovered_in_flight ${spool.recoveredActive}`);
  return lines.join('\n') + '\n';
}

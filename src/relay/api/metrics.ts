// GET /metrics in the Prometheus text format: queue, outcomes and latency per lane, the spool's
// commits, and the state of every egress path per lane (connections, limit, busy, queued, paused).
import type { Dispatcher } from '../deliver/dispatcher.ts';
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

const HELP: Record<(typeof OUTCOMES)[number], string> = {
  received: 'Messages received', delivered: 'Recipients delivered', deferred: 'Recipients deferred to a later attempt',
  failed: 'Recipients failed', expired: 'Recipients expired',
  requeued: 'Recipients refused with "not now" (connections, session, rate) and put back at the front of their ready queue',
};

const PATH_STATES = ['active', 'reduced', 'paused', 'suspended'] as const;

/** Label values as Prometheus wants them: backslash, quote and newline escaped. */
function label(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function paths(lines: string[], described: ReturnType<Dispatcher['describe']>): void {
  lines.push('# HELP mailops_path_connections Open delivery connections per egress path (sending address x destination site).', '# TYPE mailops_path_connections gauge');
  for (const p of described) lines.push(`mailops_path_connections{egress="${label(p.egress)}",site="${label(p.site)}",profile="${p.profile}"} ${p.connections}`);
  const perLane = (name: string, help: string, value: (l: (typeof described)[number]['lanes'][string]) => number) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const p of described) {
      for (const [lane, l] of Object.entries(p.lanes)) lines.push(`${name}{egress="${label(p.egress)}",site="${label(p.site)}",lane="${lane}"} ${value(l)}`);
    }
  };
  perLane('mailops_path_limit', 'Connections a lane may keep busy on the path (lowered by backoff, then ramping back).', (l) => l.limit);
  perLane('mailops_path_busy', 'Connections busy with a lane\'s messages on the path.', (l) => l.busy);
  perLane('mailops_path_ready', 'Jobs of a lane in the path\'s ready queue.', (l) => l.queued);
  lines.push('# HELP mailops_path_state Shaping state of a lane on a path (1 for the state it is in).', '# TYPE mailops_path_state gauge');
  for (const p of described) {
    for (const [lane, l] of Object.entries(p.lanes)) {
      for (const state of PATH_STATES) lines.push(`mailops_path_state{egress="${label(p.egress)}",site="${label(p.site)}",lane="${lane}",state="${state}"} ${l.state === state ? 1 : 0}`);
    }
  }
}

export function prometheus(metrics: Metrics, spool: Spool, described: ReturnType<Dispatcher['describe']>): string {
  const lines: string[] = [];
  lines.push('# HELP mailops_queue_recipients Recipients in the spool by lane and state.', '# TYPE mailops_queue_recipients gauge');
  for (const [lane, counts] of spool.counts) {
    for (const state of ['queued', 'deferred', 'active'] as const) lines.push(`mailops_queue_recipients{lane="${lane}",state="${state}"} ${counts[state]}`);
  }
  lines.push('# HELP mailops_queue_messages Messages not yet finished.', '# TYPE mailops_queue_messages gauge', `mailops_queue_messages ${spool.messages}`);
  for (const outcome of OUTCOMES) {
    const name = `mailops_${outcome}_total`;
    lines.push(`# HELP ${name} ${HELP[outcome]} per lane.`, `# TYPE ${name} counter`);
    for (const [lane, m] of metrics.lanes) lines.push(`${name}{lane="${lane}"} ${m.counters[outcome]}`);
  }
  histogram(lines, 'mailops_delivery_latency_seconds', 'Time from the 250 at receipt to the 250 at delivery.',
    [...metrics.lanes].map(([lane, m]) => [`lane="${lane}"`, m.latency]));
  histogram(lines, 'mailops_answer_seconds', 'Time from the end of DATA to the 250 (commit, fsync, pacing hold).',
    [...metrics.lanes].map(([lane, m]) => [`lane="${lane}"`, m.answer]));
  histogram(lines, 'mailops_event_loop_delay_seconds', 'The worst event-loop delay of each 100 ms window.', [['', metrics.loopDelay]]);
  lines.push('# HELP mailops_spool_commits_total Spool transactions (group commits).', '# TYPE mailops_spool_commits_total counter',
    `mailops_spool_commits_total ${spool.commits.commits}`);
  histogram(lines, 'mailops_spool_sync_seconds', 'WAL fsync duration of the group commit.', [['', spool.commits.syncTimes]]);
  histogram(lines, 'mailops_spool_commit_seconds', 'How long each spool transaction held the event loop.', [['', spool.commits.commitTimes]]);
  lines.push('# HELP mailops_recovered_in_flight Recipients that were being delivered when the previous process died (possible duplicates).',
    '# TYPE mailops_recovered_in_flight gauge', `mailops_recovered_in_flight ${spool.recoveredActive}`);
  paths(lines, described);
  return lines.join('\n') + '\n';
}

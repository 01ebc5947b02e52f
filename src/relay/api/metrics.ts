// GET /metrics in the Prometheus text format: queue, outcomes and latency per lane, the spool's
// commits, failed SMTP logins and lockouts, SMTP connection admission (refused, cut, stress mode),
// the state of every egress path per lane (connections, limit, busy, queued, paused), and the
// inbound MX's defences.
import type { Cluster } from '../cluster/cluster.ts';
import type { Dispatcher } from '../deliver/dispatcher.ts';
import { CONNECTION_REFUSALS, LATENCY_BUCKETS_MS, OUTCOMES, SESSION_CUTS, type AuthMetrics, type ConnectionMetrics, type Histogram, type Metrics } from '../metrics.ts';
import type { Spool } from '../spool/spool.ts';
import type { InboundListener } from '../inbound/listener.ts';

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

function authentication(lines: string[], auth: AuthMetrics): void {
  lines.push('# HELP mailops_auth_failures_total SMTP AUTH attempts with a wrong user name or password.', '# TYPE mailops_auth_failures_total counter',
    `mailops_auth_failures_total ${auth.failures}`);
  lines.push('# HELP mailops_auth_delayed_total AUTH answers held back because the client address or user name had failed before.',
    '# TYPE mailops_auth_delayed_total counter', `mailops_auth_delayed_total ${auth.delayed}`);
  lines.push('# HELP mailops_auth_lockouts_total Lockouts started, per client address or user name.', '# TYPE mailops_auth_lockouts_total counter');
  for (const scope of ['address', 'user'] as const) lines.push(`mailops_auth_lockouts_total{scope="${scope}"} ${auth.lockouts[scope]}`);
  lines.push('# HELP mailops_auth_locked_out_total AUTH attempts refused with 421 4.7.0 during a lockout.', '# TYPE mailops_auth_locked_out_total counter',
    `mailops_auth_locked_out_total ${auth.lockedOut}`);
  lines.push('# HELP mailops_auth_tracked Client addresses and user names with recent failures remembered (bounded).', '# TYPE mailops_auth_tracked gauge');
  for (const scope of ['address', 'user'] as const) lines.push(`mailops_auth_tracked{scope="${scope}"} ${auth.tracked[scope]}`);
}

function admission(lines: string[], connections: ConnectionMetrics): void {
  lines.push('# HELP mailops_smtp_refused_total SMTP connections refused with 421 at connect, by the limit they hit.', '# TYPE mailops_smtp_refused_total counter');
  for (const reason of CONNECTION_REFUSALS) lines.push(`mailops_smtp_refused_total{reason="${reason}"} ${connections.refused[reason]}`);
  lines.push('# HELP mailops_smtp_cut_total SMTP sessions the relay ended with 421: idle, command-deadline, data-rate (too slow), shed (to make room).', '# TYPE mailops_smtp_cut_total counter');
  for (const reason of SESSION_CUTS) lines.push(`mailops_smtp_cut_total{reason="${reason}"} ${connections.cut[reason]}`);
  lines.push('# HELP mailops_smtp_sessions Open SMTP sessions: privileged (relayNetworks or authenticated, may use the reserved slots) and other.', '# TYPE mailops_smtp_sessions gauge');
  for (const kind of ['privileged', 'other'] as const) lines.push(`mailops_smtp_sessions{class="${kind}"} ${connections.open[kind]}`);
  lines.push('# HELP mailops_smtp_stress Whether SMTP stress mode (shorter timeouts) is on.', '# TYPE mailops_smtp_stress gauge', `mailops_smtp_stress ${connections.stress ? 1 : 0}`);
  lines.push('# HELP mailops_smtp_stress_entered_total Times SMTP stress mode came on.', '# TYPE mailops_smtp_stress_entered_total counter',
    `mailops_smtp_stress_entered_total ${connections.stressEntered}`);
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
  histogram(lines, 'mailops_event_loop_delay_seconds', 'The worst event-loop delay of each 100 ms window.', [['', metrics.pacing.loopDelay]]);
  lines.push('# HELP mailops_intake_paced_rate Answers per second the lowest lane gets while higher lanes have mail coming in (0: not paced).',
    '# TYPE mailops_intake_paced_rate gauge', `mailops_intake_paced_rate ${Math.round(metrics.pacing.rate)}`,
    '# HELP mailops_intake_held Lowest-lane 250s held back by intake pacing now.', '# TYPE mailops_intake_held gauge', `mailops_intake_held ${metrics.pacing.held}`,
    '# HELP mailops_intake_held_total Lowest-lane 250s held back by intake pacing.', '# TYPE mailops_intake_held_total counter', `mailops_intake_held_total ${metrics.pacing.heldTotal}`);
  lines.push('# HELP mailops_spool_commits_total Spool transactions (group commits).', '# TYPE mailops_spool_commits_total counter',
    `mailops_spool_commits_total ${spool.commits.commits}`,
    '# HELP mailops_spool_wal_bytes Size of the spool\'s write-ahead log file (kept at its high-water mark while the relay runs).', '# TYPE mailops_spool_wal_bytes gauge',
    `mailops_spool_wal_bytes ${spool.walBytes}`);
  histogram(lines, 'mailops_spool_sync_seconds', 'WAL fsync duration of the group commit.', [['', spool.commits.syncTimes]]);
  histogram(lines, 'mailops_spool_commit_seconds', 'How long each spool transaction held the event loop.', [['', spool.commits.commitTimes]]);
  lines.push('# HELP mailops_recovered_in_flight Recipients that were being delivered when the previous process died (possible duplicates).',
    '# TYPE mailops_recovered_in_flight gauge', `mailops_recovered_in_flight ${spool.recoveredActive}`,
    '# HELP mailops_recovered_delivered Recipients being delivered when the previous process died whose receiver\'s 250 the delivered journal had (finished, not sent again).',
    '# TYPE mailops_recovered_delivered gauge', `mailops_recovered_delivered ${spool.recoveredDelivered}`);
  authentication(lines, metrics.auth);
  admission(lines, metrics.connections);
  paths(lines, described);
  return lines.join('\n') + '\n';
}

/** The cluster membership's state (empty for a single node). */
export function clusterMetrics(cluster: Cluster | undefined): string {
  if (!cluster) return '';
  const s = cluster.status();
  return [
    '# HELP mailops_cluster_redis_up Whether the cluster\'s Redis answers (0: limits are kept per node meanwhile).', '# TYPE mailops_cluster_redis_up gauge',
    `mailops_cluster_redis_up{node="${s.node}"} ${s.redis === 'up' ? 1 : 0}`,
    '# HELP mailops_cluster_redis_down_total Times the link to the cluster\'s Redis went down.', '# TYPE mailops_cluster_redis_down_total counter',
    `mailops_cluster_redis_down_total{node="${s.node}"} ${s.redisDowns}`,
    '# HELP mailops_cluster_live_nodes Nodes beating in the registry at the last beat.', '# TYPE mailops_cluster_live_nodes gauge',
    `mailops_cluster_live_nodes{node="${s.node}"} ${s.liveNodes}`,
    '# HELP mailops_cluster_leases_refused_total Connections not opened because the cluster was at the path\'s limit.', '# TYPE mailops_cluster_leases_refused_total counter',
    `mailops_cluster_leases_refused_total{node="${s.node}"} ${s.leasesRefused}`,
  ].join('\n') + '\n';
}

/** The inbound MX listener's defences and outcomes (empty without inbound.listen). */
export function inboundMetrics(inbound: InboundListener | undefined): string {
  if (!inbound) return '';
  const { stats, connections } = inbound;
  const lines: string[] = [];
  lines.push('# HELP mailops_inbound_greeted_total Inbound connections greeted: after the greeting wait, known good, vouched for by a DNSWL, or with the wait off.', '# TYPE mailops_inbound_greeted_total counter');
  for (const [how, n] of Object.entries(stats.greeted)) lines.push(`mailops_inbound_greeted_total{how="${how}"} ${n}`);
  lines.push('# HELP mailops_inbound_refused_total Inbound refusals by reason (connect: pregreet, dnsbl; RCPT: relay, unknownRecipient, unverifiedRecipient, greylisted; DATA: dmarc, spf, scanReject, scanTempfail).', '# TYPE mailops_inbound_refused_total counter');
  for (const [reason, n] of Object.entries(stats.refused)) lines.push(`mailops_inbound_refused_total{reason="${reason}"} ${n}`);
  lines.push('# HELP mailops_inbound_accepted_total Inbound messages accepted (tagged: a DMARC or SPF verdict added X-Mailops-Verdict; unscanned: a scanner was down under onError: pass).', '# TYPE mailops_inbound_accepted_total counter',
    `mailops_inbound_accepted_total{kind="all"} ${stats.accepted}`, `mailops_inbound_accepted_total{kind="tagged"} ${stats.tagged}`, `mailops_inbound_accepted_total{kind="unscanned"} ${stats.unscanned}`);
  lines.push('# HELP mailops_inbound_smtp_refused_total Inbound connections refused with 421 at connect by admission, by the limit they hit.', '# TYPE mailops_inbound_smtp_refused_total counter');
  for (const reason of CONNECTION_REFUSALS) lines.push(`mailops_inbound_smtp_refused_total{reason="${reason}"} ${connections.refused[reason]}`);
  lines.push('# HELP mailops_inbound_smtp_cut_total Inbound sessions ended with 421 by admission.', '# TYPE mailops_inbound_smtp_cut_total counter');
  for (const reason of SESSION_CUTS) lines.push(`mailops_inbound_smtp_cut_total{reason="${reason}"} ${connections.cut[reason]}`);
  lines.push('# HELP mailops_inbound_smtp_sessions Open inbound SMTP sessions.', '# TYPE mailops_inbound_smtp_sessions gauge', `mailops_inbound_smtp_sessions ${connections.open.other + connections.open.privileged}`);
  return lines.join('\n') + '\n';
}

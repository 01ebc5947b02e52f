// Prometheus text exposition of the sink's stats.
import type { StatsSnapshot } from './stats.ts';

function label(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export function prometheus(s: StatsSnapshot): string {
  const out: string[] = [];
  const metric = (name: string, type: string, help: string, samples: [string, number][]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) out.push(`${name}${labels} ${value}`);
  };
  metric('mailops_sink_received_total', 'counter', 'Messages accepted (250 after DATA).', [['', s.received]]);
  metric('mailops_sink_duplicates_total', 'counter', 'Messages whose X-Mailops-Load run+seq arrived before.', [['', s.duplicates]]);
  metric('mailops_sink_bytes_total', 'counter', 'Message bytes accepted.', [['', s.bytes]]);
  metric('mailops_sink_connections_total', 'counter', 'SMTP connections accepted.', [['', s.connections.total]]);
  metric('mailops_sink_connections_open', 'gauge', 'SMTP connections open now.', [['', s.connections.open]]);
  metric('mailops_sink_deferred_recipients', 'gauge', 'Recipients whose latest answer was a 4xx at RCPT or end of data.', [['', s.deferredNow]]);
  metric('mailops_sink_recipients_total', 'counter', 'Accepted recipients by domain.',
    Object.entries(s.byDomain).map(([d, n]) => [`{domain="${label(d)}"}`, n]));
  metric('mailops_sink_profile_recipients_total', 'counter', 'Accepted recipients by provider profile.',
    Object.entries(s.byProfile).map(([p, n]) => [`{profile="${label(p)}"}`, n]));
  metric('mailops_sink_replies_total', 'counter', 'Replies by SMTP phase and code.',
    Object.entries(s.repliesByPhase).flatMap(([phase, codes]) => Object.entries(codes).map(([code, n]) => [`{phase="${phase}",code="${code}"}`, n] as [string, number])));
  metric('mailops_sink_lane_messages_total', 'counter', 'Messages carrying X-Mailops-Load, by lane.',
    Object.entries(s.byLane).map(([lane, l]) => [`{lane="${label(lane)}"}`, l.count]));
  metric('mailops_sink_lane_latency_ms', 'gauge', 'Time from the X-Mailops-Load sent stamp to arrival, by lane and quantile.',
    Object.entries(s.byLane).flatMap(([lane, l]) => (['p50', 'p90', 'p99', 'max'] as const).map((q) =>
      [`{lane="${label(lane)}",quantile="${q === 'max' ? '1' : `0.${q.slice(1)}`}"}`, l.latencyMs[q]] as [string, number])));
  metric('mailops_sink_dkim_total', 'counter', 'DKIM verification outcomes of sampled messages.',
    Object.entries(s.dkim).map(([result, n]) => [`{result="${result}"}`, n]));
  return `${out.join('\n')}\n`;
}

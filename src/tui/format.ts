// Text tables of a snapshot: the full-screen panels show these lines, and `mailops top --once`
// prints them. Plain text (no colour tags), aligned columns, left-aligned first column.
import type { LaneRow, NodeRow, Quantiles, Snapshot } from './types.ts';

/** `align`: one letter per column, l or r; columns beyond it are right-aligned. */
export function table(rows: string[][], align = 'l'): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => (align[i] === 'l' ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ').trimEnd());
}

export function age(seconds: number | undefined): string {
  if (seconds === undefined) return '-';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ''}`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d${Math.floor((s % 86_400) / 3600)}h`;
}

export function rate(perSecond: number | undefined): string {
  if (perSecond === undefined) return '-';
  if (perSecond === 0) return '0';
  return perSecond < 10 ? perSecond.toFixed(1) : String(Math.round(perSecond));
}

/** A latency bucket bound in seconds. */
export function latency(seconds: number | undefined): string {
  if (seconds === undefined) return '-';
  if (seconds === Infinity) return '>1d';
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  return seconds < 60 ? `${seconds}s` : age(seconds);
}

const q = (l: Quantiles | undefined, key: 'p50' | 'p99') => (l ? `≤${latency(l[key])}` : '-');

/** `latencyFrom`: the window's quantiles (live view) or those since the node started (--once). */
export function laneLines(s: Snapshot, latencyFrom: 'window' | 'start' = 'window'): string[] {
  const header = ['LANE', 'DEPTH', 'QUEUED', 'DEFERRED', 'ACTIVE', 'OLDEST', 'IN/s', 'OUT/s', 'DEFER/s', 'FAIL/s', 'DELIVERED', 'FAILED', 'EXPIRED', 'P50', 'P99'];
  if (s.lanes.length === 0) return ['no lane data (no node up)'];
  const pick = (l: LaneRow) => (latencyFrom === 'window' ? l.latency : l.latencySinceStart);
  const rows = s.lanes.map((l) => [
    l.lane, String(l.depth), String(l.queued), String(l.deferred), String(l.active), age(l.oldestAgeSeconds),
    rate(l.rates?.received), rate(l.rates?.delivered), rate(l.rates?.deferred), rate(l.rates?.failed),
    String(l.totals?.delivered ?? '-'), String(l.totals?.failed ?? '-'), String(l.totals?.expired ?? '-'), q(pick(l), 'p50'), q(pick(l), 'p99'),
  ]);
  return table([header, ...rows]);
}

function nodeState(n: NodeRow, now: number): string {
  if (n.status === 'down') return `DOWN ${age((now - Date.parse(n.downSince!)) / 1000)}`;
  if (n.status === 'connecting') return 'connecting';
  return n.status === 'partial' ? 'partial' : 'up';
}

export function nodeLines(s: Snapshot): string[] {
  const now = Date.parse(s.at);
  const rows = s.nodes.map((n, i) => [
    `#${i + 1}`, n.name, nodeState(n, now), n.uptimeSeconds === undefined ? '-' : age(n.uptimeSeconds), n.messages === undefined ? '-' : String(n.messages),
    n.pollMs === undefined ? '-' : `${n.pollMs}ms`, n.events === 'off' ? '-' : n.events === 'connected' ? 'live' : 'retry',
  ]);
  const lines = table([['#', 'NODE', 'STATE', 'UPTIME', 'MESSAGES', 'POLL', 'EVENTS'], ...rows], 'lll');
  for (const n of s.nodes) if (n.error) lines.push(`${n.name}: ${n.error}`);
  for (const n of s.nodes) if (n.eventsDropped) lines.push(`${n.name}: ${n.eventsDropped} event(s) dropped by the node (too many to follow)`);
  return lines;
}

export function domainLines(s: Snapshot): string[] {
  if (s.domains.length === 0) return ['no queued destinations'];
  const rows = s.domains.map((d) => [
    d.domain, d.provider, d.lanes.length > 1 ? d.lanes.map((l) => l.slice(0, 5)).join(',') : d.lanes.join(','), String(d.queued), String(d.deferrals),
    d.state === 'paused' && d.pausedUntil ? `paused→${d.pausedUntil.slice(11, 19)}` : d.state, d.lastError ?? '',
  ]);
  return table([['DOMAIN', 'PROVIDER', 'LANES', 'QUEUED', 'DEFER/5m', 'STATE', 'LAST ERROR'], ...rows], 'lllrrll');
}

/** `withNode`: prefix each line with the node's number in the nodes table (#1, #2, ...). */
export function providerLines(s: Snapshot): string[] {
  if (s.providers.length === 0) return ['no queued destinations'];
  const rows = s.providers.map((p) => [
    p.provider, String(p.domains), p.lanes.length > 1 ? p.lanes.map((l) => l.slice(0, 5)).join(',') : p.lanes.join(','),
    String(p.queued), String(p.deferrals), p.state, p.lastError ?? '',
  ]);
  return table([['PROVIDER', 'DOMAINS', 'LANES', 'QUEUED', 'DEFER/5m', 'STATE', 'LAST ERROR'], ...rows], 'lrlrrll');
}

export function eventLines(s: Snapshot, withNode: boolean): string[] {
  const number = new Map(s.nodes.map((n, i) => [n.name, `#${i + 1} `]));
  return s.events.map((e) => `${e.time.slice(11, 19)} ${withNode ? number.get(e.node) ?? '' : ''}${e.event} ${e.text}`);
}

/** The --once text report. */
export function textReport(s: Snapshot): string {
  const up = s.nodes.filter((n) => n.status === 'up' || n.status === 'partial').length;
  const out = [
    `mailops top  ${s.at}  ${up}/${s.nodes.length} node(s) up, ${s.messages} message(s) not finished`,
    '',
    ...nodeLines(s),
    '',
    `Lanes (recipients; rates over the ${s.rateWindowSeconds}s between two polls; latency since node start)`,
    ...laneLines(s, 'start'),
    '',
    'Destinations (busiest domains)',
    ...domainLines(s),
    '',
    'Providers',
    ...providerLines(s),
  ];
  return out.join('\n') + '\n';
}

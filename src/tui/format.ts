// Text tables of a snapshot: the full-screen panels show these lines, and `mailops top --once`
// prints them. Plain text (no colour tags), aligned columns, left-aligned first column.
// May touch: nothing; pure functions of a Snapshot.
import type { LaneRow, NodeRow, PathLane, PathRow, Quantiles, Snapshot } from './types.ts';

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

/** A line cut to at most `max` characters, with "…" where it was cut. */
export function clip(line: string, max: number): string {
  return line.length <= max ? line : `${line.slice(0, Math.max(0, max - 1))}…`;
}

/** A node's free text (a reply) as one line of at most `max` characters. */
export function shorten(text: string, max: number): string {
  return clip(text.replace(/\s+/g, ' ').trim(), max);
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
  const header = ['LANE', 'DEPTH', 'QUEUED', 'DEFERRED', 'ACTIVE', 'OLDEST', 'IN/s', 'OUT/s', 'DEFER/s', 'FAIL/s', 'REQUEUE/s', 'DELIVERED', 'FAILED', 'EXPIRED', 'P50', 'P99'];
  if (s.lanes.length === 0) return ['no lane data (no node up)'];
  const pick = (l: LaneRow) => (latencyFrom === 'window' ? l.latency : l.latencySinceStart);
  const rows = s.lanes.map((l) => [
    l.lane, String(l.depth), String(l.queued), String(l.deferred), String(l.active), age(l.oldestAgeSeconds),
    rate(l.rates?.received), rate(l.rates?.delivered), rate(l.rates?.deferred), rate(l.rates?.failed), rate(l.rates?.requeued),
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
  for (const n of s.nodes) if (n.eventsRefused) lines.push(`${n.name}: event stream refused (HTTP ${n.eventsRefused}): give --token, or --spool DIR as the relay's user`);
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

/** A node's number in the nodes table ("#2 ") by its name, for lines that mix several nodes. */
function nodeNumbers(s: Snapshot): Map<string, string> {
  return new Map(s.nodes.map((n, i) => [n.name, `#${i + 1} `]));
}

export function eventLines(s: Snapshot, withNode: boolean): string[] {
  const number = nodeNumbers(s);
  return s.events.map((e) => `${e.time.slice(11, 19)} ${withNode ? number.get(e.node) ?? '' : ''}${e.event} ${e.text}`);
}

/** A lane with nothing to say: sending freely, no connection busy, nothing ready. */
const laneIdle = (l: PathLane) => l.state === 'active' && l.busy === 0 && l.queued === 0;
const pathIdle = (p: PathRow) => p.connections === 0 && p.lanes.every(laneIdle);

/** Time left until an ISO time, e.g. "4m10s"; empty for "until resumed", a bad time or one past. */
function timeLeft(until: string | undefined, now: number): string {
  const ms = Date.parse(until ?? '') - now;
  return ms > 0 ? age(ms / 1000) : '';
}

/** Time since an ISO time, e.g. "2m"; empty for a bad time or one ahead of ours. */
function timeSince(at: string, now: number): string {
  const ms = now - Date.parse(at);
  return ms >= 0 ? age(ms / 1000) : '';
}

/**
 * The egress paths view: per path a line (site, sending address, connections/max, profile), a
 * line per lane that is not idle (state with time left, busy/limit, ready, the pause reply) and
 * the latest shaping action with the lanes it touched; suspended domains first. Lines fit `width`
 * columns (replies are shortened to what is left). `busyOnly`: leave out paths that are idle.
 */
export function pathLines(s: Snapshot, options: { width?: number; busyOnly?: boolean } = {}): string[] {
  const width = options.width ?? 80;
  const now = Date.parse(s.at);
  const number = nodeNumbers(s);
  const node = (name: string) => (s.view === 'all' && s.nodes.length > 1 ? number.get(name) ?? '' : '');
  const out = s.suspended.map((d) => {
    const left = timeLeft(d.until, now);
    return clip(`${node(d.node)}suspended ${d.domain}: ${d.reason}, ${left ? `for ${left}` : d.until}`, width);
  });
  const paths = options.busyOnly ? s.paths.filter((p) => !pathIdle(p)) : s.paths;
  if (paths.length === 0) return [...out, options.busyOnly ? 'no egress path with connections, ready mail or backoff' : 'no egress paths'];
  const shown = paths.map((p) => p.lanes.filter((l) => !laneIdle(l)));
  // one table over every path's lanes, so that their columns line up from path to path
  const rows = table([['  LANE', 'STATE', 'BUSY', 'READY'], ...shown.flat().map((l) => {
    const left = timeLeft(l.pausedUntil, now);
    return [`  ${l.lane}`, left ? `${l.state} ${left}` : l.state, `${l.busy}/${l.limit}`, String(l.queued)];
  })], 'll');
  // a reply cut to a few characters says nothing: then it is left out (the JSON has it whole)
  const withReply = (line: string, reply: string | undefined) => {
    const room = width - line.length - 2;
    return reply && room >= 8 ? `${line}  ${shorten(reply, room)}` : line;
  };
  out.push(withReply(rows[0], 'REPLY'));
  let row = 1;
  paths.forEach((p, i) => {
    // the profile is worth naming where the site does not (provider:google is shaped by "google")
    const profile = p.site === `provider:${p.profile}` || !p.profile ? '' : `  profile ${p.profile}`;
    out.push(clip(`${node(p.node)}${p.site}  from ${p.egress}  conn ${p.connections}/${p.maxConnections}${profile}${shown[i].length ? '' : '  idle'}`, width));
    for (const l of shown[i]) out.push(withReply(rows[row++], l.reply));
    const a = p.lastAction;
    if (a) {
      const ago = timeSince(a.at, now);
      const what = `  last${ago ? ` ${ago} ago` : ''}: ${a.action} ${a.lanes.join(',')}${a.limit === undefined ? '' : ` to ${a.limit} conn`}${a.by === 'operator' ? ' by operator' : ''}`;
      // the reply of a pause is already on its lanes' lines
      out.push(withReply(what, shown[i].some((l) => l.reply === a.reply) ? undefined : a.reply));
    }
  });
  return out;
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
    '',
    'Egress paths (with connections, ready mail or backoff)',
    ...pathLines(s, { busyOnly: true }),
  ];
  return out.join('\n') + '\n';
}

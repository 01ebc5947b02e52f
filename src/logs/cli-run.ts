// `mailops logs`: search, follow and summarise the delivery logs through a node's API
// (src/logs/api.ts), and `mailops logs serve`, the web page for any number of nodes (serve.ts).
// The node and its token as for every command that calls a node (src/cli/node-client.ts). With
// --cluster, the nodes come from the cluster's registry: a search goes to one node when the
// answer comes from the central store, else to each and the answers are merged by time; a follow
// listens to every node (live records come from the node that makes them). Filters are checked
// here first, so that a bad one is a usage error naming its flag (exit 2).
// May touch: standard output; HTTP calls to nodes.
import { ConfigError } from '../config/errors.ts';
import { callNode, liveNodes, nodeTarget, type NodeOptions } from '../cli/node-client.ts';
import { formatDuration, parseDuration } from '../util/units.ts';
import { FILTER_PARAMS, FilterError, parseFilter } from './filter.ts';
import type { LogRecord } from './record.ts';
import type { LogSummary } from './summary.ts';

export interface LogsOptions extends NodeOptions {
  [filter: string]: unknown;
  limit?: string;
  follow?: boolean;
  summary?: boolean;
  bucket?: string;
}

/** The filter flags as API parameters, checked (a bad one: exit 2 naming the flag). */
function filterParams(options: LogsOptions): URLSearchParams {
  const params = new URLSearchParams();
  for (const key of FILTER_PARAMS) if (typeof options[key] === 'string') params.set(key, options[key] as string);
  try {
    parseFilter(params, Date.now());
  } catch (err) {
    if (err instanceof FilterError) throw new ConfigError(`--${err.message}`);
    throw err;
  }
  return params;
}

function limitOf(options: LogsOptions, fallback: number): string {
  if (options.limit === undefined) return String(fallback);
  const n = Number(options.limit);
  if (!Number.isInteger(n) || n < 0 || n > 10_000) throw new ConfigError(`--limit: expected an integer from 0 to 10000, got ${JSON.stringify(options.limit)}`);
  return String(n);
}

/** The nodes a command talks to: --cluster's that are up, else the one --node/--spool name. */
async function nodesOf(options: LogsOptions): Promise<NodeOptions[]> {
  if (!options.cluster) return [options];
  return (await liveNodes({ ...options, cluster: options.cluster })).map((n) => ({ ...options, cluster: undefined, node: n.api }));
}

export async function run(options: LogsOptions): Promise<void> {
  const params = filterParams(options);
  if (options.summary && options.follow) throw new ConfigError('--summary and --follow: choose one');
  if (options.summary) return summary(options, params);
  if (options.follow) return follow(options, params);
  return search(options, params);
}

async function search(options: LogsOptions, params: URLSearchParams): Promise<void> {
  params.set('limit', limitOf(options, 100));
  const nodes = await nodesOf(options);
  const first = await callNode(nodes[0], `/api/v1/logs?${params}`);
  let records: LogRecord[] = first.records;
  if (first.partial) process.stderr.write(`mailops: ${first.partial}\n`);
  if (first.store !== 'postgres' && nodes.length > 1) {
    // no central store: each node has its own records
    for (const node of nodes.slice(1)) records = records.concat((await callNode(node, `/api/v1/logs?${params}`)).records);
    records.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
    records = records.slice(-Number(params.get('limit')));
  }
  for (const r of records) process.stdout.write((options.json ? JSON.stringify(r) : formatRecord(r)) + '\n');
}

/** One record as one line, in the manner of a Postfix log line. */
export function formatRecord(r: LogRecord): string {
  const parts = [r.time.replace('T', ' ').replace('Z', ''), r.node, r.event, r.id ?? '-', r.lane ?? '-'];
  if (r.tenant) parts.push(`tenant=${r.tenant}`);
  parts.push(`from=<${r.from ?? ''}>`, `to=<${r.rcpt ?? ''}>`);
  if (r.mx) parts.push(`relay=${r.mx}${r.ip && r.ip !== r.mx ? `[${r.ip}]` : ''}`);
  if (r.tls !== undefined) parts.push(`tls=${r.tls ? 'yes' : 'no'}`);
  if (r.attempt !== undefined) parts.push(`attempt=${r.attempt}`);
  if (r.queuedMs !== undefined) parts.push(`delay=${(r.queuedMs / 1000).toFixed(2)}s`);
  if (r.class !== undefined) parts.push(`class=${r.class}`);
  if (r.reply) parts.push(`reply="${r.reply}"`);
  return parts.join(' ');
}

async function follow(options: LogsOptions, params: URLSearchParams): Promise<void> {
  params.set('follow', '1');
  params.set('limit', limitOf(options, 10));
  const nodes = await nodesOf(options);
  await Promise.all(nodes.map((node) => followNode(node, params, options.json === true)));
}

/** Prints one node's history and live records until the node closes the stream. */
async function followNode(options: NodeOptions, params: URLSearchParams, json: boolean): Promise<void> {
  const target = nodeTarget(options);
  const url = new URL(`/api/v1/logs?${params}`, target.node);
  let res: Response;
  try {
    res = await fetch(url, { headers: target.token ? { authorization: `Bearer ${target.token}` } : {} });
  } catch (err) {
    throw new ConfigError(`--node ${target.node}: cannot reach the relay (${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message})`);
  }
  if (!res.ok || !res.body) {
    const data = (await res.json().catch(() => ({}))) as { error?: string };
    process.stderr.write(`mailops: ${target.node}${url.pathname}: HTTP ${res.status}: ${data.error ?? res.statusText}\n`);
    process.exit(1);
  }
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body) {
    buffer += decoder.decode(chunk as Uint8Array, { stream: true });
    let nl: number;
    let out = '';
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (!line) continue;
      const item = JSON.parse(line) as LogRecord & { following?: string; dropped?: number };
      if (item.following) process.stderr.write(`mailops: following ${item.following} (${target.node})\n`);
      else if (item.dropped) process.stderr.write(`mailops: ${item.dropped} records skipped (this reader fell behind)\n`);
      else out += (json ? line : formatRecord(item)) + '\n';
    }
    if (out) process.stdout.write(out);
  }
  process.stderr.write(`mailops: ${target.node} closed the stream\n`);
}

async function summary(options: LogsOptions, params: URLSearchParams): Promise<void> {
  const bucket = options.bucket ?? '1h';
  if (parseDuration(bucket) === undefined) throw new ConfigError(`--bucket: expected a duration such as 1m or 1h, got ${JSON.stringify(bucket)}`);
  params.set('bucket', bucket);
  const nodes = await nodesOf(options);
  const s: LogSummary & { partial?: string } = await callNode(nodes[0], `/api/v1/logs/summary?${params}`);
  if (s.partial) process.stderr.write(`mailops: ${s.partial}\n`);
  if (s.store !== 'postgres' && nodes.length > 1) process.stderr.write(`mailops: ${nodes[0].node}'s records only: a summary across nodes needs the central store (log.postgres)\n`);
  process.stdout.write(options.json ? JSON.stringify(s, null, 2) + '\n' : formatSummary(s));
}

const pad = (text: string | number, width: number) => String(text).padStart(width);
const ms = (n: number) => (n < 1000 ? `${n}ms` : `${(n / 1000).toFixed(1)}s`);

/** The summary as text, in the spirit of pflogsumm. */
export function formatSummary(s: LogSummary): string {
  const events = Object.keys(s.totals);
  const out: string[] = [`Delivery log summary ${s.since} .. ${s.until} (${s.store} store)`, '', 'Grand totals'];
  for (const e of events) out.push(`  ${e.padEnd(12)}${pad(s.totals[e], 10)}`);
  out.push('', `Per ${formatDuration(s.bucketMs)}`.padEnd(22) + events.map((e) => pad(e, 11)).join(''));
  s.series.times.forEach((t, i) => {
    const counts = events.map((e) => s.series.events[e]?.[i] ?? 0);
    if (counts.some((n) => n > 0)) out.push(`  ${new Date(t).toISOString().slice(0, 16).replace('T', ' ')}`.padEnd(22) + counts.map((n) => pad(n, 11)).join(''));
  });
  const shown = events.filter((e) => e !== 'received');
  out.push('', 'Per provider'.padEnd(30) + pad('total', 9) + shown.map((e) => pad(e, 11)).join(''));
  for (const p of s.providers) out.push(`  ${p.provider.slice(0, 27).padEnd(28)}${pad(p.total, 9)}${shown.map((e) => pad(p.events[e] ?? 0, 11)).join('')}`);
  for (const [title, list] of [['Top deferral reasons', s.reasons.deferred], ['Top bounce reasons (failed, expired)', s.reasons.bounced]] as const) {
    out.push('', title);
    if (list.length === 0) out.push('  none');
    for (const r of list) out.push(`  ${pad(r.count, 8)}  ${`${r.class} ${r.code}`.padEnd(24)} ${r.example.slice(0, 100)}`);
  }
  out.push('', 'Receipt to delivery per lane');
  for (const [lane, l] of Object.entries(s.latency.lanes)) out.push(`  ${lane.padEnd(16)} delivered ${pad(l.delivered, 8)}  avg ${pad(ms(l.avgMs), 8)}  max ${pad(ms(l.maxMs), 8)}`);
  return out.join('\n') + '\n';
}

export async function serve(options: { listen: string; node?: string[]; cluster?: string }): Promise<void> {
  const { serveLogs } = await import('./serve.ts');
  await serveLogs(options);
}

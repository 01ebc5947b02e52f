// One poll of one relay node over its HTTP API. /health decides whether the node is up; the other
// endpoints are read defensively (a missing or malformed answer becomes a `problem`, never a throw)
// so that a half-upgraded or misbehaving node still shows what it can.
// May touch: the network (GETs to the node's API), nothing else.
import { getText } from './http.ts';
import { parsePrometheus } from './prometheus.ts';
import { zeroCounters } from './stats.ts';
import { OUTCOMES, type Counters, type CumulativeHistogram, type DomainQueue, type EgressPath, type LaneQueue, type PathLane, type Reading, type ShapingAction, type SuspendedDomain } from './types.ts';

export class NodeDown extends Error {
  override name = 'NodeDown';
}

async function text(base: string, path: string, signal: AbortSignal): Promise<string> {
  try {
    return await getText(new URL(path, base), signal);
  } catch (err) {
    throw new NodeDown(`GET ${path}: ${(err as Error).message}`);
  }
}

function json(path: string, body: string): any {
  try {
    return JSON.parse(body);
  } catch {
    throw new NodeDown(`GET ${path}: not JSON`);
  }
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const isObject = (v: unknown): v is Record<string, any> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isText = (v: unknown): v is string => typeof v === 'string';
const texts = (v: unknown): string[] => (Array.isArray(v) ? v.filter(isText) : []);

function readQueue(body: any): Reading['queue'] {
  if (!isObject(body) || !isObject(body.lanes)) throw new Error('no "lanes" object');
  const lanes: Record<string, LaneQueue> = {};
  for (const [lane, v] of Object.entries(body.lanes)) {
    if (!isObject(v)) continue;
    lanes[lane] = {
      queued: isCount(v.queued) ? v.queued : 0, deferred: isCount(v.deferred) ? v.deferred : 0,
      active: isCount(v.active) ? v.active : 0, oldestAgeSeconds: isCount(v.oldestAgeSeconds) ? v.oldestAgeSeconds : 0,
    };
  }
  return { lanes, total: isCount(body.total) ? body.total : 0 };
}

function readSummary(body: any): Record<string, DomainQueue[]> {
  if (!isObject(body) || !isObject(body.lanes)) throw new Error('no "lanes" object');
  const out: Record<string, DomainQueue[]> = {};
  for (const [lane, v] of Object.entries(body.lanes)) {
    if (!isObject(v) || !Array.isArray(v.domains)) continue;
    out[lane] = v.domains.filter((d: any) => isObject(d) && typeof d.domain === 'string' && isCount(d.total))
      .map((d: any) => ({ domain: d.domain, total: d.total }));
  }
  return out;
}

function readLane(lane: string, v: Record<string, any>): PathLane {
  return {
    lane, state: isText(v.state) ? v.state : 'active', limit: isCount(v.limit) ? v.limit : 0, busy: isCount(v.busy) ? v.busy : 0,
    queued: isCount(v.queued) ? v.queued : 0, pausedUntil: isText(v.pausedUntil) ? v.pausedUntil : undefined, reply: isText(v.reply) ? v.reply : undefined,
  };
}

function readAction(v: unknown): ShapingAction | undefined {
  if (!isObject(v) || !isText(v.action) || !isText(v.at)) return undefined;
  return {
    action: v.action, lanes: texts(v.lanes), at: v.at, until: isText(v.until) ? v.until : undefined,
    limit: isCount(v.limit) ? v.limit : undefined, reply: isText(v.reply) ? v.reply : '', by: isText(v.by) ? v.by : '',
  };
}

/** GET /api/v1/destinations: egress paths with their shaping state, and suspended domains. */
function readDestinations(body: any): { paths: EgressPath[]; suspended: SuspendedDomain[] } {
  if (!isObject(body) || !Array.isArray(body.paths)) throw new Error('no "paths" array');
  const paths = body.paths.filter((p: unknown) => isObject(p) && isText(p.egress) && isText(p.site)).map((p: Record<string, any>): EgressPath => ({
    egress: p.egress, site: p.site, profile: isText(p.profile) ? p.profile : '',
    connections: isCount(p.connections) ? p.connections : 0, maxConnections: isCount(p.maxConnections) ? p.maxConnections : 0,
    lanes: isObject(p.lanes) ? Object.entries(p.lanes).filter(([, v]) => isObject(v)).map(([lane, v]) => readLane(lane, v)) : [],
    destinations: texts(p.destinations), lastAction: Array.isArray(p.history) ? readAction(p.history.at(-1)) : undefined,
  }));
  const suspended = (Array.isArray(body.suspended) ? body.suspended : []).filter((s: unknown) => isObject(s) && isText(s.domain))
    .map((s: Record<string, any>) => ({ domain: s.domain, reason: isText(s.reason) ? s.reason : '', until: isText(s.until) ? s.until : '' }));
  return { paths, suspended };
}

function readMetrics(text: string): { counters: Record<string, Counters>; latency: Record<string, CumulativeHistogram> } {
  const counters: Record<string, Counters> = {};
  const buckets: Record<string, [number, number][]> = {};
  for (const s of parsePrometheus(text, 'mailops_')) {
    const lane = s.labels.lane;
    if (lane === undefined) continue;
    const outcome = /^mailops_(\w+)_total$/.exec(s.name)?.[1] as (typeof OUTCOMES)[number] | undefined;
    if (outcome && (OUTCOMES as readonly string[]).includes(outcome)) {
      (counters[lane] ??= zeroCounters())[outcome] = s.value;
    } else if (s.name === 'mailops_delivery_latency_seconds_bucket') {
      const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
      if (!Number.isNaN(le)) (buckets[lane] ??= []).push([le, s.value]);
    }
  }
  const latency: Record<string, CumulativeHistogram> = {};
  for (const [lane, list] of Object.entries(buckets)) {
    list.sort((a, b) => a[0] - b[0]);
    latency[lane] = { le: list.map((b) => b[0]), counts: list.map((b) => b[1]) };
  }
  return { counters, latency };
}

/** Throws NodeDown when /health does not answer "ok"; otherwise returns what the node told. */
export async function pollNode(base: string, options: { timeoutMs: number; top: number }): Promise<Reading> {
  const signal = AbortSignal.timeout(options.timeoutMs);
  const health = json('/health', await text(base, '/health', signal));
  if (!isObject(health) || health.status !== 'ok') throw new NodeDown(`GET /health: status ${JSON.stringify(health?.status)}`);
  const reading: Reading = {
    at: Date.now(), uptimeSeconds: isCount(health.uptimeSeconds) ? health.uptimeSeconds : 0,
    lanes: Array.isArray(health.lanes) ? health.lanes.filter((l: unknown) => typeof l === 'string') : [], problems: [],
  };
  const part = async (path: string, read: (body: string) => void) => {
    try {
      read(await text(base, path, signal));
    } catch (err) {
      reading.problems.push(err instanceof NodeDown ? err.message : `GET ${path}: ${(err as Error).message}`);
    }
  };
  await Promise.all([
    part('/api/v1/queue', (body) => void (reading.queue = readQueue(json('/api/v1/queue', body)))),
    part(`/api/v1/queue/summary?top=${options.top}`, (body) => void (reading.domains = readSummary(json('/api/v1/queue/summary', body)))),
    part('/metrics', (body) => void Object.assign(reading, readMetrics(body))),
    part('/api/v1/destinations', (body) => void Object.assign(reading, readDestinations(json('/api/v1/destinations', body)))),
  ]);
  return reading;
}

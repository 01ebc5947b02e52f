// The dashboard's state across polls: per node its recent readings, health and event feed, and the
// depth history for the chart. `tick()` polls every node once (never two polls of one node at a
// time); `snapshot(view)` turns the state into plain data for either renderer. Egress paths are
// listed per node, never summed: each node shapes its own.
// May touch: the network through poll.ts and events.ts; no terminal, no files.
import { providerOf } from '../load/generate/recipients.ts';
import { EventFeed } from './events.ts';
import { formatEvent } from './event-format.ts';
import { pollNode } from './poll.ts';
import { baseline, laneRow, nodeLanes, sumLanes, type LaneTotals } from './stats.ts';
import type { DestinationState, DomainRow, EventLine, NodeRow, NodeStatus, PathRow, PathState, ProviderRow, Reading, Snapshot } from './types.ts';

export interface DashboardOptions {
  nodes: string[];
  intervalMs: number;
  /** How far back the depth chart reaches. */
  historyMs: number;
  /** Busiest destination domains to show. */
  top: number;
  /** Follow each node's event stream (the full-screen view does; --once does not). */
  events: boolean;
  /** Bearer token per node URL, for its event stream (which shows addresses) once it has an http.token. */
  tokens?: Record<string, string>;
  rateWindowMs?: number;
  latencyWindowMs?: number;
}

export const ALL = 'all';

/** Keeps the worse state and the later error of what several nodes (or domains) report. */
function worse(row: DomainRow | ProviderRow, state: DestinationState, error: string | undefined, errorAt: number | undefined): void {
  if (STATE_RANK[state] > STATE_RANK[row.state]) row.state = state;
  if (error && errorAt !== undefined && (row.lastErrorAt === undefined || errorAt > Date.parse(row.lastErrorAt))) {
    row.lastError = error;
    row.lastErrorAt = new Date(errorAt).toISOString();
  }
}
const EVENT_LINES = 50;
const STATE_RANK: Record<DestinationState, number> = { waiting: 0, ok: 1, deferring: 2, failing: 3, paused: 4 };
/** How much a lane's path state holds its mail back; a state this dashboard does not know ranks as active. */
const PATH_STATE_RANK: Record<string, number> = { active: 0, reduced: 1, paused: 2, suspended: 3 };
const pathRank = (state: PathState) => PATH_STATE_RANK[state] ?? 0;

class NodeState {
  readonly url: string;
  readonly name: string;
  readonly feed?: EventFeed;
  readings: Reading[] = [];
  status: NodeStatus = 'connecting';
  error?: string;
  downSince?: number;
  pollMs?: number;
  busy = false;
  /** Depth per lane at each tick of the dashboard (null while down), aligned with Dashboard.ticks. */
  depths: (Record<string, number> | null)[] = [];

  constructor(url: string, events: boolean, token?: string) {
    this.url = url;
    const u = new URL(url);
    this.name = u.host + (u.pathname === '/' ? '' : u.pathname);
    if (events) this.feed = new EventFeed(url, token);
  }

  get up(): boolean {
    return this.status === 'up' || this.status === 'partial';
  }
}

export class Dashboard {
  readonly options: Required<DashboardOptions>;
  readonly nodes: NodeState[];
  readonly ticks: number[] = [];
  private readonly keepReadings: number;
  private readonly keepTicks: number;

  constructor(options: DashboardOptions) {
    this.options = {
      rateWindowMs: Math.max(10_000, 2 * options.intervalMs),
      latencyWindowMs: Math.max(60_000, 2 * options.intervalMs),
      tokens: {},
      ...options,
    };
    this.nodes = options.nodes.map((url) => new NodeState(url, options.events, options.tokens?.[url]));
    this.keepReadings = Math.ceil(Math.max(this.options.rateWindowMs, this.options.latencyWindowMs) / options.intervalMs) + 2;
    this.keepTicks = Math.max(2, Math.ceil(options.historyMs / options.intervalMs) + 1);
  }

  /** "all" and each node's URL, in the order n/p cycles through them. */
  get views(): string[] {
    return this.nodes.length > 1 ? [ALL, ...this.nodes.map((n) => n.url)] : [this.nodes[0].url];
  }

  start(): void {
    for (const node of this.nodes) node.feed?.start();
  }

  stop(): void {
    for (const node of this.nodes) node.feed?.stop();
  }

  async tick(): Promise<void> {
    const timeoutMs = Math.max(1000, Math.min(this.options.intervalMs, 10_000));
    await Promise.all(this.nodes.map((node) => (node.busy ? undefined : this.poll(node, timeoutMs))));
    this.ticks.push(Date.now());
    for (const node of this.nodes) {
      const queue = node.up ? node.readings.at(-1)?.queue : undefined;
      node.depths.push(queue ? Object.fromEntries(Object.entries(queue.lanes).map(([l, q]) => [l, q.queued + q.deferred + q.active])) : null);
      if (node.depths.length > this.keepTicks) node.depths.shift();
    }
    if (this.ticks.length > this.keepTicks) this.ticks.shift();
  }

  private async poll(node: NodeState, timeoutMs: number): Promise<void> {
    node.busy = true;
    const started = Date.now();
    try {
      // more domains than shown, so that the provider totals cover most of the queue
      const reading = await pollNode(node.url, { timeoutMs, top: Math.max(this.options.top, 50) });
      const last = node.readings.at(-1);
      if (last && reading.uptimeSeconds < last.uptimeSeconds) node.readings = []; // restarted: counters began again
      node.readings.push(reading);
      if (node.readings.length > this.keepReadings) node.readings.shift();
      node.status = reading.problems.length ? 'partial' : 'up';
      node.error = reading.problems.join('; ') || undefined;
      node.downSince = undefined;
    } catch (err) {
      node.status = 'down';
      node.error = (err as Error).message;
      node.downSince ??= started;
    } finally {
      node.pollMs = Date.now() - started;
      node.busy = false;
    }
  }

  private inView(view: string): NodeState[] {
    return view === ALL ? this.nodes : this.nodes.filter((n) => n.url === view);
  }

  snapshot(view = this.views[0]): Snapshot {
    const now = Date.now();
    const nodes = this.inView(view);
    const up = nodes.filter((n) => n.up);
    const lanes = new Map<string, LaneTotals>();
    for (const node of up) sumLanes(lanes, nodeLanes(node.readings, this.options.rateWindowMs, this.options.latencyWindowMs));
    return {
      at: new Date(now).toISOString(),
      view,
      rateWindowSeconds: this.span(up, this.options.rateWindowMs),
      latencyWindowSeconds: this.span(up, this.options.latencyWindowMs),
      nodes: this.nodes.map((n) => this.nodeRow(n)),
      lanes: [...lanes].map(([lane, t]) => laneRow(lane, t)),
      messages: up.reduce((sum, n) => sum + (n.readings.at(-1)?.queue?.total ?? 0), 0),
      ...this.destinations(up, now),
      ...this.paths(up),
      events: this.eventLines(nodes),
      history: this.history(nodes),
    };
  }

  /** Seconds actually covered by a window (less than configured until enough readings exist). */
  private span(nodes: NodeState[], windowMs: number): number {
    let ms = 0;
    for (const node of nodes) {
      const cur = node.readings.at(-1);
      const base = cur && baseline(node.readings, cur, windowMs);
      if (cur && base) ms = Math.max(ms, cur.at - base.at);
    }
    return Math.round(ms / 100) / 10;
  }

  private nodeRow(n: NodeState): NodeRow {
    const last = n.readings.at(-1);
    return {
      url: n.url, name: n.name, status: n.status, error: n.error,
      downSince: n.downSince === undefined ? undefined : new Date(n.downSince).toISOString(),
      uptimeSeconds: n.up ? last?.uptimeSeconds : undefined, messages: n.up ? last?.queue?.total : undefined,
      pollMs: n.pollMs, events: n.feed?.status ?? 'off', eventsDropped: n.feed?.dropped || undefined,
      eventsRefused: n.feed?.refused,
    };
  }

  private destinations(nodes: NodeState[], now: number): Pick<Snapshot, 'domains' | 'providers'> {
    const domains = this.domainRows(nodes, now);
    const providers = new Map<string, ProviderRow>();
    for (const d of domains) {
      let p = providers.get(d.provider);
      if (!p) providers.set(d.provider, (p = { provider: d.provider, domains: 0, lanes: [], queued: 0, deferrals: 0, state: 'waiting' }));
      p.domains++;
      p.queued += d.queued;
      p.deferrals += d.deferrals;
      for (const lane of d.lanes) if (!p.lanes.includes(lane)) p.lanes.push(lane);
      worse(p, d.state, d.lastError, d.lastErrorAt === undefined ? undefined : Date.parse(d.lastErrorAt));
    }
    return {
      domains: domains.slice(0, this.options.top),
      providers: [...providers.values()].sort((a, b) => b.queued - a.queued || a.provider.localeCompare(b.provider)),
    };
  }

  /**
   * Every egress path of the nodes in view, held back or busy first. Not summed over nodes: each
   * node shapes its own paths, and a pause on one node says nothing about another's.
   */
  private paths(nodes: NodeState[]): Pick<Snapshot, 'paths' | 'suspended'> {
    const paths: PathRow[] = [];
    const suspended: Snapshot['suspended'] = [];
    for (const node of nodes) {
      const reading = node.readings.at(-1);
      for (const path of reading?.paths ?? []) {
        const state = path.lanes.reduce((worst, l) => (pathRank(l.state) > pathRank(worst) ? l.state : worst), 'active');
        paths.push({ ...path, node: node.name, state, queued: path.lanes.reduce((sum, l) => sum + l.queued, 0) });
      }
      for (const s of reading?.suspended ?? []) suspended.push({ ...s, node: node.name });
    }
    paths.sort((a, b) => pathRank(b.state) - pathRank(a.state) || b.queued - a.queued || b.connections - a.connections ||
      a.site.localeCompare(b.site) || a.egress.localeCompare(b.egress) || a.node.localeCompare(b.node));
    return { paths, suspended };
  }

  /** Every domain the nodes' summaries name, with state from the event feeds, busiest first. */
  private domainRows(nodes: NodeState[], now: number): DomainRow[] {
    const rows = new Map<string, DomainRow>();
    for (const node of nodes) {
      for (const [lane, list] of Object.entries(node.readings.at(-1)?.domains ?? {})) {
        for (const { domain, total } of list) {
          let row = rows.get(domain);
          if (!row) rows.set(domain, (row = { domain, provider: providerOf(domain), lanes: [], queued: 0, deferrals: 0, state: 'waiting' }));
          if (!row.lanes.includes(lane)) row.lanes.push(lane);
          row.queued += total;
        }
      }
    }
    for (const row of rows.values()) {
      for (const node of nodes) {
        const feed = node.feed;
        if (!feed) continue;
        const info = feed.domains.get(row.domain);
        row.deferrals += feed.recentDeferrals(row.domain, now);
        const pause = feed.pauses.get(`mx:${row.domain}`);
        let state: DestinationState = row.state;
        if (pause && pause.until > now) {
          state = 'paused';
          row.pausedUntil = new Date(pause.until).toISOString();
        } else if (info?.lastOutcome) {
          state = info.lastOutcome === 'delivered' ? 'ok' : info.lastOutcome === 'deferred' ? 'deferring' : 'failing';
        }
        worse(row, state, info?.lastError, info?.lastErrorAt);
      }
    }
    return [...rows.values()].sort((a, b) => b.queued - a.queued || a.domain.localeCompare(b.domain));
  }

  private eventLines(nodes: NodeState[]): EventLine[] {
    const lines: EventLine[] = [];
    for (const node of nodes) {
      for (const raw of node.feed?.lines.slice(-EVENT_LINES) ?? []) lines.push((raw.shown ??= formatEvent(node.name, raw.line)));
    }
    return lines.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0)).slice(-EVENT_LINES);
  }

  private history(nodes: NodeState[]): Snapshot['history'] {
    const lanes: Record<string, (number | null)[]> = {};
    const offset = (n: NodeState) => this.ticks.length - n.depths.length;
    this.ticks.forEach((_, i) => {
      let anyUp = false;
      const sums: Record<string, number> = {};
      for (const node of nodes) {
        const depths = node.depths[i - offset(node)];
        if (!depths) continue;
        anyUp = true;
        for (const [lane, d] of Object.entries(depths)) sums[lane] = (sums[lane] ?? 0) + d;
      }
      for (const lane of new Set([...Object.keys(lanes), ...Object.keys(sums)])) {
        (lanes[lane] ??= new Array(i).fill(null)).push(anyUp ? (sums[lane] ?? 0) : null);
      }
    });
    return { times: [...this.ticks], lanes };
  }
}

// The dashboard's data model: what one poll of a node yields, and the snapshot that both the
// full-screen view and `mailops top --once` render. Plain data, no terminal concerns.
// May touch: nothing (types and the list of outcome counters only).

// The relay's outcome counters (mailops_<outcome>_total per lane), kept apart from the relay's own
// list in src/relay/metrics.ts because the dashboard also reads relays of other versions.
export const OUTCOMES = ['received', 'delivered', 'deferred', 'failed', 'expired', 'requeued'] as const;
export type Outcome = (typeof OUTCOMES)[number];
/** Counted only by newer relays: absent (not 0) for a node whose /metrics lacks it, shown as "-". */
type NewerOutcome = 'requeued';
export type Counters = Record<Exclude<Outcome, NewerOutcome>, number> & Partial<Record<NewerOutcome, number>>;

export interface LaneQueue { queued: number; deferred: number; active: number; oldestAgeSeconds: number }

/** Cumulative latency histogram of one lane: upper bounds in seconds (last may be Infinity) and counts. */
export interface CumulativeHistogram { le: number[]; counts: number[] }

export interface DomainQueue { domain: string; total: number }

/** Shaping state of a lane on an egress path: active | reduced | paused | suspended (kept as the node says it). */
export type PathState = string;

/** One lane's share of an egress path (GET /api/v1/destinations, `paths[].lanes`). */
export interface PathLane {
  lane: string;
  state: PathState;
  /** Connections the lane may keep busy on the path (lowered by backoff). */
  limit: number;
  /** Connections busy with the lane's messages. */
  busy: number;
  /** Jobs of the lane in the path's ready queue. */
  queued: number;
  /** ISO time, or "until resumed"; only while paused or suspended. */
  pausedUntil?: string;
  reply?: string;
}

/** A shaping action the node took on a path (the latest of `paths[].history`). */
export interface ShapingAction {
  action: string;
  /** The lanes whose sending the action changed. */
  lanes: string[];
  at: string;
  until?: string;
  /** The connection limit a `reduce` set. */
  limit?: number;
  reply: string;
  by: string;
}

/** An egress path: a sending address (`egress`) × a destination site, as one node shapes it. */
export interface EgressPath {
  egress: string;
  site: string;
  profile: string;
  connections: number;
  maxConnections: number;
  lanes: PathLane[];
  /** Destinations (e.g. "mx:gmail.com") recently sent to over the path. */
  destinations: string[];
  lastAction?: ShapingAction;
}

/** A domain the operator (or a rule) suspended on a node. */
export interface SuspendedDomain { domain: string; reason: string; until: string }

/** One poll of one node. Fields stay undefined when that endpoint gave no usable answer. */
export interface Reading {
  at: number;
  uptimeSeconds: number;
  lanes: string[];
  queue?: { lanes: Record<string, LaneQueue>; total: number };
  counters?: Record<string, Counters>;
  latency?: Record<string, CumulativeHistogram>;
  /** Recipients in the queue per lane and destination domain (the busiest few per lane). */
  domains?: Record<string, DomainQueue[]>;
  /** Egress paths with their shaping state (relays from before egress paths have none). */
  paths?: EgressPath[];
  suspended?: SuspendedDomain[];
  /** Endpoints that failed, with why; the node still counts as up if /health answered. */
  problems: string[];
}

export interface Quantiles { p50: number; p99: number; count: number }

export interface LaneRow extends LaneQueue {
  lane: string;
  /** queued + deferred + active recipients. */
  depth: number;
  /** Per second over the rate window; undefined until two readings exist. */
  rates?: Counters;
  totals?: Counters;
  /** Over the latency window (seconds); undefined without deliveries in it. */
  latency?: Quantiles;
  latencySinceStart?: Quantiles;
}

export type DestinationState = 'ok' | 'deferring' | 'failing' | 'paused' | 'waiting';

export interface DomainRow {
  domain: string;
  provider: string;
  lanes: string[];
  /** Recipients in the queue for this domain (queued + deferred + active). */
  queued: number;
  /** Deferrals seen on the event stream in the last five minutes. */
  deferrals: number;
  state: DestinationState;
  pausedUntil?: string;
  lastError?: string;
  lastErrorAt?: string;
}

/** Destinations grouped by mailbox provider (the domains the summaries name). */
export interface ProviderRow {
  provider: string;
  domains: number;
  lanes: string[];
  queued: number;
  deferrals: number;
  state: DestinationState;
  lastError?: string;
  lastErrorAt?: string;
}

/** An egress path of one node in the snapshot, with its lanes' numbers summed. */
export interface PathRow extends EgressPath {
  /** The node's name: the shaping state is each node's own, so paths of several nodes stay apart. */
  node: string;
  /** The most severe state of its lanes. */
  state: PathState;
  /** Jobs in the path's ready queue over all lanes. */
  queued: number;
}

export interface SuspendedRow extends SuspendedDomain { node: string }

export type NodeStatus = 'connecting' | 'up' | 'partial' | 'down';

export interface NodeRow {
  url: string;
  name: string;
  status: NodeStatus;
  error?: string;
  /** ISO time since when the node has been down. */
  downSince?: string;
  uptimeSeconds?: number;
  /** Messages not finished on this node. */
  messages?: number;
  pollMs?: number;
  events: 'connected' | 'reconnecting' | 'off';
  /** Events the node dropped for this dashboard because it read too slowly. */
  eventsDropped?: number;
  /** HTTP status while the node refuses the event stream for want of its token. */
  eventsRefused?: number;
}

export interface EventLine { time: string; node: string; event: string; text: string }

export interface Snapshot {
  at: string;
  /** "all" (aggregate over the nodes that are up) or a node's URL. */
  view: string;
  rateWindowSeconds: number;
  latencyWindowSeconds: number;
  nodes: NodeRow[];
  lanes: LaneRow[];
  messages: number;
  /** The busiest --top destination domains. */
  domains: DomainRow[];
  /** All domains in the nodes' summaries, grouped by provider. */
  providers: ProviderRow[];
  /** Every egress path of the nodes in view: paused or reduced first, then those with queued work. */
  paths: PathRow[];
  suspended: SuspendedRow[];
  events: EventLine[];
  /** Queue depth per lane at each tick of the chart window, oldest first (null: node down). */
  history: { times: number[]; lanes: Record<string, (number | null)[]> };
}

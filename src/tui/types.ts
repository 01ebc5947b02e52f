// The dashboard's data model: what one poll of a node yields, and the snapshot that both the
// full-screen view and `mailops top --once` render. Plain data, no terminal concerns.

export const OUTCOMES = ['received', 'delivered', 'deferred', 'failed', 'expired'] as const;
export type Outcome = (typeof OUTCOMES)[number];
export type Counters = Record<Outcome, number>;

export interface LaneQueue { queued: number; deferred: number; active: number; oldestAgeSeconds: number }

/** Cumulative latency histogram of one lane: upper bounds in seconds (last may be Infinity) and counts. */
export interface CumulativeHistogram { le: number[]; counts: number[] }

export interface DomainQueue { domain: string; total: number }

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
  events: EventLine[];
  /** Queue depth per lane at each tick of the chart window, oldest first (null: node down). */
  history: { times: number[]; lanes: Record<string, (number | null)[]> };
}

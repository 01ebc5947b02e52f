// The relay's resolved configuration: what the rest of the code reads. Every duration is in
// milliseconds and every size in bytes here; the YAML accepts human units (see config/load.ts).
import type { HostPort } from '../util/units.ts';
import type { BouncesConfig, DkimKeyConfig, LaneEgress, ShapingConfig } from './sending-types.ts';
import type { InboundConfig } from './inbound.ts';
import type { LogConfig, TenantConfig } from './logs.ts';

export interface RetrySchedule { initial: number; max: number; factor: number }

export interface LaneConfig {
  name: string;
  /** Index in priority order: 0 is served first. */
  priority: number;
  /** Delivery connections this lane may use in total. */
  concurrency: number;
  /** Connections per destination that lower-priority lanes may not take from this lane. */
  reserve: number;
  retry: RetrySchedule;
  lifetime: number;
  /** Smarthost for every message of this lane (routes for a domain still win). */
  route?: HostPort;
  /** Source address and HELO name for this lane's delivery connections. */
  egress?: LaneEgress;
}

export interface ClassifyRule {
  lane: string;
  user?: string;
  sender?: string;
  senderDomain?: string;
  listener?: string;
}

export interface AuthUser { username: string; password: string }

/** When failed AUTH attempts slow down and then lock out, per client address and per user name. */
export interface AuthFailuresConfig {
  /** Failures after which each answer waits `delay`, one `delay` longer with every further failure. */
  delayAfter: number;
  delay: number;
  /** Failures that lock the address (or the user name) out for `lockout`: AUTH gets 421 4.7.0. */
  lockoutAfter: number;
  lockout: number;
  /** Failures older than this are forgotten. */
  window: number;
}

export interface Route { domain: string; smarthost: HostPort }

export interface RelayConfig {
  smtp: {
    listen: HostPort[];
    hostname: string;
    maxMessageSize: number;
    relayNetworks: string[];
    tls: { key?: string; cert?: string };
    auth: { users: AuthUser[] };
    authFailures: AuthFailuresConfig;
    maxRecipients: number;
    maxConnections: number;
    /** Of maxConnections, slots that only clients in relayNetworks and authenticated clients may take. */
    reservedConnections: number;
    maxConnectionsPerIp: number;
    /** Per /24 (IPv4) or /64 (IPv6), for clients outside relayNetworks. */
    maxConnectionsPerNetwork: number;
    idleTimeout: number;
    /** From the first byte of a command line to its end. */
    commandDeadline: number;
    /** Bytes per second that message data must average (a stall may last idleTimeout). */
    minDataRate: number;
    /** Stress mode: while open sessions reach `threshold` x maxConnections, these shorter limits apply. */
    stress: { threshold: number; idleTimeout: number; commandDeadline: number };
    maxHeaderSize: number;
    /** Load balancers (CIDR) whose connections start with a PROXY header naming the real client. */
    proxy: string[];
  };
  http: { listen: HostPort; token?: string };
  spool: { dir: string; commitInterval: number; commitBatch: number };
  lanes: LaneConfig[];
  classify: { header: string; default: string; rules: ClassifyRule[] };
  routes: Route[];
  delivery: {
    smarthost?: HostPort;
    port: number;
    maxConnectionsPerDestination: number;
    messagesPerConnection: number;
    connectTimeout: number;
    commandTimeout: number;
    idleTimeout: number;
    /** How long a destination that could not be reached is left alone before the next try. */
    unreachableBackoff: number;
    dnsServers: string[];
  };
  /** The event log and the delivery-log stores (config/logs.ts). */
  log: LogConfig;
  /** Who sent a message, for the delivery logs' tenant views (config/logs.ts); empty: no tenants. */
  tenants: TenantConfig[];
  dkim: DkimKeyConfig[];
  bounces: BouncesConfig;
  shaping: ShapingConfig;
  /** Absent for a single node. */
  cluster?: ClusterConfig;
  /** The MX listener for local domains (relay/inbound/); absent: none. */
  inbound?: InboundConfig;
}

/** One node of a cluster: limits, pauses, suspensions, the suppression list and the node registry shared in Redis. */
export interface ClusterConfig {
  redis: string;
  /** This node's name, unique in the cluster (default: the host name). */
  node: string;
  /** Lanes this node accepts mail for (a pool per lane behind the load balancer); default all. */
  lanes: string[];
  /** The API URL other nodes and the tools use for this node (default: from http.listen). */
  advertise?: string;
  /** How long a connection lease outlives a node that stopped renewing it. */
  leaseTtl: number;
  /** How often the node beats in the registry (it counts as down after five missed beats). */
  heartbeat: number;
}

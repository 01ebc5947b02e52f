// The relay's resolved configuration: what the rest of the code reads. Every duration is in
// milliseconds and every size in bytes here; the YAML accepts human units (see config/load.ts).
import type { HostPort } from '../util/units.ts';
import type { BouncesConfig, DkimKeyConfig, LaneEgress, ShapingConfig } from './sending-types.ts';

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

export interface Route { domain: string; smarthost: HostPort }

export interface RelayConfig {
  smtp: {
    listen: HostPort[];
    hostname: string;
    maxMessageSize: number;
    relayNetworks: string[];
    tls: { key?: string; cert?: string };
    auth: { users: AuthUser[] };
    maxRecipients: number;
    maxConnections: number;
    maxConnectionsPerIp: number;
    idleTimeout: number;
    maxHeaderSize: number;
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
  log: { file?: string };
  dkim: DkimKeyConfig[];
  bounces: BouncesConfig;
  shaping: ShapingConfig;
}

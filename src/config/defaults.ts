// Embedded defaults: `mailops relay start` with no config runs on these, needing nothing else.
import { hostname } from 'node:os';
import { shapingDefaults } from './sending.ts';

export const DEFAULT_LANE_NAMES = ['transactional', 'member', 'bulk'] as const;

/** The defaults in the same shape and units as a YAML config file, so that both go through one validator. */
export function defaultConfigDocument(): Record<string, unknown> {
  return {
    smtp: {
      listen: '127.0.0.1:2525',
      hostname: hostname(),
      maxMessageSize: '25MB',
      relayNetworks: ['127.0.0.0/8', '::1/128'],
      tls: {},
      auth: { users: [] },
      authFailures: { delayAfter: 3, delay: '1s', lockoutAfter: 10, lockout: '15m', window: '15m' },
      maxRecipients: 1000,
      maxConnections: 1000,
      // reservedConnections: a tenth of maxConnections unless set (config/admission.ts)
      maxConnectionsPerIp: 100,
      maxConnectionsPerNetwork: 200,
      idleTimeout: '5m',
      commandDeadline: '1m',
      minDataRate: 500,
      stress: { threshold: 0.8, idleTimeout: '10s', commandDeadline: '10s' },
      maxHeaderSize: '256KB',
      proxy: [],
    },
    http: { listen: '127.0.0.1:8025' },
    spool: { dir: './var/spool', commitInterval: '0ms', commitBatch: 500 },
    lanes: {
      transactional: { concurrency: 20, reserve: 2, retry: { initial: '1m', max: '1h', factor: 2 }, lifetime: '1d' },
      member: { concurrency: 50, reserve: 1, retry: { initial: '1m', max: '1h', factor: 2 }, lifetime: '5d' },
      bulk: { concurrency: 100, reserve: 0, retry: { initial: '1m', max: '1h', factor: 2 }, lifetime: '5d' },
    },
    classify: { header: 'X-Mailops-Lane', default: 'member', rules: [] },
    routes: [],
    delivery: {
      port: 25,
      maxConnectionsPerDestination: 20,
      messagesPerConnection: 100,
      connectTimeout: '30s',
      commandTimeout: '5m',
      idleTimeout: '5s',
      unreachableBackoff: '30s',
      dnsServers: [],
    },
    log: { tenantHeader: 'X-Mailops-Tenant', store: { retention: '7d', maxSize: '1GB' } },
    tenants: [],
    dkim: [],
    bounces: {},
    shaping: shapingDefaults(),
  };
}

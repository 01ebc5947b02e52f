// The delivery logs' configuration (src/logs/): `log` (the event log's file, the local record
// store's retention, the central PostgreSQL store) and `tenants` (who sent a message, and the
// token that reads that tenant's records). Types and readers in one place; load.ts calls them.
// Every problem names its key path (`tenants[1].token`, `log.postgres.url`).
import type { Reader } from './reader.ts';

export interface TenantConfig {
  name: string;
  /** Envelope sender domains (and their subdomains) whose mail is this tenant's. */
  senderDomains: string[];
  /** Authenticated SMTP users whose mail is this tenant's. */
  users: string[];
  /** Bearer token that reads this tenant's records, counts and graphs, and nothing else. */
  token: string;
}

export interface PostgresLogConfig {
  /** postgres://user:password@host:port/database */
  url: string;
  /** Whole day partitions older than this are dropped. */
  retention: number;
  /** Day partitions made ahead of today. */
  partitionsAhead: number;
  /** Records per shipped batch (one INSERT). */
  batch: number;
}

export interface LogConfig {
  /** The JSON event lines: this file, else standard output. */
  file?: string;
  /** Header a generator may set to name the message's tenant (removed before delivery). */
  tenantHeader: string;
  /** The node's own record store (`<spool.dir>/logs.sqlite`): oldest records go past either bound. */
  store: { retention: number; maxSize: number };
  /** The central store of a cluster; absent: the node's own store answers queries. */
  postgres?: PostgresLogConfig;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** `log`: the event log and its stores. */
export function readLog(root: Reader): LogConfig {
  const log = root.child('log');
  log.only(['file', 'tenantHeader', 'store', 'postgres']);
  const store = log.child('store');
  store.only(['retention', 'maxSize']);
  const tenantHeader = log.string('tenantHeader');
  if (tenantHeader && !/^[A-Za-z0-9-]+$/.test(tenantHeader)) log.report('tenantHeader', 'a header field name such as X-Mailops-Tenant');
  const retention = store.duration('retention');
  if (retention < 3_600_000) store.report('retention', 'at least 1h');
  const maxSize = store.size('maxSize');
  if (maxSize < 1 << 20) store.report('maxSize', 'at least 1MB');
  return { file: log.optionalString('file'), tenantHeader, store: { retention, maxSize }, postgres: readPostgres(log) };
}

function readPostgres(log: Reader): PostgresLogConfig | undefined {
  if (log.doc.postgres === undefined || log.doc.postgres === null) return undefined;
  const pg = log.child('postgres');
  pg.only(['url', 'retention', 'partitionsAhead', 'batch']);
  const url = pg.string('url');
  if (url && !/^postgres(ql)?:\/\/[^\s]+$/.test(url)) pg.report('url', 'a postgres:// URL such as postgres://mailops:secret@10.0.0.9:5432/mailops');
  const retention = pg.doc.retention === undefined ? 30 * 86_400_000 : pg.duration('retention');
  if (pg.doc.retention !== undefined && retention < 86_400_000) pg.report('retention', 'at least 1d (partitions hold a day each)');
  return {
    url, retention,
    partitionsAhead: pg.doc.partitionsAhead === undefined ? 3 : pg.int('partitionsAhead', 1, 60),
    batch: pg.doc.batch === undefined ? 5000 : pg.int('batch', 100, 50_000),
  };
}

/** `tenants`: a list of {name, senderDomains, users, token}; a domain, a user, a name and a token belong to one tenant only. */
export function readTenants(root: Reader, httpToken: string | undefined): TenantConfig[] {
  const names = new Map<string, string>();
  const domains = new Map<string, string>();
  const users = new Map<string, string>();
  const tokens = new Map<string, string>();
  return root.readers('tenants').map((tenant) => {
    tenant.only(['name', 'senderDomains', 'users', 'token']);
    const name = tenant.string('name');
    if (name && !NAME.test(name)) tenant.report('name', 'a tenant name of lower-case letters, digits, ".", "-" and "_"');
    // `what` undefined: a secret, not shown in the message
    const claim = (seen: Map<string, string>, key: string, value: string, what?: string) => {
      const owner = seen.get(value);
      if (owner !== undefined && owner !== tenant.path) tenant.reportText(key, what ? `${what} ${JSON.stringify(value)} is already ${owner}'s` : `is the same as ${owner}'s`);
      seen.set(value, tenant.path);
    };
    if (name) claim(names, 'name', name, 'the name');
    const senderDomains = tenant.stringList('senderDomains').map((d) => d.toLowerCase().replace(/^\.|\.$/g, ''));
    senderDomains.forEach((d, i) => claim(domains, `senderDomains[${i}]`, d, 'the sender domain'));
    const tenantUsers = tenant.stringList('users');
    tenantUsers.forEach((u, i) => claim(users, `users[${i}]`, u, 'the user'));
    const token = tenant.string('token');
    if (token && token.length < 16) tenant.reportText('token', 'expected a token of at least 16 characters (it is a password)');
    else if (token && token === httpToken) tenant.reportText('token', 'is the same as http.token (the operator\'s token, which reads every tenant)');
    else if (token) claim(tokens, 'token', token);
    return { name, senderDomains, users: tenantUsers, token };
  });
}

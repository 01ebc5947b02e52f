// Loads the relay configuration: embedded defaults, then the YAML file, then command-line flags.
// The result is validated as a whole; every problem found is reported in one ConfigError, each
// naming the key path and the bad value.
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { ADMISSION_KEYS, readAdmission } from './admission.ts';
import { defaultConfigDocument } from './defaults.ts';
import { ConfigError } from './errors.ts';
import { ConfigProblems, isDoc, merge, Reader } from './reader.ts';
import { readBounces, readDkim, readEgress, readShaping } from './sending.ts';
import { readLog, readTenants } from './logs.ts';
import type { AuthFailuresConfig, ClassifyRule, ClusterConfig, LaneConfig, RelayConfig } from './types.ts';
import { hostname } from 'node:os';
import { cidrList } from '../util/network.ts';
import { readInbound, withInboundLane } from './inbound.ts';

export interface ConfigOverrides {
  smtp?: string;
  http?: string;
  spool?: string;
  smarthost?: string;
  routes?: string[];
}

export function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${file}: cannot read config file (${(err as Error).message})`);
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length) throw new ConfigError(doc.errors.map((error) => `${file}: invalid YAML: ${error.message}`));
  const value = doc.toJS() ?? {};
  if (!isDoc(value)) throw new ConfigError(`${file}: the config must be a YAML mapping`);
  return value;
}

export function loadRelayConfig(file?: string, overrides: ConfigOverrides = {}): RelayConfig {
  const fromFile = file ? readConfigFile(file) : {};
  const flags: Record<string, unknown> = {};
  const flagDoc = (path: string[], value: unknown) => {
    let node = flags;
    for (const key of path.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>;
    node[path[path.length - 1]] = value;
  };
  if (overrides.smtp) flagDoc(['smtp', 'listen'], overrides.smtp);
  if (overrides.http) flagDoc(['http', 'listen'], overrides.http);
  if (overrides.spool) flagDoc(['spool', 'dir'], overrides.spool);
  if (overrides.smarthost) flagDoc(['delivery', 'smarthost'], overrides.smarthost);
  let doc = merge(merge(defaultConfigDocument(), fromFile), flags);
  const source = file ?? 'config';
  const config = validate(doc, source);
  // --route flags come after the file's routes and win over them (first match is used).
  for (const route of overrides.routes ?? []) {
    const [domain, target] = route.split('=');
    const reader = new Reader({ domain, smarthost: target }, '--route', '--route');
    if (!domain || !target) reader.fail('smarthost', 'DOMAIN=HOST:PORT');
    config.routes.unshift({ domain: domain.toLowerCase(), smarthost: reader.hostPort('smarthost', 25) });
  }
  return config;
}

/** Reads the whole document, then throws one ConfigError with every problem found, if any. */
function validate(doc: Record<string, unknown>, source: string): RelayConfig {
  const problems = new ConfigProblems();
  let config: RelayConfig;
  try {
    config = read(new Reader(doc, '', source, problems));
  } catch (err) {
    // a check that cannot go on throws; what was found before it is still reported
    if (err instanceof ConfigError) err.problems.forEach((problem) => problems.add(problem, problem));
    // anything else that breaks is most likely a stand-in for a value already reported
    if (!problems.size) throw err;
  }
  problems.throwIfAny();
  return config!;
}

function read(root: Reader): RelayConfig {
  const source = root.source;
  root.only(['smtp', 'http', 'spool', 'lanes', 'classify', 'routes', 'delivery', 'log', 'tenants', 'dkim', 'bounces', 'shaping', 'cluster', 'inbound']);

  const smtp = root.child('smtp');
  smtp.only(['listen', 'hostname', 'maxMessageSize', 'relayNetworks', 'tls', 'auth', 'authFailures', 'maxRecipients', 'maxConnections',
    'maxConnectionsPerIp', 'idleTimeout', 'maxHeaderSize', 'proxy', ...ADMISSION_KEYS]);
  const listenValue = smtp.doc.listen;
  // one listener or a list of them; each bad one is named by its place (smtp.listen[1])
  const listen = Array.isArray(listenValue)
    ? listenValue.map((value, i) => smtp.readerFor({ [`listen[${i}]`]: value }, 'smtp').hostPort(`listen[${i}]`))
    : [smtp.hostPort('listen')];
  const relayNetworks = smtp.stringList('relayNetworks');
  const cidrs = cidrList(relayNetworks);
  if ('bad' in cidrs) smtp.reportText('relayNetworks', `${JSON.stringify(cidrs.bad)} is not a CIDR network`);
  const proxy = smtp.stringList('proxy');
  const proxyCidrs = cidrList(proxy);
  if ('bad' in proxyCidrs) smtp.reportText('proxy', `${JSON.stringify(proxyCidrs.bad)} is not a CIDR network`);
  const tls = smtp.child('tls');
  tls.only(['key', 'cert']);
  const tlsKey = tls.optionalString('key');
  const tlsCert = tls.optionalString('cert');
  if (Boolean(tlsKey) !== Boolean(tlsCert)) tls.report(tlsKey ? 'cert' : 'key', 'both smtp.tls.key and smtp.tls.cert, or neither');
  const auth = smtp.child('auth');
  auth.only(['users']);
  const users = auth.readers('users').map((user) => {
    user.only(['username', 'password']);
    return { username: user.string('username'), password: user.string('password') };
  });

  const http = root.child('http');
  http.only(['listen', 'token']);
  const spool = root.child('spool');
  spool.only(['dir', 'commitInterval', 'commitBatch']);

  // with inbound configured, an inbound lane when the file names none (config/inbound.ts)
  const lanes = readLanes(root.readerFor(withInboundLane(root.doc) ?? {}, root.key('lanes')));
  const laneNames = lanes.map((lane) => lane.name);
  const laneName = (reader: Reader, key: string): string => {
    const name = reader.string(key);
    if (!laneNames.includes(name)) reader.report(key, `one of the lanes (${laneNames.join(', ')})`);
    return name;
  };

  const classify = root.child('classify');
  classify.only(['header', 'default', 'rules']);
  const rules = classify.readers('rules').map((rule): ClassifyRule => {
    rule.only(['lane', 'user', 'sender', 'senderDomain', 'listener']);
    const out: ClassifyRule = {
      lane: laneName(rule, 'lane'),
      user: rule.optionalString('user'),
      sender: rule.optionalString('sender')?.toLowerCase(),
      senderDomain: rule.optionalString('senderDomain')?.toLowerCase(),
      listener: rule.optionalString('listener'),
    };
    if (!out.user && !out.sender && !out.senderDomain && !out.listener) rule.report('lane', 'a rule with user, sender, senderDomain or listener');
    return out;
  });

  const routes = root.readers('routes').map((route) => {
    route.only(['domain', 'smarthost']);
    return { domain: route.string('domain').toLowerCase(), smarthost: route.hostPort('smarthost', 25) };
  });

  const delivery = root.child('delivery');
  delivery.only(['smarthost', 'port', 'maxConnectionsPerDestination', 'messagesPerConnection', 'connectTimeout',
    'commandTimeout', 'idleTimeout', 'unreachableBackoff', 'dnsServers']);
  const inbound = readInbound(root, laneNames);

  return {
    smtp: {
      listen,
      hostname: smtp.string('hostname'),
      maxMessageSize: smtp.size('maxMessageSize'),
      relayNetworks,
      tls: { key: tlsKey, cert: tlsCert },
      auth: { users },
      authFailures: readAuthFailures(smtp.child('authFailures')),
      maxRecipients: smtp.int('maxRecipients', 1),
      maxConnections: smtp.int('maxConnections', 1),
      maxConnectionsPerIp: smtp.int('maxConnectionsPerIp', 1),
      idleTimeout: smtp.duration('idleTimeout'),
      ...readAdmission(smtp, smtp.int('maxConnections', 1), smtp.duration('idleTimeout')),
      maxHeaderSize: smtp.size('maxHeaderSize'),
      proxy,
    },
    http: { listen: http.hostPort('listen'), token: http.optionalString('token') },
    spool: { dir: spool.string('dir'), commitInterval: spool.duration('commitInterval'), commitBatch: spool.int('commitBatch', 1, 100_000) },
    lanes,
    classify: { header: classify.string('header'), default: laneName(classify, 'default'), rules },
    // the mailbox servers of the inbound domains, after the file's own routes
    routes: [...routes, ...(inbound?.deliver ?? []).map((d) => ({ domain: d.domain, smarthost: d.to }))],
    delivery: {
      smarthost: delivery.optionalHostPort('smarthost', 25),
      port: delivery.int('port', 1, 65535),
      maxConnectionsPerDestination: delivery.int('maxConnectionsPerDestination', 1),
      messagesPerConnection: delivery.int('messagesPerConnection', 1),
      connectTimeout: delivery.duration('connectTimeout'),
      commandTimeout: delivery.duration('commandTimeout'),
      idleTimeout: delivery.duration('idleTimeout'),
      unreachableBackoff: delivery.duration('unreachableBackoff'),
      dnsServers: delivery.stringList('dnsServers'),
    },
    log: readLog(root),
    tenants: readTenants(root, http.optionalString('token')),
    dkim: readDkim(root),
    bounces: readBounces(root, laneNames),
    shaping: readShaping(root, delivery.duration('idleTimeout')),
    cluster: readCluster(root, laneNames),
    inbound,
  };
}

/** `cluster`: absent (or null) for a single node; with `redis`, this node shares limits, lists and its presence there. */
function readCluster(root: Reader, laneNames: string[]): ClusterConfig | undefined {
  if (root.doc.cluster === undefined || root.doc.cluster === null) return undefined;
  const cluster = root.child('cluster');
  cluster.only(['redis', 'node', 'lanes', 'advertise', 'leaseTtl', 'heartbeat']);
  const redis = cluster.string('redis');
  if (!/^rediss?:\/\/[^\s]+$/.test(redis)) cluster.report('redis', 'a redis:// or rediss:// URL');
  const node = cluster.doc.node === undefined ? hostname() : cluster.string('node');
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(node)) cluster.report('node', 'a node name of letters, digits, dot, - and _');
  const lanes = cluster.doc.lanes === undefined ? laneNames : cluster.stringList('lanes');
  lanes.forEach((lane, i) => {
    if (!laneNames.includes(lane)) cluster.reportText(`lanes[${i}]`, `expected one of the lanes (${laneNames.join(', ')}), got ${JSON.stringify(lane)}`);
  });
  const advertise = cluster.optionalString('advertise');
  if (advertise !== undefined && !/^https?:\/\/[^\s/]+/.test(advertise)) cluster.report('advertise', 'the http:// URL where other nodes and tools reach this node\'s API');
  return {
    redis, node, lanes, advertise,
    leaseTtl: cluster.doc.leaseTtl === undefined ? 30_000 : cluster.duration('leaseTtl'),
    heartbeat: cluster.doc.heartbeat === undefined ? 2_000 : cluster.duration('heartbeat'),
  };
}

/** `smtp.authFailures`: when failed logins slow down and then lock out (receive/auth-guard.ts). */
function readAuthFailures(failures: Reader): AuthFailuresConfig {
  failures.only(['delayAfter', 'delay', 'lockoutAfter', 'lockout', 'window']);
  const lockoutAfter = failures.int('lockoutAfter', 1);
  return {
    delayAfter: failures.int('delayAfter', 1, lockoutAfter),
    delay: failures.duration('delay'),
    lockoutAfter,
    lockout: failures.duration('lockout'),
    window: failures.duration('window'),
  };
}

/** What a lane that the config adds (beyond the embedded three) starts from. */
const LANE_DEFAULTS = { concurrency: 50, reserve: 0, retry: { initial: '1m', max: '1h', factor: 2 }, lifetime: '5d' };

/** Lanes in priority order: the mapping's order unless a lane sets `priority` (lower first). */
function readLanes(lanes: Reader): LaneConfig[] {
  const entries = Object.keys(lanes.doc).filter((name) => lanes.doc[name] !== null);
  if (entries.length === 0) lanes.report('', 'at least one lane');
  const out = entries.map((name, index) => {
    if (!/^[a-z][a-z0-9_-]*$/.test(name)) lanes.reportText(name, 'lane names are lower-case letters, digits, - and _');
    const given = lanes.doc[name];
    const lane = lanes.readerFor(isDoc(given) ? merge(LANE_DEFAULTS, given) : given, lanes.key(name));
    lane.only(['priority', 'concurrency', 'reserve', 'retry', 'lifetime', 'route', 'egress']);
    const retry = lane.child('retry');
    retry.only(['initial', 'max', 'factor']);
    return {
      name,
      // an explicit priority wins a tie with a lane that only has its position
      priority: lane.doc.priority === undefined ? index : lane.int('priority', 0) - 0.5,
      concurrency: lane.int('concurrency', 1),
      reserve: lane.doc.reserve === undefined ? 0 : lane.int('reserve', 0),
      retry: {
        initial: retry.duration('initial'),
        max: retry.duration('max'),
        factor: retry.doc.factor === undefined ? 2 : retry.number('factor', 1),
      },
      lifetime: lane.duration('lifetime'),
      route: lane.optionalHostPort('route', 25),
      egress: readEgress(lane),
    };
  });
  return out.sort((a, b) => a.priority - b.priority).map((lane, priority) => ({ ...lane, priority }));
}

// The simulated internet of `mailops sink --dns` as data: the routes' `mx` lists and the `dns`
// section of the sink's profiles (src/sink/profiles.yaml): TTL, each provider's address, the
// hosting pool for every other domain, names that do not exist, the lab's own hosts. Parsing and
// validation only, each error naming its key; src/sink/dns.ts turns this into DNS answers and
// listeners. Touches nothing but its arguments.
import { isIP } from 'node:net';
import { ConfigError } from '../config/errors.ts';
import type { Reader } from '../config/reader.ts';

/** One MX record; the host may hold placeholders ({domain}, {domain-dashed} in routes, {n} in hosting). */
export interface MxTemplate { priority: number; host: string }

export interface HostingPool {
  /** Number of hosting mail servers; a domain is hashed onto one of them. */
  servers: number;
  /** MX records of server {n}. */
  mx: MxTemplate[];
  /** Address of server {n}. */
  address: string;
  /** Which domains (not matched by a route with mx) exist and are hosted. */
  domains: RegExp;
}

export interface InternetData {
  ttlSeconds: number;
  /** Profile name → the address its mail servers answer on. */
  addresses: Map<string, string>;
  hosting: HostingPool | undefined;
  /** Names that do not exist even though hosting.domains matches them. */
  nxdomain: RegExp | undefined;
  /** The lab's own hosts (relay, egress addresses): name → address, forward and reverse. */
  hosts: Map<string, string>;
}

/** Domain patterns, `*` matching any characters, as one case-insensitive anchored expression. */
export function domainGlob(patterns: string[]): RegExp {
  const glob = patterns.map((d) => d.toLowerCase().replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*'));
  return new RegExp(`^(?:${glob.join('|')})$`);
}

const LABEL = '[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?';
const HOST_NAME = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})+$`);

/** A host name of two labels or more (what a mail domain or an MX host looks like). */
export function isHostName(name: string): boolean {
  return HOST_NAME.test(name);
}

/** Fills {name} placeholders; `values` holds every placeholder allowed. */
export function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{([a-z-]+)\}/g, (_, name: string) => values[name]);
}

/** The placeholders of a template that are not in `allowed`. */
function unknownPlaceholders(template: string, allowed: string[]): string[] {
  return [...template.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]).filter((name) => !allowed.includes(name));
}

/**
 * MX records written as in a zone file, "PREFERENCE HOST" (or just "HOST": preference 10), hosts
 * with the placeholders in `allowed`. `require` names a placeholder every host must use.
 */
export function readMx(r: Reader, key: string, allowed: string[], require?: string): MxTemplate[] {
  const items = r.stringList(key);
  if (items.length === 0) r.fail(key, 'a non-empty list of "PREFERENCE HOST" entries');
  return items.map((item, i) => {
    const at = `${r.source}: ${r.key(key)}[${i}]`;
    const m = /^\s*(?:(\d{1,5})\s+)?(\S+)\s*$/.exec(item);
    if (!m || Number(m[1] ?? 10) > 65535) throw new ConfigError(`${at}: expected "PREFERENCE HOST" (e.g. "10 mx.example.com"), got ${JSON.stringify(item)}`);
    const host = m[2].toLowerCase().replace(/\.$/, '');
    const unknown = unknownPlaceholders(host, allowed);
    if (unknown.length) throw new ConfigError(`${at}: unknown placeholder {${unknown[0]}} (known here: ${allowed.map((a) => `{${a}}`).join(', ') || 'none'})`);
    if (require && !host.includes(`{${require}}`)) throw new ConfigError(`${at}: every host needs {${require}}, got ${JSON.stringify(item)}`);
    if (!isHostName(fill(host, { domain: 'example.test', 'domain-dashed': 'example-test', n: '1' }))) {
      throw new ConfigError(`${at}: ${JSON.stringify(m[2])} is not a host name`);
    }
    return { priority: Number(m[1] ?? 10), host };
  });
}

function address(r: Reader, key: string): string {
  const value = r.doc[key];
  if (typeof value !== 'string' || !isIP(value)) r.fail(key, 'an IPv4 or IPv6 address');
  return value;
}

/** The `dns` section; `profiles`: the known profile names. */
export function readInternet(root: Reader, profiles: string[]): InternetData {
  const dns = root.child('dns');
  dns.only(['ttl', 'addresses', 'hosting', 'nxdomain', 'hosts']);
  const ttlMs = dns.doc.ttl === undefined ? 300_000 : dns.duration('ttl');
  if (ttlMs % 1000 !== 0 || ttlMs / 1000 > 2 ** 31 - 1) dns.fail('ttl', 'a whole number of seconds, e.g. 300s');

  const addresses = new Map<string, string>();
  const owner = new Map<string, string>(); // address → what uses it, for clashes
  const claim = (ip: string, what: string, r: Reader, key: string) => {
    const other = owner.get(ip);
    if (other) throw new ConfigError(`${r.source}: ${r.key(key)}: ${ip} is already the address of ${other}`);
    owner.set(ip, what);
  };
  const byProfile = dns.child('addresses');
  for (const name of Object.keys(byProfile.doc)) {
    if (!profiles.includes(name)) throw new ConfigError(`${byProfile.source}: ${byProfile.key(name)}: unknown profile (known: ${profiles.join(', ')})`);
    const ip = address(byProfile, name);
    claim(ip, `profile ${name}`, byProfile, name);
    addresses.set(name, ip);
  }

  let hosting: HostingPool | undefined;
  if (dns.doc.hosting !== undefined && dns.doc.hosting !== null && dns.doc.hosting !== false) {
    const h = dns.child('hosting');
    h.only(['servers', 'mx', 'address', 'domains']);
    const servers = h.int('servers', 1, 254);
    const mx = readMx(h, 'mx', ['n'], 'n');
    const template = h.string('address');
    if (!template.includes('{n}')) h.fail('address', 'an address with {n}, e.g. "127.0.2.{n}"');
    for (let n = 1; n <= servers; n++) {
      const ip = fill(template, { n: String(n) });
      if (!isIP(ip)) throw new ConfigError(`${h.source}: ${h.key('address')}: server ${n} gets ${JSON.stringify(ip)}, not an IP address`);
      claim(ip, `hosting server ${n}`, h, 'address');
    }
    const domains = h.doc.domains === undefined ? ['*'] : h.stringList('domains');
    hosting = { servers, mx, address: template, domains: domainGlob(domains) };
  }

  const nx = dns.stringList('nxdomain');
  const hosts = new Map<string, string>();
  const lab = dns.child('hosts');
  for (const name of Object.keys(lab.doc)) {
    if (!isHostName(name.toLowerCase())) throw new ConfigError(`${lab.source}: ${lab.key(name)}: not a host name`);
    hosts.set(name.toLowerCase(), address(lab, name));
  }
  return { ttlSeconds: ttlMs / 1000, addresses, hosting, nxdomain: nx.length ? domainGlob(nx) : undefined, hosts };
}


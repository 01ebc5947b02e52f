// The simulated internet of `mailops sink --dns`: turns the profiles' routes `mx` and `dns` section
// (internet.ts) into the table of mail servers (one per provider profile, one per hosting server,
// each with its own address) and into DNS answers: MX for every simulated mail domain, A for
// every MX host and lab host, PTR for every server and lab address, NXDOMAIN for the rest.
// Answers are computed when asked, so any number of corporate domains costs nothing up front.
// Starts the DNS server (src/util/dns-server.ts); touches only that server's sockets.
import { isIP } from 'node:net';
import { ConfigError } from '../config/errors.ts';
import { startDnsServer, reverseName, type DnsServer, type RecordSet } from '../util/dns-server.ts';
import type { HostPort } from '../util/units.ts';
import { fill, isHostName, type MxTemplate } from './internet.ts';
import type { ProfileSet, Route } from './profiles.ts';
import { hash32 } from './random.ts';

/** One simulated mail server: where it answers and which profile it plays. */
export interface MailServer {
  /** The provider's profile name, or "hosting-N" for hosting server N. */
  name: string;
  profile: string;
  address: string;
  /** Its MX host names (templated hosts named for the route's first plain domain); the first is its PTR name. */
  hosts: string[];
}

type Mx = { priority: number; exchange: string };

function escape(text: string): string {
  return text.replace(/[.+?^$()|[\]\\*]/g, '\\$&');
}

/** A templated host ("{domain-dashed}.olc.protection.outlook.com") as an expression matching its instances. */
function hostPattern(template: string): RegExp {
  const parts = template.split(/(\{[a-z-]+\})/);
  const source = parts.map((p) => (p === '{domain}' ? '[a-z0-9_.-]+' : p === '{domain-dashed}' ? '[a-z0-9_-]+' : escape(p))).join('');
  return new RegExp(`^${source}$`);
}

function instantiate(mx: MxTemplate[], domain: string): Mx[] {
  const values = { domain, 'domain-dashed': domain.replace(/\./g, '-') };
  return mx.map((m) => ({ priority: m.priority, exchange: fill(m.host, values) }));
}

function addressRecord(ip: string): RecordSet {
  return isIP(ip) === 6 ? { AAAA: [ip] } : { A: [ip] };
}

export class SimulatedInternet {
  readonly servers: MailServer[] = [];
  readonly ttlSeconds: number;
  private readonly set: ProfileSet;
  /** Exact host names → address (MX hosts without placeholders, hosting hosts, lab hosts). */
  private readonly hostAddresses = new Map<string, string>();
  /** Templated MX hosts → address. */
  private readonly hostPatterns: { pattern: RegExp; address: string }[] = [];
  /** Reverse name → PTR name. */
  private readonly pointers = new Map<string, string>();
  /**
   * The zones the mail servers' hosts live in (a host minus its first label: hosting.mailops.test,
   * olc.protection.outlook.com): other names below them do not exist, as on the internet, rather
   * than being hosted mail domains.
   */
  private readonly serverZones = new Set<string>();

  /** Throws ConfigError when a route cannot be served (no mx, or no address for its profile). */
  constructor(set: ProfileSet) {
    this.set = set;
    const internet = set.internet;
    this.ttlSeconds = internet.ttlSeconds;
    const hosting = internet.hosting;
    const ownHost = (host: string, address: string, route: string) => {
      const other = this.hostAddresses.get(host);
      if (other !== undefined && other !== address) throw new ConfigError(`profiles: ${route}: MX host ${host} would resolve to both ${other} and ${address}`);
      this.hostAddresses.set(host, address);
    };

    const byProfile = new Map<string, MailServer>();
    for (const route of set.routes) {
      if (!route.mx) {
        if (route.profile === set.defaultProfile && hosting) continue; // hosted like unrouted domains
        throw new ConfigError(`profiles: ${route.key} (profile ${route.profile}): no mx: with --dns every route needs its mail exchangers ("mx: [\\"10 mx.example.com\\"]")` +
          (hosting ? '' : ', and dns.hosting is off'));
      }
      const address = internet.addresses.get(route.profile);
      if (!address) throw new ConfigError(`profiles: dns.addresses.${route.profile}: missing: ${route.key} gives mail exchangers for profile ${route.profile}, which needs an address`);
      let server = byProfile.get(route.profile);
      if (!server) {
        server = { name: route.profile, profile: route.profile, address, hosts: [] };
        byProfile.set(route.profile, server);
        this.servers.push(server);
      }
      const example = route.domains.find((d) => !d.includes('*'));
      for (const m of route.mx) {
        if (m.host.includes('{')) {
          this.hostPatterns.push({ pattern: hostPattern(m.host), address });
          if (example) server.hosts.push(instantiate([m], example)[0].exchange);
        } else {
          ownHost(m.host, address, route.key);
          server.hosts.push(m.host);
        }
      }
    }
    // A profile given an address but no route still answers there (reachable by address).
    for (const [profile, address] of internet.addresses) {
      if (!byProfile.has(profile)) this.servers.push({ name: profile, profile, address, hosts: [] });
    }
    if (hosting) {
      for (let n = 1; n <= hosting.servers; n++) {
        const address = fill(hosting.address, { n: String(n) });
        const hosts = hosting.mx.map((m) => fill(m.host, { n: String(n) }));
        for (const host of hosts) ownHost(host, address, 'dns.hosting.mx');
        this.servers.push({ name: `hosting-${n}`, profile: set.defaultProfile, address, hosts });
      }
    }
    for (const server of this.servers) if (server.hosts.length) this.pointers.set(reverseName(server.address), server.hosts[0]);
    const templates = [...set.routes.flatMap((r) => r.mx ?? []), ...(hosting?.mx ?? [])];
    for (const { host } of templates) this.serverZones.add(host.slice(host.indexOf('.') + 1));
    for (const [name, address] of internet.hosts) {
      this.hostAddresses.set(name, address);
      if (!this.pointers.has(reverseName(address))) this.pointers.set(reverseName(address), name);
    }
  }

  /** The hosting server (1-based) of a domain that no route with mx takes. */
  hostingServer(domain: string): number {
    return (hash32(0, domain) % this.set.internet.hosting!.servers) + 1;
  }

  /** The MX records of a mail domain (lower case, no trailing dot); undefined: it does not exist. */
  mx(domain: string): Mx[] | undefined {
    const internet = this.set.internet;
    if (!isHostName(domain) || internet.nxdomain?.test(domain)) return undefined;
    const route: Route | undefined = this.set.routes.find((r) => r.pattern.test(domain));
    if (route?.mx) return instantiate(route.mx, domain);
    for (let dot = domain.indexOf('.'); dot >= 0; dot = domain.indexOf('.', dot + 1)) {
      if (this.serverZones.has(domain.slice(dot + 1))) return undefined;
    }
    const hosting = internet.hosting;
    if (!hosting || (!route && !hosting.domains.test(domain))) return undefined;
    const n = String(this.hostingServer(domain));
    return hosting.mx.map((m) => ({ priority: m.priority, exchange: fill(m.host, { n }) }));
  }

  /** The records of a normalized DNS name (the DNS server's lookup); undefined: NXDOMAIN. */
  readonly records = (name: string): RecordSet | undefined => {
    const exact = this.hostAddresses.get(name);
    if (exact) return addressRecord(exact);
    for (const { pattern, address } of this.hostPatterns) if (pattern.test(name)) return addressRecord(address);
    if (name.endsWith('.in-addr.arpa') || name.endsWith('.ip6.arpa')) {
      const ptr = this.pointers.get(name);
      return ptr ? { PTR: [ptr] } : undefined;
    }
    const mx = this.mx(name);
    return mx ? { MX: mx } : undefined;
  };
}

/** Serves the simulated internet's DNS on `at` (port 0: ephemeral), UDP and TCP. */
export async function startInternetDns(internet: SimulatedInternet, at: HostPort): Promise<DnsServer> {
  try {
    return await startDnsServer({}, { host: at.host, port: at.port, ttl: internet.ttlSeconds, lookup: internet.records });
  } catch (err) {
    throw new ConfigError(`--dns ${at.host}:${at.port}: cannot listen (${(err as Error).message})`);
  }
}

// The inbound MX's DNS: one resolver on the relay's delivery.dnsServers (the system's when none
// are set), as deliver/mx.ts uses for delivery. It answers the DNSBL/DNSWL questions (with the
// TTL, for the cache in dnsbl.ts), the client's forward-confirmed reverse name (greylisting's
// domain allow entries), and mailauth's SPF, DKIM, DMARC and ARC questions (`mailauth`). Only
// the reverse names are cached here (an hour, bounded); mailauth's lookups are not: a caching
// resolver next to the node does that better, with the records' own TTLs.
// May touch: DNS queries to the configured servers; nothing else.
import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import { reverseName } from '../../util/dns-server.ts';

const NAME_TTL_MS = 3_600_000;
const MAX_NAMES = 50_000;

export class InboundDns {
  private readonly resolver: dns.Resolver;
  private readonly names = new Map<string, { until: number; name: Promise<string | undefined> }>();

  constructor(servers: string[], timeoutMs: number) {
    this.resolver = new dns.Resolver({ timeout: timeoutMs, tries: 2 });
    if (servers.length) this.resolver.setServers(servers);
  }

  /** A records of `name` with their TTLs (seconds); none when the name does not exist. Rejects on other failures. */
  async addresses(name: string): Promise<{ address: string; ttl: number }[]> {
    try {
      return await this.resolver.resolve4(name, { ttl: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTFOUND' || code === 'ENODATA') return [];
      throw err;
    }
  }

  /** The DNSBL query name of an address in a zone: 2.0.0.127.zen.example, nibbles for IPv6. */
  static listName(ip: string, zone: string): string {
    return `${reverseName(ip).replace(/\.(in-addr|ip6)\.arpa$/, '')}.${zone}`;
  }

  /** The client's reverse name when it resolves back to the client's address (FCrDNS), lower case. */
  verifiedName(ip: string): Promise<string | undefined> {
    const now = Date.now();
    const cached = this.names.get(ip);
    if (cached && cached.until > now) return cached.name;
    const name = this.lookUpName(ip);
    this.names.set(ip, { until: now + NAME_TTL_MS, name });
    if (this.names.size > MAX_NAMES) this.names.delete(this.names.keys().next().value!);
    return name;
  }

  private async lookUpName(ip: string): Promise<string | undefined> {
    try {
      const names = await this.resolver.reverse(ip);
      for (const name of names.slice(0, 3)) {
        const forward = isIP(ip) === 6 ? await this.resolver.resolve6(name) : await this.resolver.resolve4(name);
        if (forward.includes(ip)) return name.toLowerCase().replace(/\.$/, '');
      }
    } catch {
      // no name, or no answer: not verified
    }
    return undefined;
  }

  /** For mailauth's `resolver` option: dns.resolve semantics, with fresh error objects (mailauth annotates them). */
  readonly mailauth = async (name: string, type: string): Promise<unknown> => {
    try {
      return await this.resolver.resolve(name, type as 'TXT'); // any type: the overloads only differ in the answer's shape
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { hostname?: string };
      throw Object.assign(new Error(e.message), { code: e.code, hostname: e.hostname });
    }
  };

  cancel(): void {
    this.resolver.cancel();
  }
}

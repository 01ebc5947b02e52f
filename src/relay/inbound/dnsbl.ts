// The client's DNSBL/DNSWL score, postscreen's way: every site of inbound.dnsbl.sites is asked
// at once; a site that lists the address (an A record in 127.0.0.0/8 matching its filter, never
// 127.255.255.x, which is the list refusing the query) adds its weight, negative for an
// allowlist. A site that does not answer counts nothing (the mail is judged on the others).
// The score is remembered per address for the shortest TTL of the answers, held within
// inbound.dnsbl.minTtl and maxTtl (a "not listed" answer has no TTL to read: maxTtl), so a good
// MTA's queries are paid once an hour at most. Concurrent sessions of one address share the
// lookups in flight.
// May touch: DNS queries (through InboundDns); nothing else.
import type { DnsblSite, InboundConfig } from '../../config/inbound.ts';
import { InboundDns } from './dns.ts';

export interface DnsblScore {
  score: number;
  /** The sites that listed the address (with their weights, as configured). */
  listedBy: string[];
  /** Sites that did not answer. */
  unanswered: string[];
}

const MAX_CACHED = 100_000;

function matches(site: DnsblSite, address: string): boolean {
  if (!address.startsWith('127.') || address.startsWith('127.255.255.')) return false;
  if (!site.filter) return true;
  return address.split('.').map(Number).every((octet, i) => site.filter![i].some(([low, high]) => octet >= low && octet <= high));
}

export class Dnsbl {
  private readonly config: InboundConfig['dnsbl'];
  private readonly dns: InboundDns;
  private readonly now: () => number;
  private readonly cache = new Map<string, { until: number; score: Promise<DnsblScore> }>();

  constructor(config: InboundConfig['dnsbl'], dns: InboundDns, now: () => number = Date.now) {
    this.config = config;
    this.dns = dns;
    this.now = now;
  }

  get enabled(): boolean {
    return this.config.sites.length > 0;
  }

  /** The address's score (cached, see the header); true in `cached` when no query was sent for it. */
  score(ip: string): { score: Promise<DnsblScore>; cached: boolean } {
    const now = this.now();
    const known = this.cache.get(ip);
    if (known && known.until > now) return { score: known.score, cached: true };
    const entry = { until: now + this.config.maxTtl, score: Promise.resolve<DnsblScore>({ score: 0, listedBy: [], unanswered: [] }) };
    entry.score = this.lookUp(ip, (ttl) => { entry.until = Math.min(entry.until, now + ttl); });
    this.cache.set(ip, entry);
    if (this.cache.size > MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
    return { score: entry.score, cached: false };
  }

  private async lookUp(ip: string, shortenTo: (ttlMs: number) => void): Promise<DnsblScore> {
    const { minTtl, maxTtl } = this.config;
    const answers = await Promise.all(this.config.sites.map(async (site) => {
      try {
        const records = await this.dns.addresses(InboundDns.listName(ip, site.zone));
        const listing = records.filter((r) => matches(site, r.address));
        if (listing.length) shortenTo(Math.min(maxTtl, Math.max(minTtl, Math.min(...listing.map((r) => r.ttl * 1000)))));
        return { site, listed: listing.length > 0, answered: true };
      } catch {
        shortenTo(minTtl); // ask again soon rather than trust a score that lacks this site
        return { site, listed: false, answered: false };
      }
    }));
    return {
      score: answers.reduce((sum, a) => sum + (a.listed ? a.site.weight : 0), 0),
      listedBy: answers.filter((a) => a.listed).map((a) => a.site.text),
      unanswered: answers.filter((a) => !a.answered).map((a) => a.site.zone),
    };
  }
}

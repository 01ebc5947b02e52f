// Where mail for a domain goes: MX records in preference order (equal preferences shuffled to
// spread load), each resolved to its IPv4 and IPv6 addresses; no MX means the domain's own A/AAAA
// (RFC 5321 §5.1); a null MX (RFC 7505) or a non-existent domain is a permanent failure. Answers
// are cached for a while so that a newsletter to one provider costs one lookup, not millions.
import { promises as dns } from 'node:dns';

export interface NextHop { mx: string; address: string; port: number }

export type HopAnswer =
  | { ok: true; hops: NextHop[] }
  | { ok: false; permanent: boolean; code: number; reply: string };

const OK_TTL = 300_000;
const FAIL_TTL = 30_000;

function shuffled<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

export class MxResolver {
  private readonly resolver = new dns.Resolver({ timeout: 5000, tries: 2 });
  private readonly cache = new Map<string, { until: number; answer: Promise<HopAnswer>; settled?: HopAnswer }>();
  private readonly port: number;

  constructor(servers: string[], port: number) {
    if (servers.length) this.resolver.setServers(servers);
    this.port = port;
  }

  /** The cached answer when there is one that has arrived (no promise round for the common case). */
  peek(domain: string): HopAnswer | undefined {
    const cached = this.cache.get(domain);
    return cached && cached.until > Date.now() ? cached.settled : undefined;
  }

  hops(domain: string): Promise<HopAnswer> {
    const now = Date.now();
    const cached = this.cache.get(domain);
    if (cached && cached.until > now) return cached.answer;
    const answer = this.lookup(domain);
    const entry: { until: number; answer: Promise<HopAnswer>; settled?: HopAnswer } = { until: now + OK_TTL, answer };
    this.cache.set(domain, entry);
    void answer.then((a) => {
      entry.settled = a;
      if (!a.ok) entry.until = Date.now() + FAIL_TTL;
    });
    if (this.cache.size > 100_000) this.cache.delete(this.cache.keys().next().value!);
    return answer;
  }

  private async lookup(domain: string): Promise<HopAnswer> {
    let exchanges: string[];
    try {
      const records = await this.resolver.resolveMx(domain);
      if (records.length === 1 && (records[0].exchange === '' || records[0].exchange === '.')) {
        return { ok: false, permanent: true, code: 556, reply: `556 5.1.10 ${domain} does not accept mail (null MX)` };
      }
      const byPreference = new Map<number, string[]>();
      for (const r of records) byPreference.set(r.priority, [...(byPreference.get(r.priority) ?? []), r.exchange]);
      exchanges = [...byPreference.keys()].sort((a, b) => a - b).flatMap((p) => shuffled(byPreference.get(p)!));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTFOUND') return { ok: false, permanent: true, code: 550, reply: `550 5.1.2 Domain ${domain} not found` };
      if (code !== 'ENODATA') return { ok: false, permanent: false, code: 451, reply: `451 4.4.3 MX lookup for ${domain} failed (${code})` };
      exchanges = [domain]; // no MX: the domain itself is the implicit MX
    }
    const hops: NextHop[] = [];
    let lastError = '';
    for (const mx of exchanges) {
      const [v4, v6] = await Promise.all([this.addresses(mx, 4), this.addresses(mx, 6)]);
      if (typeof v4 === 'string') lastError = v4;
      for (const address of [...(Array.isArray(v4) ? v4 : []), ...(Array.isArray(v6) ? v6 : [])]) hops.push({ mx, address, port: this.port });
    }
    if (hops.length === 0) {
      return { ok: false, permanent: false, code: 451, reply: `451 4.4.3 No address for the mail exchangers of ${domain} (${exchanges.join(', ')})${lastError ? `: ${lastError}` : ''}` };
    }
    return { ok: true, hops };
  }

  private async addresses(host: string, family: 4 | 6): Promise<string[] | string> {
    try {
      return family === 4 ? await this.resolver.resolve4(host) : await this.resolver.resolve6(host);
    } catch (err) {
      return (err as NodeJS.ErrnoException).code ?? 'error';
    }
  }
}

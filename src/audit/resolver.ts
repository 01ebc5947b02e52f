// The audit's single DNS path: Node's resolver pointed at --dns servers (or the system's). Each
// name+type is asked once (the promise is memoised), so the checks can run in parallel and share
// answers, and mailauth gets the same resolver for SPF, DKIM and DMARC.
import { Resolver } from 'node:dns/promises';
import net from 'node:net';
import { ConfigError } from '../config/errors.ts';

export type RrType = 'A' | 'AAAA' | 'MX' | 'TXT' | 'PTR' | 'CNAME' | 'NS' | 'TLSA';

/** ok: records; none: the name or type does not exist; temperror: no usable answer. */
export type Lookup<T> =
  | { status: 'ok'; records: T[] }
  | { status: 'none'; code: string }
  | { status: 'temperror'; code: string };

export type MxRecord = { exchange: string; priority: number };

/** Errors that mean "no such name or record" (anything else is temporary). */
const NO_RECORD = new Set(['ENOTFOUND', 'ENODATA', 'EBADNAME']);
/** No server answered at all. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ETIMEOUT']);

export class DnsUnreachable extends ConfigError {
  override name = 'DnsUnreachable';
}

export interface AuditResolver {
  /** Raw memoised query: resolves like dns.promises.resolve, rejects with its errors. */
  resolve(name: string, type: RrType): Promise<unknown[]>;
  lookup<T = string>(name: string, type: RrType): Promise<Lookup<T>>;
  /** TXT records joined from their character-strings, keeping the strings for syntax checks. */
  txt(name: string): Promise<Lookup<string[]>>;
  /** For mailauth's `resolver` option: fresh error objects per call (mailauth annotates them). */
  mailauth: (name: string, type: string) => Promise<any>;
  /** Number of distinct questions sent. */
  readonly queries: number;
  servers(): string[];
  cancel(): void;
}

export interface ResolverOptions { servers?: string[]; timeoutMs?: number; tries?: number }

/** Parses "HOST", "HOST:PORT", "[V6]:PORT" into the form Resolver#setServers takes. */
export function parseDnsServer(value: string): string {
  const v6 = value.match(/^\[([^\]]+)\](?::(\d+))?$/);
  const [host, port] = v6 ? [v6[1], v6[2]] : value.includes(':') && net.isIPv6(value) ? [value, undefined] : value.split(':');
  const portNumber = port === undefined ? 53 : Number(port);
  if (!net.isIP(host ?? '') || !Number.isInteger(portNumber) || portNumber < 1 || portNumber > 65535) {
    throw new ConfigError(`--dns: expected IP or IP:PORT (IPv6 as [::1]:53), got ${JSON.stringify(value)}`);
  }
  return net.isIPv6(host) ? `[${host}]:${portNumber}` : `${host}:${portNumber}`;
}

export function createResolver(options: ResolverOptions = {}): AuditResolver {
  const resolver = new Resolver({ timeout: options.timeoutMs ?? 2000, tries: options.tries ?? 2 });
  if (options.servers?.length) resolver.setServers(options.servers.map(parseDnsServer));
  const cache = new Map<string, Promise<unknown[]>>();

  const resolve = (name: string, type: RrType): Promise<unknown[]> => {
    const key = `${type} ${name.toLowerCase().replace(/\.$/, '')}`;
    let answer = cache.get(key);
    if (!answer) {
      answer = resolver.resolve(name, type) as Promise<unknown[]>;
      answer.catch(() => undefined); // reported to each caller, never unhandled
      cache.set(key, answer);
    }
    return answer;
  };

  const lookup = async <T>(name: string, type: RrType): Promise<Lookup<T>> => {
    try {
      return { status: 'ok', records: (await resolve(name, type)) as T[] };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
      return NO_RECORD.has(code) ? { status: 'none', code } : { status: 'temperror', code };
    }
  };

  return {
    resolve,
    lookup,
    txt: (name) => lookup<string[]>(name, 'TXT'),
    mailauth: async (name, type) => {
      try {
        const records = await resolve(name, type as RrType);
        return records.map((r) => (Array.isArray(r) ? [...r] : typeof r === 'object' && r ? { ...r } : r));
      } catch (err) {
        const e = err as NodeJS.ErrnoException & { hostname?: string };
        throw Object.assign(new Error(e.message), { code: e.code, hostname: e.hostname });
      }
    },
    get queries() {
      return cache.size;
    },
    servers: () => resolver.getServers(),
    cancel: () => resolver.cancel(),
  };
}

/**
 * Asks the first question of an audit: if no server answers it at all, the audit cannot say
 * anything and stops (exit 2) instead of reporting every check as temperror.
 */
export async function assertReachable(dns: AuditResolver, name: string): Promise<void> {
  const answer = await dns.txt(name);
  if (answer.status === 'temperror' && UNREACHABLE.has(answer.code)) {
    throw new DnsUnreachable(`DNS unreachable: no answer from ${dns.servers().join(', ')} for ${name} TXT (${answer.code})`);
  }
}

/** Summary text for a temperror lookup. */
export function temp(name: string, type: string, code: string): string {
  return `temperror: ${name} ${type} (${code === 'ESERVFAIL' ? 'SERVFAIL' : code})`;
}

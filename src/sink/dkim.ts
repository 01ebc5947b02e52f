// Sampled DKIM verification of arriving mail (mailauth's dkimVerify), with public keys from a key
// map file or from a DNS server (a test's or a lab's, e.g. nsd on loopback). Runs after the
// reply, at most `maxInFlight` at a time; outcomes are counted in stats.dkim.
import { readFileSync } from 'node:fs';
import { promises as dns } from 'node:dns';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { parse } from 'yaml';
import { ConfigError } from '../config/errors.ts';
import { formatHostPort, type HostPort } from '../util/units.ts';
import { mulberry32 } from './random.ts';
import type { DkimSampler } from './smtp/session.ts';
import { DKIM_RESULTS, type DkimResult, type Stats } from './stats.ts';

export interface DkimOptions {
  /** Share of messages verified, 0..1. */
  sample: number;
  /** YAML/JSON map "selector._domainkey.example.com" → "v=DKIM1; k=rsa; p=...". */
  keys?: string;
  /** DNS server asked for the key records. */
  dns?: HostPort;
  maxInFlight?: number;
}

type Resolver = (name: string, rrtype: string) => Promise<string[][]>;

function notFound(name: string): Error {
  return Object.assign(new Error(`queryTxt ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
}

export function keyMapResolver(file: string): Resolver {
  let map: unknown;
  try {
    map = parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`--dkim-keys ${file}: cannot read the key map (${(err as Error).message})`);
  }
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw new ConfigError(`--dkim-keys ${file}: expected a mapping of "selector._domainkey.domain" to a DKIM key record`);
  }
  const keys = new Map<string, string>();
  for (const [name, value] of Object.entries(map)) {
    if (typeof value !== 'string') throw new ConfigError(`--dkim-keys ${file}: ${name}: expected a key record string such as "v=DKIM1; k=rsa; p=..."`);
    keys.set(name.toLowerCase().replace(/\.$/, ''), value);
  }
  return async (name, rrtype) => {
    const value = rrtype === 'TXT' ? keys.get(name.toLowerCase().replace(/\.$/, '')) : undefined;
    if (value === undefined) throw notFound(name);
    return [[value]];
  };
}

export function dnsResolver(server: HostPort): Resolver {
  const resolver = new dns.Resolver({ timeout: 2000, tries: 2 });
  resolver.setServers([formatHostPort(server)]);
  return async (name, rrtype) => {
    if (rrtype !== 'TXT') throw notFound(name);
    return resolver.resolveTxt(name);
  };
}

export function createDkimSampler(options: DkimOptions, stats: Stats, seed: number): DkimSampler {
  const resolver = options.keys ? keyMapResolver(options.keys) : options.dns ? dnsResolver(options.dns) : undefined;
  const random = mulberry32(seed ^ 0x9e3779b9);
  const maxInFlight = options.maxInFlight ?? 64;
  let inFlight = 0;
  return {
    sample() {
      if (options.sample <= 0 || random() >= options.sample) return false;
      if (inFlight >= maxInFlight) {
        stats.dkim.skipped++;
        return false;
      }
      return true;
    },
    verify(message) {
      inFlight++;
      stats.dkim.sampled++;
      dkimVerify(message, resolver ? { resolver } : {})
        .then((result) => {
          stats.dkim[outcome(result.results.map((r) => r.status?.result))]++;
        })
        .catch(() => stats.dkim.temperror++)
        .finally(() => inFlight--);
    },
  };
}

/** One outcome per message: pass when any signature passes, else the first signature's result. */
export function outcome(results: (string | undefined)[]): DkimResult {
  if (results.length === 0) return 'none';
  if (results.includes('pass')) return 'pass';
  const first = results[0] ?? 'none';
  return (DKIM_RESULTS as readonly string[]).includes(first) ? (first as DkimResult) : 'fail';
}

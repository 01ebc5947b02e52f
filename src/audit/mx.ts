// Can the From and Return-Path domains receive replies and bounces? MX (or the implicit MX of an
// A record), no null MX (RFC 7505), and at least one exchange that resolves.
import { result } from './report.ts';
import { temp } from './resolver.ts';
import type { AuditResolver, MxRecord } from './resolver.ts';
import type { CheckResult } from './types.ts';

export type MxState =
  | { kind: 'mx'; hosts: string[]; resolving: string[] }
  | { kind: 'implicit'; ips: string[] }
  | { kind: 'null'; detail: string }
  | { kind: 'none'; detail: string }
  | { kind: 'temperror'; detail: string };

export async function mxState(dns: AuditResolver, domain: string): Promise<MxState> {
  const mx = await dns.lookup<MxRecord>(domain, 'MX');
  if (mx.status === 'temperror') return { kind: 'temperror', detail: temp(domain, 'MX', mx.code) };
  if (mx.status === 'ok' && mx.records.length) {
    const sorted = [...mx.records].sort((a, b) => a.priority - b.priority);
    if (sorted.length === 1 && (sorted[0].exchange === '' || sorted[0].exchange === '.')) return { kind: 'null', detail: `${domain}: null MX "0 ." (RFC 7505), mail to it is refused` };
    const hosts = sorted.map((m) => m.exchange).filter((h) => h && h !== '.');
    const resolved = await Promise.all(hosts.map(async (h) => {
      const [a, aaaa] = await Promise.all([dns.lookup(h, 'A'), dns.lookup(h, 'AAAA')]);
      return a.status === 'ok' || aaaa.status === 'ok';
    }));
    return { kind: 'mx', hosts, resolving: hosts.filter((_, i) => resolved[i]) };
  }
  const a = await dns.lookup<string>(domain, 'A');
  if (a.status === 'temperror') return { kind: 'temperror', detail: temp(domain, 'A', a.code) };
  if (a.status === 'ok') return { kind: 'implicit', ips: a.records };
  return { kind: 'none', detail: `${domain}: no MX and no A record` };
}

export async function mxChecks(dns: AuditResolver, domains: string[]): Promise<{ results: CheckResult[]; states: Map<string, MxState> }> {
  const unique = [...new Set(domains.map((d) => d.toLowerCase()))];
  const states = new Map(await Promise.all(unique.map(async (d) => [d, await mxState(dns, d)] as const)));
  const out: CheckResult[] = [];
  for (const [domain, s] of states) {
    if (s.kind === 'temperror') out.push(result('mx-reachable', 'temperror', s.detail));
    else if (s.kind === 'null' || s.kind === 'none') out.push(result('mx-reachable', 'fail', `${s.detail}; replies and bounces cannot be delivered`));
    else if (s.kind === 'implicit') out.push(result('mx-reachable', 'pass', `${domain}: no MX, implicit MX via A ${s.ips.join(', ')}`));
    else if (!s.resolving.length) out.push(result('mx-reachable', 'fail', `${domain}: MX ${s.hosts.join(', ')} but none resolves to an address`));
    else out.push(result('mx-reachable', 'pass', `${domain}: MX ${s.hosts.join(', ')}`));
  }
  // Only the From domain (the first) has to publish postmaster@ and abuse@.
  const first = states.get(unique[0])!;
  const dom = unique[0];
  if (first.kind === 'temperror') out.push(result('role-addresses', 'temperror', first.detail));
  else if (first.kind === 'mx' && first.resolving.length || first.kind === 'implicit') out.push(result('role-addresses', 'info', `postmaster@${dom} and abuse@${dom} can be routed; whether they accept mail is not probed`));
  else out.push(result('role-addresses', 'warn', `postmaster@${dom} and abuse@${dom} cannot receive mail (no usable MX)`));
  return { results: out, states };
}

// DNS blocklists (RFC 5782): an IP is listed when <reversed-ip>.<zone> has an A record in
// 127.0.0.0/8, a domain when <domain>.<zone> does. 127.255.255.x answers are the list's own
// errors (e.g. Spamhaus refusing queries from public resolvers), not listings.
import { result } from './report.ts';
import { temp } from './resolver.ts';
import type { AuditResolver } from './resolver.ts';
import type { CheckResult } from './types.ts';

function reversedLabels(ip: string, rev: (ip: string) => string): string {
  return rev(ip).replace(/\.(in-addr|ip6)\.arpa$/, '');
}

export async function dnsblChecks(dns: AuditResolver, zones: string[], ips: string[], domains: string[], rev: (ip: string) => string): Promise<CheckResult[]> {
  if (!zones.length) return [result('ip-dnsbl', 'skip', 'no blocklist zone given (--dnsbl)')];
  const subjects = [
    ...ips.map((ip) => ({ label: ip, prefix: reversedLabels(ip, rev) })),
    ...[...new Set(domains)].map((d) => ({ label: d, prefix: d })),
  ];
  const queries = subjects.flatMap((s) => zones.map((zone) => ({ ...s, zone, name: `${s.prefix}.${zone}` })));
  const answers = await Promise.all(queries.map(async (q) => {
    const a = await dns.lookup<string>(q.name, 'A');
    if (a.status !== 'ok') return { q, a, reason: '' };
    const txt = await dns.txt(q.name);
    return { q, a, reason: txt.status === 'ok' ? txt.records.map((s) => s.join('')).join(' ') : '' };
  }));
  const out: CheckResult[] = [];
  for (const { q, a, reason } of answers) {
    if (a.status === 'temperror') out.push(result('ip-dnsbl', 'temperror', `${q.label} on ${q.zone}: ${temp(q.name, 'A', a.code)}`));
    else if (a.status === 'ok') {
      const codes = a.records.filter((ip) => ip.startsWith('127.'));
      if (codes.some((ip) => ip.startsWith('127.255.255.'))) out.push(result('ip-dnsbl', 'temperror', `${q.label} on ${q.zone}: the list refused the query (${codes.join(', ')})`));
      else if (codes.length) out.push(result('ip-dnsbl', 'warn', `${q.label} listed on ${q.zone} (${codes.join(', ')})${reason ? `: ${reason}` : ''}`));
    }
  }
  const listedOrErr = new Set(out.map((r) => r.summary.split(' ')[0]));
  const clean = subjects.filter((s) => !listedOrErr.has(s.label)).map((s) => s.label);
  if (clean.length) out.push(result('ip-dnsbl', 'pass', `not listed on ${zones.join(', ')}: ${clean.join(', ')}`));
  return out;
}

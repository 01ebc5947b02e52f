// Sending IPs and the HELO name: PTR, forward-confirmed reverse DNS, generic-looking names (the
// CSA technical examination looks for dial-up style names), and the EHLO name. mailauth has none.
import net from 'node:net';
import { result } from './report.ts';
import { temp } from './resolver.ts';
import type { AuditResolver } from './resolver.ts';
import type { CheckResult } from './types.ts';

export function reverseName(ip: string): string {
  if (net.isIPv4(ip)) return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
  return `${expandIPv6(ip).split('').reverse().join('.')}.ip6.arpa`;
}

export function expandIPv6(ip: string): string {
  const [head, tail] = ip.toLowerCase().split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => g.padStart(4, '0')).join('');
}

const GENERIC_WORDS = /(^|[.-])(dyn|dynamic|dhcp|dialup|dial|dsl|adsl|vdsl|xdsl|cable|pool|ppp|pppoe|client|clients|cust|customer|broadband|bb|res|resident|residential|user|users|modem|nat|unassigned|unknown|host|static|ip|dip|home|wifi|wlan|mobile|cpe|fiber|ftth)(?=\d|[.-]|$)/i;

/** Why a PTR name looks generic (an ISP's or cloud's default name), or undefined. */
export function genericReason(name: string, ip: string): string | undefined {
  const lower = name.toLowerCase();
  if (net.isIPv4(ip)) {
    const o = ip.split('.');
    const dec = [o.join('[.-]?'), [...o].reverse().join('[.-]?'), o.map((x) => x.padStart(3, '0')).join('[.-]?')];
    if (dec.some((re) => new RegExp(`(^|[^0-9])${re}([^0-9]|$)`).test(lower))) return 'contains the IP address';
    const hex = o.map((x) => Number(x).toString(16).padStart(2, '0')).join('');
    if (lower.includes(hex)) return 'contains the IP address in hex';
    if (lower.includes(o.slice(2).join('-')) && /\d+-\d+-\d+/.test(lower)) return 'contains dashed address octets';
  }
  const word = lower.match(GENERIC_WORDS);
  if (word) return `contains "${word[2]}"`;
  if ((lower.match(/\d/g)?.length ?? 0) >= 8) return 'is mostly digits';
  return undefined;
}

function inDomain(name: string, domain: string): boolean {
  const n = name.toLowerCase().replace(/\.$/, '');
  const d = domain.toLowerCase();
  return n === d || n.endsWith(`.${d}`);
}

async function addresses(dns: AuditResolver, name: string): Promise<{ ips: string[]; temperror?: string }> {
  const [a, aaaa] = await Promise.all([dns.lookup<string>(name, 'A'), dns.lookup<string>(name, 'AAAA')]);
  const ips = [...(a.status === 'ok' ? a.records : []), ...(aaaa.status === 'ok' ? aaaa.records : [])];
  const failed = [a, aaaa].find((x) => x.status === 'temperror');
  return { ips, temperror: failed && failed.status === 'temperror' ? temp(name, 'A/AAAA', failed.code) : undefined };
}

function sameIp(a: string, b: string): boolean {
  return net.isIPv6(a) && net.isIPv6(b) ? expandIPv6(a) === expandIPv6(b) : a === b;
}

export interface IpInput { dns: AuditResolver; ips: string[]; domains: string[]; helo?: string }

export async function ipChecks(input: IpInput): Promise<CheckResult[]> {
  const { dns, ips, domains } = input;
  const perIp = await Promise.all(ips.map((ip) => oneIp(dns, ip, domains)));
  const out = perIp.flatMap((r) => r.results);
  if (!ips.length) for (const id of ['ip-ptr', 'ip-fcrdns', 'ip-ptr-generic']) out.push(result(id, 'skip', 'no sending IP given (--ip)'));
  out.push(await heloCheck(dns, input.helo, ips, perIp.flatMap((r) => r.names)));
  return out;
}

async function oneIp(dns: AuditResolver, ip: string, domains: string[]): Promise<{ results: CheckResult[]; names: string[] }> {
  const rev = reverseName(ip);
  const ptr = await dns.lookup<string>(rev, 'PTR');
  if (ptr.status === 'temperror') return { results: ['ip-ptr', 'ip-fcrdns', 'ip-ptr-generic'].map((id) => result(id, 'temperror', `${ip}: ${temp(rev, 'PTR', ptr.code)}`)), names: [] };
  if (ptr.status === 'none' || !ptr.records.length) {
    return {
      results: [
        result('ip-ptr', 'fail', `${ip}: no PTR record at ${rev}`),
        result('ip-fcrdns', 'fail', `${ip}: no PTR name to confirm`),
        result('ip-ptr-generic', 'skip', `${ip}: no PTR name`),
      ],
      names: [],
    };
  }
  const names = ptr.records;
  const out = [result('ip-ptr', names.length > 1 ? 'warn' : 'pass', `${ip}: PTR ${names.join(', ')}${names.length > 1 ? ' (several PTR names; use one)' : ''}`)];
  const forward = await Promise.all(names.map((n) => addresses(dns, n)));
  const confirmed = names.filter((_, i) => forward[i].ips.some((a) => sameIp(a, ip)));
  const tempErr = forward.find((f) => f.temperror)?.temperror;
  if (confirmed.length) out.push(result('ip-fcrdns', 'pass', `${ip}: ${confirmed[0]} resolves back to ${ip}`));
  else if (tempErr) out.push(result('ip-fcrdns', 'temperror', `${ip}: ${tempErr}`));
  else out.push(result('ip-fcrdns', 'fail', `${ip}: PTR ${names[0]} resolves to ${forward[0].ips.join(', ') || 'nothing'}, not back to ${ip}`));

  const name = confirmed[0] ?? names[0];
  const generic = genericReason(name, ip);
  const own = domains.some((d) => inDomain(name, d));
  if (generic) out.push(result('ip-ptr-generic', 'warn', `${ip}: PTR ${name} looks generic (${generic}); use a name like mta1.${domains[0]}`));
  else if (!own) out.push(result('ip-ptr-generic', 'warn', `${ip}: PTR ${name} is not in ${domains.join(' or ')}`));
  else out.push(result('ip-ptr-generic', 'pass', `${ip}: PTR ${name} is specific and in ${domains.find((d) => inDomain(name, d))}`));
  return { results: out, names };
}

async function heloCheck(dns: AuditResolver, helo: string | undefined, ips: string[], ptrNames: string[]): Promise<CheckResult> {
  if (!helo) return result('helo-fqdn', 'skip', 'no HELO name given (--helo)');
  const labels = helo.replace(/\.$/, '').split('.');
  if (net.isIP(helo.replace(/^\[|\]$/g, '')) || labels.length < 2 || !labels.every((l) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(l))) {
    return result('helo-fqdn', 'warn', `HELO ${helo} is not a fully qualified domain name`);
  }
  const fwd = await addresses(dns, helo);
  if (fwd.temperror && !fwd.ips.length) return result('helo-fqdn', 'temperror', `HELO ${helo}: ${fwd.temperror}`);
  if (!fwd.ips.length) return result('helo-fqdn', 'warn', `HELO ${helo} does not resolve (no A/AAAA)`);
  const matchesPtr = ptrNames.some((n) => n.toLowerCase().replace(/\.$/, '') === helo.toLowerCase());
  if (!ips.length || matchesPtr) return result('helo-fqdn', 'pass', `HELO ${helo} resolves to ${fwd.ips.join(', ')}${matchesPtr ? ' and matches the PTR name' : ''}`);
  return result('helo-fqdn', 'info', `HELO ${helo} resolves to ${fwd.ips.join(', ')} but differs from the PTR name(s) ${ptrNames.join(', ') || '(none)'}`);
}

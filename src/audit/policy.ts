// Transport and brand records: MTA-STS (mailauth parses and fetches the policy), TLS-RPT, DANE
// TLSA and BIMI. All info severity: absence is reported, never failed.
import { fetchPolicy, validateMx } from 'mailauth/lib/mta-sts.js';
import { quote, result } from './report.ts';
import { temp } from './resolver.ts';
import type { AuditResolver } from './resolver.ts';
import { parseTags } from './tags.ts';
import type { CheckResult } from './types.ts';
import type { DmarcPolicy } from './dmarc.ts';

async function taggedRecord(dns: AuditResolver, name: string, version: RegExp): Promise<{ records: string[] } | { temperror: string }> {
  const txt = await dns.txt(name);
  if (txt.status === 'temperror') return { temperror: temp(name, 'TXT', txt.code) };
  return { records: txt.status === 'ok' ? txt.records.map((s) => s.join('')).filter((r) => version.test(r)) : [] };
}

export async function mtaStsCheck(dns: AuditResolver, domain: string, mxHosts: string[], fetch: boolean): Promise<CheckResult> {
  const name = `_mta-sts.${domain}`;
  const found = await taggedRecord(dns, name, /^v=STSv1\s*(;|$)/i);
  if ('temperror' in found) return result('mta-sts', 'temperror', found.temperror);
  if (!found.records.length) return result('mta-sts', 'info', `${domain}: no MTA-STS record at ${name}; inbound TLS is opportunistic`);
  if (found.records.length > 1) return result('mta-sts', 'info', `${domain}: ${found.records.length} records at ${name}, receivers ignore MTA-STS`);
  const id = parseTags(found.records[0]).tags.get('id');
  if (!id || !/^[a-z0-9]{1,32}$/i.test(id)) return result('mta-sts', 'info', `${name}: id= missing or invalid: ${quote(found.records[0])}`);
  if (!fetch) return result('mta-sts', 'pass', `${name}: ${quote(found.records[0])} (policy not fetched: --no-fetch)`);
  try {
    const policy = await fetchPolicy(domain, { resolver: dns.mailauth, timeout: 5000 });
    if (!policy) return result('mta-sts', 'info', `${name} present but mta-sts.${domain} has no address, the policy cannot be fetched`);
    const unmatched = mxHosts.filter((mx) => !validateMx(mx, policy).valid);
    const desc = `mode=${policy.mode} max_age=${policy.maxAge}`;
    if (unmatched.length) return result('mta-sts', 'info', `policy ${desc} does not cover MX ${unmatched.join(', ')}`);
    return result('mta-sts', policy.mode === 'enforce' ? 'pass' : 'info', `policy id=${id} ${desc} covers ${mxHosts.join(', ') || 'no MX'}`);
  } catch (err) {
    return result('mta-sts', 'info', `${name} present but the policy fetch failed: ${(err as Error).message}`);
  }
}

export async function tlsRptCheck(dns: AuditResolver, domain: string): Promise<CheckResult> {
  const name = `_smtp._tls.${domain}`;
  const found = await taggedRecord(dns, name, /^v=TLSRPTv1\s*(;|$)/i);
  if ('temperror' in found) return result('tls-rpt', 'temperror', found.temperror);
  if (!found.records.length) return result('tls-rpt', 'info', `${domain}: no TLS-RPT record at ${name}`);
  if (found.records.length > 1) return result('tls-rpt', 'info', `${name}: ${found.records.length} records, reporters ignore them`);
  const rua = parseTags(found.records[0]).tags.get('rua');
  const uris = (rua ?? '').split(',').map((u) => u.trim()).filter(Boolean);
  if (!uris.length || !uris.every((u) => /^(mailto:[^@\s]+@[^@\s]+|https:\/\/\S+)$/i.test(u))) return result('tls-rpt', 'info', `${name}: rua= missing or not mailto:/https: ${quote(found.records[0])}`);
  return result('tls-rpt', 'pass', `${name}: ${quote(found.records[0])}`);
}

export async function daneCheck(dns: AuditResolver, mxHosts: string[]): Promise<CheckResult> {
  if (!mxHosts.length) return result('dane', 'skip', 'no MX host to look up TLSA for');
  const answers = await Promise.all(mxHosts.map((h) => dns.lookup(`_25._tcp.${h}`, 'TLSA')));
  const withTlsa = mxHosts.filter((_, i) => answers[i].status === 'ok');
  // The resolver cannot see the AD bit, so DNSSEC validation is not claimed.
  if (withTlsa.length) return result('dane', 'pass', `TLSA at _25._tcp of ${withTlsa.join(', ')} (DNSSEC signing not verified by this tool)`);
  return result('dane', 'info', `no TLSA records for ${mxHosts.join(', ')}`);
}

export async function bimiCheck(dns: AuditResolver, domain: string, dmarc: DmarcPolicy | undefined): Promise<CheckResult> {
  const name = `default._bimi.${domain}`;
  const found = await taggedRecord(dns, name, /^v=BIMI1\s*(;|$)/i);
  if ('temperror' in found) return result('bimi', 'temperror', found.temperror);
  if (!found.records.length) return result('bimi', 'info', `${domain}: no BIMI record at ${name}`);
  const { tags } = parseTags(found.records[0]);
  const l = tags.get('l') ?? '';
  const problems: string[] = [];
  if (!/^https:\/\/\S+\.svg$/i.test(l)) problems.push(`l=${l || '(empty)'} is not an HTTPS SVG URL`);
  if (!dmarc || !['quarantine', 'reject'].includes(dmarc.policy) || dmarc.pct < 100) problems.push(`needs DMARC quarantine or reject at pct=100 (have ${dmarc ? `${dmarc.policy}, pct=${dmarc.pct}` : 'none'})`);
  if (problems.length) return result('bimi', 'info', `${name}: ${problems.join('; ')}`);
  return result('bimi', 'pass', `${name}: ${quote(found.records[0])}${tags.get('a') ? '' : ' (no VMC a=, Gmail shows no logo)'}`);
}

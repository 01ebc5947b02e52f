// DMARC record checks for the From domain, with the organisational-domain fallback. mailauth's
// tree walk (RFC 9989 §4.10) names the organisational domain; the record set itself is read here
// because mailauth treats several records as "no record" and we must report that case.
import { createRecordLookup, discoverPolicy } from 'mailauth/lib/dmarc/get-dmarc-record.js';
import { quote, result } from './report.ts';
import { temp } from './resolver.ts';
import type { AuditResolver } from './resolver.ts';
import { parseTags } from './tags.ts';
import type { CheckResult } from './types.ts';

const IDS = ['dmarc-present', 'dmarc-multiple', 'dmarc-syntax', 'dmarc-policy', 'dmarc-legacy', 'dmarc-rua', 'dmarc-rua-auth'];
const POLICIES = new Set(['none', 'quarantine', 'reject']);
const DMARC1 = /^v\s*=\s*DMARC1\s*(;|$)/i;

export interface DmarcPolicy { record: string; recordDomain: string; policy: string; pct: number }

/** The names a receiver may take the policy from: the domain, then its parents above the TLD. */
function candidates(domain: string): string[] {
  const labels = domain.split('.');
  return labels.slice(0, -1).map((_, i) => labels.slice(i).join('.'));
}

export function validateDmarc(record: string): { errors: string[]; ignored: string[] } {
  const { tags, order, errors } = parseTags(record);
  const ignored: string[] = [];
  const check = (tag: string, ok: (v: string) => boolean, expect: string) => {
    const v = tags.get(tag);
    if (v !== undefined && !ok(v)) errors.push(`${tag}=${v}: expected ${expect}`);
  };
  if (order[0] !== 'v' || tags.get('v') !== 'DMARC1') errors.push('v=DMARC1 must be the first tag');
  if (!tags.has('p')) errors.push('no p= tag');
  for (const t of ['p', 'sp', 'np']) check(t, (v) => POLICIES.has(v.toLowerCase()), 'none, quarantine or reject');
  for (const t of ['adkim', 'aspf']) check(t, (v) => /^[rs]$/i.test(v), 'r or s');
  check('pct', (v) => /^\d{1,3}$/.test(v) && Number(v) <= 100, 'an integer 0-100');
  check('ri', (v) => /^\d+$/.test(v), 'an integer');
  check('fo', (v) => v.split(':').every((x) => /^[01ds]$/i.test(x.trim())), 'colon-separated 0, 1, d, s');
  check('rf', (v) => v.split(':').every((x) => /^(afrf|iodef)$/i.test(x.trim())), 'afrf');
  check('t', (v) => /^[yn]$/i.test(v), 'y or n');
  check('psd', (v) => /^[ynu]$/i.test(v), 'y, n or u');
  for (const t of ['rua', 'ruf']) check(t, (v) => v.split(',').every((u) => validUri(u.trim())), 'comma-separated mailto: or https: URIs');
  for (const t of order) if (!['v', 'p', 'sp', 'np', 'adkim', 'aspf', 'pct', 'ri', 'fo', 'rf', 't', 'psd', 'rua', 'ruf'].includes(t)) ignored.push(t);
  return { errors, ignored };
}

function validUri(uri: string): boolean {
  const bare = uri.replace(/![0-9]+[kmgt]?$/i, '');
  if (/^mailto:/i.test(bare)) return /^mailto:[^@\s,;!]+@[a-z0-9.-]+\.[a-z0-9-]+$/i.test(bare);
  return /^https:\/\/[^\s,;!]+$/i.test(bare);
}

function ruaHosts(rua: string | undefined): string[] {
  return (rua ?? '').split(',').map((u) => u.trim().match(/^mailto:[^@]+@([^!?]+)/i)?.[1]?.toLowerCase()).filter((h): h is string => !!h);
}

export async function dmarcChecks(dns: AuditResolver, domain: string): Promise<{ results: CheckResult[]; policy?: DmarcPolicy }> {
  const names = candidates(domain);
  const [answers, org] = await Promise.all([
    Promise.all(names.map((n) => dns.txt(`_dmarc.${n}`))),
    discoverPolicy(domain, createRecordLookup(dns.mailauth)).then((d) => d.orgDomain, () => null),
  ]);
  const out: CheckResult[] = [];
  // The first name with a DMARC record (or a temperror that hides whether it has one) decides.
  let found: { name: string; records: string[] } | undefined;
  for (let i = 0; i < names.length; i++) {
    const a = answers[i];
    if (a.status === 'temperror') return { results: IDS.map((id) => result(id, 'temperror', temp(`_dmarc.${names[i]}`, 'TXT', a.code))) };
    const records = a.status === 'ok' ? a.records.map((s) => s.join('')).filter((r) => DMARC1.test(r)) : [];
    if (records.length) {
      found = { name: names[i], records };
      break;
    }
  }
  if (!found) {
    out.push(result('dmarc-present', 'fail', `${domain}: no DMARC record at ${names.map((n) => `_dmarc.${n}`).join(' or ')}`));
    out.push(result('dmarc-multiple', 'pass', `${domain}: no second DMARC record`));
    for (const id of IDS.slice(2)) out.push(result(id, 'skip', `${domain}: no DMARC record`));
    return { results: out };
  }
  const where = `_dmarc.${found.name}${found.name === domain ? '' : ' (organisational domain)'}`;
  if (found.records.length > 1) {
    const quoted = found.records.map((r) => quote(r, 50)).join(' and ');
    out.push(result('dmarc-present', 'fail', `${domain}: ${found.records.length} records at ${where}, so no policy applies: ${quoted}`));
    out.push(result('dmarc-multiple', 'fail', `${domain}: ${found.records.length} records at ${where}: ${quoted}`));
    for (const id of IDS.slice(2)) out.push(result(id, 'skip', `${domain}: several DMARC records, none applies`));
    return { results: out };
  }
  const record = found.records[0];
  const { tags } = parseTags(record);
  out.push(result('dmarc-present', 'pass', `${domain}: ${where}: ${quote(record)}`));
  out.push(result('dmarc-multiple', 'pass', `${domain}: one record at ${where}`));

  const { errors, ignored } = validateDmarc(record);
  out.push(errors.length
    ? result('dmarc-syntax', 'fail', `${where}: ${errors.join('; ')}`)
    : result('dmarc-syntax', 'pass', `${where}: valid${ignored.length ? `; unknown tags ignored: ${ignored.join(', ')}` : ''}`));

  // A subdomain without its own record gets sp= (or p=) of the organisational domain.
  const inherited = found.name !== domain;
  const policyTag = inherited && tags.has('sp') ? 'sp' : 'p';
  const policy = (tags.get(policyTag) ?? 'none').toLowerCase();
  const pct = tags.has('pct') ? Number(tags.get('pct')) : 100;
  const pctNote = pct < 100 ? ` with pct=${pct}` : '';
  if (!POLICIES.has(policy)) out.push(result('dmarc-policy', 'warn', `${domain}: ${policyTag}=${tags.get(policyTag)} is not a policy; receivers apply none`));
  else if (policy === 'none') out.push(result('dmarc-policy', 'warn', `${domain}: ${policyTag}=${tags.get(policyTag) ?? '(missing)'}, monitoring only; move to quarantine or reject`));
  else out.push(result('dmarc-policy', 'pass', `${domain}: ${policyTag}=${policy}${pctNote}`));

  const legacy = [pct < 100 ? `pct=${tags.get('pct')}` : '', tags.has('rf') ? `rf=${tags.get('rf')}` : '', tags.has('ri') ? `ri=${tags.get('ri')}` : ''].filter(Boolean);
  out.push(legacy.length
    ? result('dmarc-legacy', 'info', `${where}: ${legacy.join(', ')} removed in DMARCbis${pct < 100 ? ' (pct<100 weakens the policy)' : ''}`)
    : result('dmarc-legacy', 'pass', `${where}: no legacy tags`));

  const rua = tags.get('rua');
  out.push(rua ? result('dmarc-rua', 'pass', `${where}: rua=${rua}`) : result('dmarc-rua', 'warn', `${where}: no rua=, no aggregate reports are sent`));

  out.push(await ruaAuthorisation(dns, found.name, org ?? found.name, ruaHosts(rua)));
  return { results: out, policy: { record, recordDomain: found.name, policy, pct } };
}

/** RFC 7489 §7.1: an rua outside the organisational domain must be authorised by its host. */
async function ruaAuthorisation(dns: AuditResolver, recordDomain: string, org: string, hosts: string[]): Promise<CheckResult> {
  const external = [...new Set(hosts)].filter((h) => h !== org && !h.endsWith(`.${org}`));
  if (!hosts.length) return result('dmarc-rua-auth', 'skip', `_dmarc.${recordDomain}: no mailto: rua`);
  if (!external.length) return result('dmarc-rua-auth', 'pass', `rua inside ${org}: ${hosts.join(', ')}`);
  const checks = await Promise.all(external.map(async (host) => {
    const name = `${recordDomain}._report._dmarc.${host}`;
    const txt = await dns.txt(name);
    if (txt.status === 'temperror') return { host, state: 'temperror' as const, text: temp(name, 'TXT', txt.code) };
    const ok = txt.status === 'ok' && txt.records.some((s) => DMARC1.test(s.join('')));
    return { host, state: ok ? 'ok' as const : 'missing' as const, text: ok ? `${name} authorises` : `${name} has no v=DMARC1 record` };
  }));
  const missing = checks.filter((c) => c.state === 'missing');
  if (missing.length) return result('dmarc-rua-auth', 'warn', `external rua not authorised, reports will not be sent: ${missing.map((c) => c.text).join('; ')}`);
  const tempErr = checks.find((c) => c.state === 'temperror');
  if (tempErr) return result('dmarc-rua-auth', 'temperror', tempErr.text);
  return result('dmarc-rua-auth', 'pass', checks.map((c) => c.text).join('; '));
}

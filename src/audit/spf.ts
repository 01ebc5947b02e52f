// SPF checks on the envelope (Return-Path) domain. mailauth evaluates check_host() for each IP and
// the HELO; the static walk below adds what evaluation cannot show: the lookup and void counts of
// the whole include tree (evaluation stops at the first match), syntax and `ptr` anywhere in it.
import { spf } from 'mailauth/lib/spf/index.js';
import { validateTerms } from 'mailauth/lib/spf/syntax.js';
import { quote, result } from './report.ts';
import { temp } from './resolver.ts';
import type { AuditResolver, MxRecord } from './resolver.ts';
import type { CheckResult } from './types.ts';

const MAX_DEPTH = 12;
const TERM_START = /^[+?~-]?(all|include:|ip4:|ip6:|a(?=$|[:/])|mx(?=$|[:/])|ptr(?=$|:)|exists:|redirect=|exp=)/i;

interface SpfRecord { domain: string; text: string; strings: string[]; terms: string[] }

interface Walk {
  lookups: string[]; // the DNS-querying terms, "domain: term"
  voids: string[];
  errors: string[];
  ptr: string[];
  temperrors: string[];
  records: Map<string, SpfRecord>;
  seen: Set<string>;
}

type Fetched =
  | { kind: 'record'; record: SpfRecord }
  | { kind: 'multiple'; detail: string; records: SpfRecord[] }
  | { kind: 'none'; detail: string }
  | { kind: 'nospf'; detail: string }
  | { kind: 'temperror'; detail: string };

async function fetchSpf(dns: AuditResolver, domain: string): Promise<Fetched> {
  const txt = await dns.txt(domain);
  if (txt.status === 'temperror') return { kind: 'temperror', detail: temp(domain, 'TXT', txt.code) };
  if (txt.status === 'none') return { kind: 'none', detail: `${domain} has no TXT record (${txt.code})` };
  const records = txt.records
    .map((strings) => ({ domain, strings, text: strings.join('') }))
    .filter((r) => /^v=spf1(\s|$)/i.test(r.text))
    .map((r) => ({ ...r, terms: r.text.trim().split(/\s+/).slice(1) }));
  if (records.length === 0) return { kind: 'nospf', detail: `${domain} has TXT records but no v=spf1 record` };
  if (records.length > 1) return { kind: 'multiple', detail: `${domain} has ${records.length} SPF records`, records };
  return { kind: 'record', record: records[0] };
}

/** Terms run together across 255-byte strings: "...include:a.example" + "include:b.example". */
function brokenAcrossStrings(record: SpfRecord): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < record.strings.length; i++) {
    const left = record.strings[i];
    const right = record.strings[i + 1];
    if (/\s$/.test(left) || /^\s/.test(right)) continue;
    const tail = left.split(/\s+/).pop() ?? '';
    const head = right.split(/\s+/)[0] ?? '';
    if (TERM_START.test(tail) && TERM_START.test(head)) out.push(`"${tail}" and "${head}" run together across strings ${i + 1} and ${i + 2}`);
  }
  return out;
}

function hasMacro(spec: string): boolean {
  return spec.includes('%');
}

async function walk(dns: AuditResolver, record: SpfRecord, state: Walk, depth: number): Promise<void> {
  state.records.set(record.domain.toLowerCase(), record);
  const syntax = validateTerms(record.terms);
  if (syntax) state.errors.push(`${record.domain}: ${syntax}`);
  for (const broken of brokenAcrossStrings(record)) state.errors.push(`${record.domain}: ${broken}`);
  const hasAll = record.terms.some((t) => /^[+?~-]?all$/i.test(t));
  const tasks: Promise<void>[] = [];
  for (const term of record.terms) {
    const bare = term.replace(/^[+?~-]/, '');
    const [, name = '', value = ''] = bare.match(/^([a-z0-9_.-]+)[:=]?([^/]*)/i) ?? [];
    const mech = name.toLowerCase();
    const target = value || record.domain;
    const label = `${record.domain}: ${term}`;
    if (mech === 'include' || (mech === 'redirect' && !hasAll)) {
      state.lookups.push(label);
      if (!hasMacro(target)) tasks.push(follow(dns, target, term, state, depth));
    } else if (mech === 'a') {
      state.lookups.push(label);
      if (!hasMacro(target)) tasks.push(addressVoid(dns, target, label, state));
    } else if (mech === 'mx') {
      state.lookups.push(label);
      if (!hasMacro(target)) tasks.push(mxVoid(dns, target, label, state));
    } else if (mech === 'ptr') {
      state.lookups.push(label);
      state.ptr.push(label);
    } else if (mech === 'exists') {
      state.lookups.push(label);
      if (!hasMacro(target)) tasks.push(addressVoid(dns, target, label, state));
    }
  }
  await Promise.all(tasks);
}

async function follow(dns: AuditResolver, target: string, term: string, state: Walk, depth: number): Promise<void> {
  const key = target.toLowerCase();
  if (depth >= MAX_DEPTH || state.seen.has(key)) {
    if (state.seen.has(key)) state.errors.push(`${term}: ${target} is included more than once (loop or duplicate)`);
    return;
  }
  state.seen.add(key);
  const fetched = await fetchSpf(dns, target);
  if (fetched.kind === 'record') return walk(dns, fetched.record, state, depth + 1);
  if (fetched.kind === 'none') state.voids.push(`${term} (${fetched.detail})`);
  else if (fetched.kind === 'temperror') state.temperrors.push(fetched.detail);
  else state.errors.push(`${term}: ${fetched.detail} (permerror)`);
}

async function addressVoid(dns: AuditResolver, name: string, label: string, state: Walk): Promise<void> {
  const [a, aaaa] = await Promise.all([dns.lookup(name, 'A'), dns.lookup(name, 'AAAA')]);
  if (a.status === 'temperror') state.temperrors.push(temp(name, 'A', a.code));
  else if (a.status === 'none' && aaaa.status === 'none') state.voids.push(`${label} (${name} has no address)`);
}

async function mxVoid(dns: AuditResolver, name: string, label: string, state: Walk): Promise<void> {
  const mx = await dns.lookup<MxRecord>(name, 'MX');
  if (mx.status === 'temperror') state.temperrors.push(temp(name, 'MX', mx.code));
  else if (mx.status === 'none') state.voids.push(`${label} (${name} has no MX)`);
  else if (mx.records.length > 10) state.errors.push(`${label}: ${name} has ${mx.records.length} MX records, more than 10 (RFC 7208 §4.6.4)`);
}

/** The `all` that ends evaluation: the record's own, else the one its redirect leads to. */
function finalAll(walked: Walk, domain: string): string | undefined {
  const seen = new Set<string>();
  let current = walked.records.get(domain.toLowerCase());
  while (current && !seen.has(current.domain)) {
    seen.add(current.domain);
    const all = current.terms.find((t) => /^[+?~-]?all$/i.test(t));
    if (all) return all;
    const redirect = current.terms.find((t) => /^redirect=/i.test(t));
    if (!redirect) return undefined;
    current = walked.records.get(redirect.slice(9).toLowerCase());
  }
  return undefined;
}

export interface SpfInput { dns: AuditResolver; domain: string; ips: string[]; helo?: string }

export async function spfChecks(input: SpfInput): Promise<CheckResult[]> {
  const { dns, domain, ips, helo } = input;
  const [fetched, evaluations, heloResults] = await Promise.all([
    fetchSpf(dns, domain),
    Promise.all(ips.map((ip) => evaluate(dns, `postmaster@${domain}`, ip, helo ?? domain))),
    helo ? Promise.all(ips.map((ip) => evaluate(dns, '', ip, helo))) : Promise.resolve([]),
  ]);
  const out: CheckResult[] = [];

  out.push(...passResults(ips, evaluations, helo, heloResults, domain));

  if (fetched.kind === 'temperror') {
    for (const id of ['spf-present', 'spf-multiple', 'spf-syntax', 'spf-lookups', 'spf-void', 'spf-all', 'spf-ptr']) out.push(result(id, 'temperror', fetched.detail));
    return out;
  }
  if (fetched.kind === 'none' || fetched.kind === 'nospf') {
    out.push(result('spf-present', 'fail', `${domain}: no SPF record (${fetched.detail})`));
    out.push(result('spf-multiple', 'pass', `${domain}: no second SPF record`));
    for (const id of ['spf-syntax', 'spf-lookups', 'spf-void', 'spf-all', 'spf-ptr']) out.push(result(id, 'skip', `${domain}: no SPF record to check`));
    return out;
  }
  if (fetched.kind === 'multiple') {
    const quoted = fetched.records.map((r) => quote(r.text, 60)).join(' and ');
    out.push(result('spf-present', 'fail', `${domain}: ${fetched.records.length} SPF records, not exactly one: ${quoted}`));
    out.push(result('spf-multiple', 'fail', `${domain}: ${fetched.records.length} SPF records (permerror): ${quoted}`));
    for (const id of ['spf-syntax', 'spf-lookups', 'spf-void', 'spf-all', 'spf-ptr']) out.push(result(id, 'skip', `${domain}: SPF is permerror with several records, nothing else applies`));
    return out;
  }

  const record = fetched.record;
  out.push(result('spf-present', 'pass', `${domain}: ${quote(record.text)}`));
  out.push(result('spf-multiple', 'pass', `${domain}: one SPF record`));
  const state: Walk = { lookups: [], voids: [], errors: [], ptr: [], temperrors: [], records: new Map(), seen: new Set([domain.toLowerCase()]) };
  await walk(dns, record, state, 0);
  const incomplete = state.temperrors.length ? `; incomplete, ${state.temperrors.join(', ')}` : '';

  out.push(state.errors.length
    ? result('spf-syntax', 'fail', state.errors.join('; '))
    : result('spf-syntax', state.temperrors.length ? 'temperror' : 'pass', `${domain}: ${state.records.size} record(s) parse cleanly${incomplete}`));

  const n = state.lookups.length;
  const terms = state.lookups.map((l) => l.split(': ').pop()).join(' ');
  if (n > 10) out.push(result('spf-lookups', 'fail', `${domain}: ${n} DNS-querying terms counted recursively, limit 10 (permerror): ${terms}`));
  else out.push(result('spf-lookups', state.temperrors.length ? 'temperror' : 'pass', `${domain}: ${n} of 10 DNS-querying terms${n ? `: ${terms}` : ''}${incomplete}`));

  const v = state.voids.length;
  if (v > 2) out.push(result('spf-void', 'fail', `${domain}: ${v} void lookups, limit 2 (permerror): ${state.voids.join('; ')}`));
  else out.push(result('spf-void', state.temperrors.length ? 'temperror' : 'pass', `${domain}: ${v} of 2 void lookups${v ? `: ${state.voids.join('; ')}` : ''}${incomplete}`));

  const all = finalAll(state, domain);
  if (!all) out.push(result('spf-all', 'warn', `${domain}: no "all" term, unmatched senders get neutral`));
  else if (/^[-~]all$/i.test(all)) out.push(result('spf-all', 'pass', `${domain}: ends in ${all}`));
  else out.push(result('spf-all', 'warn', `${domain}: ends in ${all}, which does not reject other senders; use ~all or -all`));

  out.push(state.ptr.length
    ? result('spf-ptr', 'warn', `${domain}: "ptr" is slow and deprecated (SHOULD NOT be used): ${state.ptr.join(', ')}`)
    : result('spf-ptr', 'pass', `${domain}: no ptr mechanism`));
  return out;
}

interface Evaluation { ip: string; result: string; comment: string }

async function evaluate(dns: AuditResolver, sender: string, ip: string, helo: string): Promise<Evaluation> {
  const res = await spf({ sender, ip, helo, mta: 'mailops-audit', resolver: dns.mailauth });
  return { ip, result: res.status.result, comment: res.status.comment || '' };
}

function passResults(ips: string[], evaluations: Evaluation[], helo: string | undefined, heloResults: Evaluation[], domain: string): CheckResult[] {
  const out: CheckResult[] = [];
  if (!ips.length) out.push(result('spf-pass-ips', 'skip', 'no sending IP given (--ip)'));
  for (const e of evaluations) {
    const status = e.result === 'pass' ? 'pass' : e.result === 'temperror' ? 'temperror' : 'fail';
    out.push(result('spf-pass-ips', status, `${e.ip}: spf=${e.result} for ${domain}${e.comment && status !== 'pass' ? ` (${e.comment})` : ''}`));
  }
  if (!helo || !ips.length) {
    out.push(result('spf-helo', 'skip', !helo ? 'no HELO name given (--helo)' : 'no sending IP given (--ip)'));
  } else {
    const all = heloResults.every((e) => e.result === 'pass');
    const list = heloResults.map((e) => `${e.result} for ${e.ip}`).join(', ');
    out.push(result('spf-helo', all ? 'pass' : 'info', `HELO ${helo}: ${list}`));
  }
  return out;
}

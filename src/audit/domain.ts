// `mailops audit domain`: every DNS-side check, run in parallel over one memoised resolver.
import { dkimKeyChecks } from './dkim-keys.ts';
import { dmarcChecks } from './dmarc.ts';
import { dnsblChecks } from './dnsbl.ts';
import { ipChecks, reverseName } from './ip.ts';
import { mxChecks } from './mx.ts';
import { bimiCheck, daneCheck, mtaStsCheck, tlsRptCheck } from './policy.ts';
import { buildReport, result } from './report.ts';
import { assertReachable } from './resolver.ts';
import type { AuditResolver } from './resolver.ts';
import { spfChecks } from './spf.ts';
import type { AuditReport, CheckResult, Profile } from './types.ts';

export interface DomainAuditOptions {
  dns: AuditResolver;
  domain: string;
  selectors?: string[];
  ips?: string[];
  helo?: string;
  /** Envelope (Return-Path) domain when it differs from the From domain. */
  returnPathDomain?: string;
  dnsbl?: string[];
  profile?: Profile | 'all';
  /** Fetch the MTA-STS policy over HTTPS (default true). */
  fetch?: boolean;
}

export function spamRate(): CheckResult {
  return result('spam-rate', 'info', 'not verifiable from outside: keep the complaint rate under 0.3 % (target 0.1 %), Postmaster Tools / SNDS / CSA reports show it');
}

export async function auditDomain(options: DomainAuditOptions): Promise<AuditReport> {
  const { dns, domain } = options;
  const ips = options.ips ?? [];
  const envelope = options.returnPathDomain ?? domain;
  const domains = [...new Set([domain, envelope])];
  await assertReachable(dns, domain);

  const mxPart = mxChecks(dns, domains).then(async ({ results, states }) => {
    const own = states.get(domain.toLowerCase());
    const hosts = own?.kind === 'mx' ? own.hosts : [];
    return [...results, ...(await Promise.all([mtaStsCheck(dns, domain, hosts, options.fetch ?? true), daneCheck(dns, hosts)]))];
  });
  const dmarcPart = dmarcChecks(dns, domain).then(async ({ results, policy }) => [...results, await bimiCheck(dns, domain, policy)]);
  const parts = await Promise.all([
    spfChecks({ dns, domain: envelope, ips, helo: options.helo }),
    dkimKeyChecks(dns, domain, options.selectors ?? []),
    dmarcPart,
    ipChecks({ dns, ips, domains, helo: options.helo }),
    mxPart,
    tlsRptCheck(dns, domain).then((r) => [r]),
    dnsblChecks(dns, options.dnsbl ?? [], ips, domains, reverseName),
  ]);
  return buildReport(domain, [...parts.flat(), spamRate()], options.profile ?? 'all');
}

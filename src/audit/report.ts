// Builds results from the catalog, computes the per-profile verdicts and the exit status.
import { CATALOG, CHECK_ORDER } from './catalog.ts';
import { PROFILES } from './types.ts';
import type { AuditReport, CheckResult, Profile, Status, Verdict } from './types.ts';

export function result(id: string, status: Status, summary: string): CheckResult {
  const info = CATALOG[id];
  if (!info) throw new Error(`audit: unknown check id ${id}`);
  return { id, status, summary: oneLine(summary), source: info.source };
}

/** Summaries are one line: collapse whitespace, shorten very long quoted records. */
function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 400 ? `${flat.slice(0, 397)}...` : flat;
}

/** Quotes a record for a summary, shortened in the middle when long (DKIM keys). */
export function quote(record: string, max = 90): string {
  const flat = record.replace(/\s+/g, ' ');
  return JSON.stringify(flat.length > max ? `${flat.slice(0, max - 20)}...${flat.slice(-17)}` : flat);
}

export function verdict(results: CheckResult[], profile: Profile): Verdict {
  const relevant = results.filter((r) => CATALOG[r.id].profiles.includes(profile));
  if (relevant.some((r) => r.status === 'fail')) return 'fail';
  if (relevant.some((r) => r.status === 'skip' || r.status === 'temperror')) return 'incomplete';
  if (relevant.some((r) => r.status === 'warn')) return 'warn';
  return 'pass';
}

export function buildReport(domain: string, results: CheckResult[], profile: Profile | 'all'): AuditReport {
  const order = (r: CheckResult) => CHECK_ORDER.indexOf(r.id);
  const sorted = results.map((r, i) => ({ r, i })).sort((a, b) => order(a.r) - order(b.r) || a.i - b.i).map(({ r }) => r);
  const profiles = profile === 'all' ? PROFILES : [profile];
  const verdicts: AuditReport['verdicts'] = {};
  for (const p of profiles) verdicts[p] = verdict(sorted, p);
  return { domain, verdicts, results: sorted };
}

/** 1 when a check that counts for the chosen profile(s) fails, else 0. */
export function exitStatus(report: AuditReport): number {
  return Object.values(report.verdicts).includes('fail') ? 1 : 0;
}

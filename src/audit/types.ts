// Shapes shared by the audit checks, the renderers and the JSON output (a stable interface,
// documented in docs/audit.md).

/** pass/warn/fail/info/skip as in the checklist; temperror when DNS gave no usable answer. */
export type Status = 'pass' | 'warn' | 'fail' | 'info' | 'skip' | 'temperror';

export interface CheckResult {
  id: string;
  status: Status;
  /** One line: the subject (selector, IP, domain) and the finding, quoting the record. */
  summary: string;
  /** The requirement's source, e.g. "RFC 7208 §4.6.4; Microsoft". */
  source: string;
}

export const PROFILES = ['csa', 'gmail', 'yahoo', 'microsoft'] as const;
export type Profile = (typeof PROFILES)[number];

/** fail: a required check fails; incomplete: nothing fails but a required check could not run. */
export type Verdict = 'pass' | 'warn' | 'incomplete' | 'fail';

export interface AuditReport {
  /** The audited domain (for a message: the From domain). */
  domain: string;
  verdicts: Partial<Record<Profile, Verdict>>;
  results: CheckResult[];
}

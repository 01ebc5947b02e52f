// Glue between the CLI flags and the audits: validates input (usage errors exit 2), runs the
// audit, prints JSON or the ink report and returns the exit status (0 ok, 1 a check fails).
import net from 'node:net';
import { ConfigError } from '../config/errors.ts';
import { exitStatus } from './report.ts';
import { createResolver, parseDnsServer } from './resolver.ts';
import type { AuditReport, Profile } from './types.ts';

interface Common { dns: string[]; timeout: number; profile: Profile | 'all'; json?: boolean }

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/i;

export function checkDomain(flag: string, value: string): string {
  const d = value.trim().toLowerCase().replace(/\.$/, '');
  if (d.length > 253 || d.split('.').length < 2 || !d.split('.').every((l) => LABEL.test(l))) throw new ConfigError(`${flag}: not a domain name: ${JSON.stringify(value)}`);
  return d;
}

function checkIp(flag: string, value: string): string {
  if (!net.isIP(value)) throw new ConfigError(`${flag}: not an IP address: ${JSON.stringify(value)}`);
  return value;
}

function resolverFor(options: Common) {
  options.dns.forEach(parseDnsServer); // usage errors before any query
  return createResolver({ servers: options.dns, timeoutMs: options.timeout });
}

type Printer = (report: AuditReport, title: string) => Promise<void>;

/** JSON, or the ink report at the terminal's width (80 columns when not a terminal). */
async function printer(json: boolean | undefined): Promise<Printer> {
  const render = json ? undefined : (await import('./render.ts')).renderReport;
  return (report, title) => new Promise((resolve) => {
    const text = render
      ? render(report, title, process.stdout.isTTY ? Math.max(60, process.stdout.columns ?? 80) : 80)
      : JSON.stringify(report, null, 2);
    process.stdout.write(`${text}\n`, () => resolve());
  });
}

export async function runDomainAudit(domainArg: string, options: Common & {
  selector: string[]; ip: string[]; helo?: string; returnPathDomain?: string; dnsbl: string[]; fetch: boolean;
}): Promise<number> {
  const domain = checkDomain('DOMAIN', domainArg);
  const ips = options.ip.map((ip) => checkIp('--ip', ip));
  const selectors = options.selector.map((s) => {
    if (!s.split('.').every((l) => LABEL.test(l))) throw new ConfigError(`--selector: not a DKIM selector: ${JSON.stringify(s)}`);
    return s;
  });
  const helo = options.helo === undefined ? undefined : options.helo.trim();
  const returnPathDomain = options.returnPathDomain === undefined ? undefined : checkDomain('--return-path-domain', options.returnPathDomain);
  const dnsbl = options.dnsbl.map((z) => checkDomain('--dnsbl', z));
  const dns = resolverFor(options);
  const [{ auditDomain }, print] = await Promise.all([import('./domain.ts'), printer(options.json)]);
  try {
    const report = await auditDomain({ dns, domain, selectors, ips, helo, returnPathDomain, dnsbl, profile: options.profile, fetch: options.fetch });
    await print(report, 'mailops audit domain');
    return exitStatus(report);
  } finally {
    dns.cancel();
  }
}

export async function runMessageAudit(file: string, options: Common & { ip?: string; helo?: string; mailFrom?: string }): Promise<number> {
  const ip = options.ip === undefined ? undefined : checkIp('--ip', options.ip);
  const dns = resolverFor(options);
  const [{ auditMessage, readMessage }, print] = await Promise.all([import('./message.ts'), printer(options.json)]);
  const message = await readMessage(file);
  try {
    const report = await auditMessage({ dns, message, ip, helo: options.helo, mailFrom: options.mailFrom, profile: options.profile });
    await print(report, 'mailops audit message');
    return exitStatus(report);
  } finally {
    dns.cancel();
  }
}

// `mailops audit domain|message`: DKIM, DNS and CSA readiness checks (src/audit/).
import type { Command } from 'commander';
import { ConfigError } from '../config/errors.ts';
import { collect, examples, positiveInt } from './usage.ts';

const PROFILES = ['csa', 'gmail', 'yahoo', 'microsoft', 'all'];

function profile(value: string): string {
  if (!PROFILES.includes(value)) throw new ConfigError(`--profile: expected one of ${PROFILES.join(', ')}, got ${JSON.stringify(value)}`);
  return value;
}

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('check a sending domain, its IPs or a message against CSA, Gmail, Yahoo, Microsoft and RFC rules');
  const common = (cmd: Command) => cmd
    .option('--dns <host:port>', 'DNS server to ask (repeatable; default: the system resolver)', collect, [])
    .option('--timeout <ms>', 'DNS timeout per try in milliseconds', positiveInt('--timeout'), 2000)
    .option('--profile <name>', `verdicts to report and exit on: ${PROFILES.join(', ')}`, profile, 'all')
    .option('--json', 'print the report as JSON (stable format, see docs/audit.md)');

  common(audit
    .command('domain')
    .argument('<domain>', 'the From domain to audit')
    .description('DNS side: SPF, DKIM keys, DMARC, MX, PTR/FCrDNS, HELO, DNSBL, MTA-STS, TLS-RPT, DANE, BIMI')
    .option('--selector <s>', 'DKIM selector to audit (repeatable)', collect, [])
    .option('--ip <ip>', 'sending IP address (repeatable)', collect, [])
    .option('--helo <name>', 'EHLO name the sending MTAs use')
    .option('--return-path-domain <d>', 'envelope (Return-Path) domain when it differs from DOMAIN')
    .option('--dnsbl <zone>', 'DNS blocklist zone to check the IPs and domains on (repeatable)', collect, [])
    .option('--no-fetch', 'do not fetch the MTA-STS policy over HTTPS'))
    .addHelpText('after', examples([
      'mailops audit domain example.com --selector s1 --ip 192.0.2.10 --helo mta1.example.com',
      'mailops audit domain example.com --selector s1 --selector s2 --dnsbl zen.spamhaus.org --profile csa',
      'mailops audit domain example.com --return-path-domain bounces.example.com --json',
      'mailops audit domain example.com --dns 127.0.0.1:5353 --no-fetch',
    ]))
    .action(async (domain: string, options) => {
      const { runDomainAudit } = await import('../audit/cli-run.ts');
      process.exitCode = await runDomainAudit(domain, options);
    });

  common(audit
    .command('message')
    .argument('<file>', 'the message (.eml, RFC 5322) as a receiver gets it')
    .description('receiver view of one message: DKIM, SPF, DMARC alignment, one-click unsubscribe, format')
    .option('--ip <ip>', 'IP the message is sent from (for SPF)')
    .option('--helo <name>', 'EHLO name of the sending MTA')
    .option('--mail-from <addr>', 'envelope sender (default: the Return-Path header, else From)'))
    .addHelpText('after', examples([
      'mailops audit message newsletter.eml',
      'mailops audit message newsletter.eml --ip 192.0.2.10 --helo mta1.example.com --mail-from bounces@example.com',
      'mailops audit message newsletter.eml --profile gmail --json',
    ]))
    .action(async (file: string, options) => {
      const { runMessageAudit } = await import('../audit/cli-run.ts');
      process.exitCode = await runMessageAudit(file, options);
    });
}

// `mailops sink`: simulated receiving providers (Gmail, GMX/WEB.DE, T-Online, Yahoo, Microsoft,
// corporate servers) for load tests, with stats over HTTP; with --dns a simulated internet (DNS plus
// a mail server per provider on its own loopback address). Runs until SIGTERM/SIGINT. Registers
// the command; the work is src/sink (loaded when the command runs).
import type { Command } from 'commander';
import { ConfigError } from '../config/errors.ts';
import { collect, examples } from './usage.ts';

function nonNegativeInt(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new ConfigError(`${flag}: expected a non-negative integer, got ${JSON.stringify(value)}`);
    return n;
  };
}

function share(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !(n >= 0 && n <= 1)) throw new ConfigError(`${flag}: expected a share from 0 to 1, got ${JSON.stringify(value)}`);
    return n;
  };
}

export function registerSink(program: Command): void {
  program
    .command('sink')
    .description('receive mail like real providers do (throttling, greylisting, unknown users, connection caps) and count it')
    .option('--smtp <host:port>', 'SMTP listener (default 127.0.0.1:2526)')
    .option('--http <host:port>', 'HTTP API listener: /api/v1/stats, /api/v1/reset, /metrics (default 127.0.0.1:8026)')
    .option('--dns <host:port>', 'simulated internet: serve DNS (MX, A, PTR) for the providers and hosted domains here, and run each provider\'s and hosting server\'s SMTP on its own 127.0.1.x/127.0.2.x address at the --smtp port')
    .option('--listen <profile=host:port>', 'extra SMTP listener bound to one profile; connect-time checks run at connect (repeatable)', collect)
    .option('--profiles <file>', 'YAML profiles deep-merged over the built-in ones (src/sink/profiles.yaml)')
    .option('--profile <name>', 'force one profile for all mail (accept-all: accept everything at once, like smtp-sink)')
    .option('--seed <n>', 'seed for reply decisions and latency (default 1)', nonNegativeInt('--seed'))
    .option('--greylist-delay <duration>', 'replace every profile\'s greylisting delay (e.g. 1s)')
    .option('--max-size <size>', 'largest message accepted (default 50MB)')
    .option('--tls-key <file>', 'PEM key for STARTTLS (default: a generated self-signed certificate)')
    .option('--tls-cert <file>', 'PEM certificate for STARTTLS')
    .option('--no-tls', 'do not offer STARTTLS')
    .option('--dkim-sample <share>', 'verify DKIM on this share of messages, 0..1 (default 0; 1 when --dkim-keys/--dkim-dns is given)', share('--dkim-sample'))
    .option('--dkim-keys <file>', 'YAML/JSON map of "selector._domainkey.domain" to key records, for DKIM verification')
    .option('--dkim-dns <host:port>', 'DNS server to ask for DKIM key records')
    .option('--quiet', 'print only the listening line, no per-interval status')
    .addHelpText('after', examples([
      'mailops sink',
      'mailops sink --profile accept-all --smtp 127.0.0.1:2526 --quiet',
      'mailops sink --profiles lab-profiles.yaml --seed 42',
      'mailops sink --greylist-delay 1s --listen telekom=127.0.0.1:2601',
      'mailops sink --dns 127.0.0.1:5353      # relay: delivery: { dnsServers: ["127.0.0.1:5353"], port: 2526 }',
      'mailops sink --dkim-sample 0.1 --dkim-dns 127.0.0.1:5353',
      'curl -s 127.0.0.1:8026/api/v1/stats; curl -s -X POST 127.0.0.1:8026/api/v1/reset',
    ]))
    .action(async (options) => {
      const { parseDuration, parseHostPort, parseSize } = await import('../util/units.ts');
      const { readFileSync } = await import('node:fs');
      const fail = (flag: string, expected: string, value: unknown): never => {
        throw new ConfigError(`${flag}: expected ${expected}, got ${JSON.stringify(value)}`);
      };
      const listeners = ((options.listen ?? []) as string[]).map((spec) => {
        const [profile, at] = spec.split('=');
        if (!profile || !at || !parseHostPort(at)) fail('--listen', 'PROFILE=HOST:PORT', spec);
        return { profile, smtp: at };
      });
      const greylistDelayMs = options.greylistDelay === undefined ? undefined : parseDuration(options.greylistDelay) ?? fail('--greylist-delay', 'a duration such as 1s or 5m', options.greylistDelay);
      const maxSize = options.maxSize === undefined ? undefined : parseSize(options.maxSize) ?? fail('--max-size', 'a size such as 25MB', options.maxSize);
      if (Boolean(options.tlsKey) !== Boolean(options.tlsCert)) throw new ConfigError('--tls-key and --tls-cert: give both or neither');
      const pem = (flag: string, file: string) => {
        try {
          return readFileSync(file);
        } catch (err) {
          throw new ConfigError(`${flag}: cannot read ${JSON.stringify(file)} (${(err as Error).message})`);
        }
      };
      const tls = options.tls === false ? false : options.tlsKey ? { key: pem('--tls-key', options.tlsKey), cert: pem('--tls-cert', options.tlsCert) } : undefined;
      if (options.dkimKeys && options.dkimDns) throw new ConfigError('--dkim-keys and --dkim-dns: give one of them');
      const dkimDns = options.dkimDns === undefined ? undefined : parseHostPort(options.dkimDns, 53) ?? fail('--dkim-dns', 'HOST:PORT', options.dkimDns);
      const dns = options.dns === undefined ? undefined : parseHostPort(options.dns, 53) ?? fail('--dns', 'HOST:PORT', options.dns);
      const sample = options.dkimSample ?? (options.dkimKeys || dkimDns ? 1 : 0);
      const dkim = sample > 0 ? { sample, keys: options.dkimKeys, dns: dkimDns } : undefined;

      const { startSink, DEFAULT_SMTP, DEFAULT_HTTP } = await import('../sink/index.ts');
      const sink = await startSink({
        smtp: options.smtp ?? DEFAULT_SMTP, http: options.http ?? DEFAULT_HTTP, listeners, profiles: options.profiles,
        profile: options.profile, seed: options.seed, greylistDelayMs, maxSize, tls, dkim, dns,
      });
      const host = (flag: string | undefined, fallback: string) => (flag ?? fallback).replace(/:\d+$/, '') || '0.0.0.0';
      const extra = Object.entries(sink.listenerPorts).map(([p, port]) => `, ${p} on ${host(listeners.find((l) => l.profile === p)!.smtp, '')}:${port}`).join('');
      let internet = '';
      if (dns) {
        // Providers by name, the hosting pool as one range: the line stays readable with 16 servers.
        const hosting = sink.providers.filter((p) => p.name.startsWith('hosting-'));
        const named = sink.providers.filter((p) => !p.name.startsWith('hosting-')).map((p) => `${p.name} ${p.address}`);
        if (hosting.length) named.push(`${hosting.length} hosting servers ${hosting[0].address}${hosting.length > 1 ? `-${hosting.at(-1)!.address}` : ''}`);
        internet = `, DNS on ${dns.host}:${sink.dnsPort}, mail servers on port ${sink.smtpPort}: ${named.join(', ')}`;
      }
      process.stdout.write(`mailops sink: SMTP on ${host(options.smtp, DEFAULT_SMTP)}:${sink.smtpPort}${extra}, HTTP on ${host(options.http, DEFAULT_HTTP)}:${sink.httpPort}${internet}` +
        ` (profile ${options.profile ?? 'by domain'}, seed ${options.seed ?? 1})\n`);
      let timer: NodeJS.Timeout | undefined;
      if (!options.quiet) {
        let last = sink.stats().received;
        timer = setInterval(() => {
          const s = sink.stats();
          const codes = Object.entries(s.replies).map(([code, n]) => `${code}:${n}`).join(' ');
          process.stdout.write(`received ${s.received} (+${Math.max(0, s.received - last)}/10s) duplicates ${s.duplicates} connections ${s.connections.open} replies ${codes}\n`);
          last = s.received;
        }, 10_000);
        timer.unref();
      }
      let stopping = false;
      const stop = async () => {
        if (stopping) return;
        stopping = true;
        clearInterval(timer);
        await sink.close();
        process.exit(0);
      };
      process.on('SIGTERM', () => void stop());
      process.on('SIGINT', () => void stop());
    });
}

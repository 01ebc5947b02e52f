// startSink(): the simulated receiving providers as a library, so that tests of other areas can
// run a sink in-process on ephemeral ports (port 0). `mailops sink` is a thin CLI over it. Opens
// the SMTP, HTTP and (with `dns`) DNS listeners it is asked for, and with `dns` one SMTP listener
// per simulated mail server on its own loopback address; closes them all on close().
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import { ConfigError } from '../config/errors.ts';
import { parseHostPort, type HostPort } from '../util/units.ts';
import type { DnsServer } from '../util/dns-server.ts';
import type { DkimOptions } from './dkim.ts';
import type { MailServer } from './dns.ts';
import { createApiServer } from './http.ts';
import { Policy } from './policy.ts';
import { loadProfiles, type Profile } from './profiles.ts';
import { Session, type SessionContext } from './smtp/session.ts';
import { Stats, type StatsSnapshot } from './stats.ts';

export type { StatsSnapshot } from './stats.ts';

export const DEFAULT_SMTP = '127.0.0.1:2526';
export const DEFAULT_HTTP = '127.0.0.1:8026';

export interface SinkOptions {
  /** SMTP listener, "HOST:PORT" (port 0: ephemeral). Default 127.0.0.1:2526. */
  smtp?: string | HostPort;
  /** HTTP API listener; false: none. Default 127.0.0.1:8026. */
  http?: string | HostPort | false;
  /** Extra SMTP listeners bound to one profile each (its connection checks run at connect). */
  listeners?: { profile: string; smtp: string | HostPort }[];
  /**
   * A simulated internet: DNS for the providers' and hosting servers' domains served here
   * ("HOST:PORT", port 0: ephemeral), and each of those mail servers listening on its own address
   * (dns section of the profiles) on the `smtp` port, bound to its profile at connect. With port 0
   * for `smtp`, one ephemeral port is chosen and used on every address.
   */
  dns?: string | HostPort;
  /** A profiles file, or a parsed document, deep-merged over the built-in profiles. */
  profiles?: string | Record<string, unknown>;
  /** Force one profile for all recipients (e.g. "accept-all"). */
  profile?: string;
  /** Seed for reply decisions and latency draws. Default 1. */
  seed?: number;
  /** Replaces every profile's greylisting delay. */
  greylistDelayMs?: number;
  hostname?: string;
  /** Largest message accepted, bytes (SIZE). Default 50 MB. */
  maxSize?: number;
  /** Idle connections are closed after this long. Default 5 minutes. */
  idleMs?: number;
  /** PEM key and certificate for STARTTLS; default a generated self-signed one; false: no STARTTLS. */
  tls?: { key: string | Buffer; cert: string | Buffer } | false;
  dkim?: DkimOptions;
}

export interface Sink {
  smtpPort: number;
  /** Ports of `listeners`, by profile name. */
  listenerPorts: Record<string, number>;
  httpPort: number | undefined;
  /** With `dns`: the DNS port (UDP and TCP). */
  dnsPort: number | undefined;
  /** With `dns`: the simulated mail servers, providers first, then hosting servers; each at address:port. */
  providers: ProviderServer[];
  stats(): StatsSnapshot;
  /** Clears the counters; all: also greylisting triplets and rate windows. */
  reset(all?: boolean): void;
  close(): Promise<void>;
}

export type ProviderServer = MailServer & { port: number };

let generated: Promise<{ key: string; cert: string }> | undefined;

/** One self-signed certificate per process: generating one takes ~100 ms. */
async function selfSigned(hostname: string): Promise<{ key: string; cert: string }> {
  generated ??= import('selfsigned').then(async ({ generate }) => {
    const pems = await generate([{ name: 'commonName', value: hostname }], { keySize: 2048, algorithm: 'sha256' });
    return { key: pems.private, cert: pems.cert };
  });
  return generated;
}

function hostPort(value: string | HostPort, what: string, defaultPort: number): HostPort {
  if (typeof value !== 'string') return value;
  const hp = parseHostPort(value, defaultPort);
  if (!hp) throw new ConfigError(`${what}: expected HOST:PORT, got ${JSON.stringify(value)}`);
  return hp;
}

async function listen(server: Server | import('node:http').Server, at: HostPort, what: string): Promise<number> {
  server.listen(at.port, at.host);
  try {
    await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => { throw err; })]);
  } catch (err) {
    throw new ConfigError(`${what} ${at.host}:${at.port}: cannot listen (${(err as Error).message})`);
  }
  return (server.address() as AddressInfo).port;
}

/** Why a mail server of the simulated internet could not listen, with what usually helps. */
function serverListenError(err: unknown, server: MailServer, port: number): ConfigError {
  const message = (err as Error).message.replace(/^--dns \S+: /, '');
  const hint = /EADDRNOTAVAIL/.test(message) ? '; on Linux all of 127.0.0.0/8 is loopback, elsewhere add the address to the loopback interface' : '';
  return new ConfigError(`--dns: mail server ${server.name} at ${server.address}:${port}: ${message}${hint}`);
}

export async function startSink(options: SinkOptions = {}): Promise<Sink> {
  const set = loadProfiles(options.profiles);
  const smtpAt = hostPort(options.smtp ?? DEFAULT_SMTP, '--smtp', 2526);
  const dnsAt = options.dns === undefined ? undefined : hostPort(options.dns, '--dns', 53);
  // dns-packet and the zone logic load only when a simulated internet is asked for.
  const dnsModule = dnsAt ? await import('./dns.ts') : undefined;
  const internet = dnsModule ? new dnsModule.SimulatedInternet(set) : undefined;
  const profileNamed = (name: string, what: string): Profile => {
    const p = set.profiles.get(name);
    if (!p) throw new ConfigError(`${what}: unknown profile ${JSON.stringify(name)} (known: ${[...set.profiles.keys()].join(', ')})`);
    return p;
  };
  if (options.profile !== undefined) profileNamed(options.profile, '--profile');
  const seed = options.seed ?? 1;
  const stats = new Stats();
  const policy = new Policy(set, { seed, greylistDelayMs: options.greylistDelayMs, profile: options.profile });
  const hostname = options.hostname ?? 'sink.mailops.test';
  let secureContext: SecureContext | undefined;
  if (options.tls !== false) secureContext = createSecureContext(options.tls ?? (await selfSigned(hostname)));
  // mailauth is loaded only when DKIM verification is asked for.
  const dkim = options.dkim && options.dkim.sample > 0 ? (await import('./dkim.ts')).createDkimSampler(options.dkim, stats, seed) : undefined;

  const sessions = new Set<Session>();
  const base: SessionContext = {
    hostname, maxSize: options.maxSize ?? 50 * 1024 * 1024, idleMs: options.idleMs ?? 300_000,
    policy, stats, secureContext, dkim, sessions, profile: policy.forced,
  };
  const servers: (Server | import('node:http').Server)[] = [];
  const smtpServer = (ctx: SessionContext) => {
    const server = createServer({ noDelay: true }, (socket) => new Session(socket, ctx));
    servers.push(server);
    return server;
  };
  const closeServers = (list: typeof servers) => Promise.all(list.map((s) => new Promise<void>((resolve) => {
    if ('closeAllConnections' in s) s.closeAllConnections();
    s.close(() => resolve());
  })));
  let dns: DnsServer | undefined;
  try {
    let smtpPort = 0;
    for (let attempt = 1; ; attempt++) {
      smtpPort = await listen(smtpServer(base), smtpAt, '--smtp');
      if (!internet) break;
      // Every mail server on its own address, on the same port (a relay has one delivery port).
      let failed: MailServer | undefined;
      try {
        for (const server of internet.servers) {
          failed = server;
          const ctx = { ...base, hostname: server.hosts[0] ?? hostname, profile: policy.forced ?? profileNamed(server.profile, '--dns'), perServer: true };
          await listen(smtpServer(ctx), { host: server.address, port: smtpPort }, '--dns');
        }
        break;
      } catch (err) {
        // With port 0 the port chosen on the --smtp address may be taken on another address: choose again.
        if (smtpAt.port !== 0 || attempt >= 5 || !/EADDRINUSE/.test((err as Error).message)) throw serverListenError(err, failed!, smtpPort);
        await closeServers(servers.splice(0));
      }
    }
    const listenerPorts: Record<string, number> = {};
    for (const l of options.listeners ?? []) {
      const profile = profileNamed(l.profile, '--listen');
      listenerPorts[l.profile] = await listen(smtpServer({ ...base, profile }), hostPort(l.smtp, `--listen ${l.profile}`, 25), `--listen ${l.profile}`);
    }
    let httpPort: number | undefined;
    const api = {
      stats: () => stats.snapshot(),
      reset: (all = false) => {
        stats.reset();
        if (all) policy.clearState();
      },
    };
    if (options.http !== false) {
      const http = createApiServer(api);
      servers.push(http);
      httpPort = await listen(http, hostPort(options.http ?? DEFAULT_HTTP, '--http', 8026), '--http');
    }
    if (dnsModule && internet && dnsAt) dns = await dnsModule.startInternetDns(internet, dnsAt);
    const dnsServer = dns;
    return {
      smtpPort, listenerPorts, httpPort, ...api,
      dnsPort: dnsServer?.port,
      providers: (internet?.servers ?? []).map((server) => ({ ...server, hosts: [...server.hosts], port: smtpPort })),
      close: async () => {
        for (const session of sessions) session.destroy();
        await Promise.all([closeServers(servers), dnsServer?.close()]);
      },
    };
  } catch (err) {
    for (const s of servers) s.close();
    await dns?.close();
    throw err;
  }
}

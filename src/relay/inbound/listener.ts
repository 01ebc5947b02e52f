// The inbound MX listener (inbound.listen): its own smtp-server instances beside the relay's
// submission listener, built from inbound.* and wired to the node's intake, spool and cluster.
// What each session does is session.ts; this module builds its collaborators (the screen with
// its DNSBL cache, the recipient check, greylisting on the spool's tables or the cluster's
// Redis, the message authentication, the content scanners of inbound.scan), binds the
// addresses, and closes them in order. Inbound mail is committed without DKIM signing (it is
// not ours to sign) and with the Received field of the intake.
// May touch: its listening sockets and sessions, the spool's greylist tables (hourly purge), the
// cluster's greylist keys; through the intake, the spool.
import type { SMTPServer } from 'smtp-server';
import { listenAll, sharedServerOptions } from '../receive/listeners.ts';
import type { RelayConfig } from '../../config/types.ts';
import { formatHostPort, type HostPort } from '../../util/units.ts';
import type { Cluster } from '../cluster/cluster.ts';
import type { EventLog } from '../log.ts';
import { ConnectionMetrics } from '../metrics.ts';
import type { Intake } from '../receive/accept.ts';
import { ConnectionAdmission } from '../receive/admission.ts';
import { acceptRepeatedParameters } from '../receive/parameters.ts';
import { ProxyProtocolGate } from '../receive/proxy.ts';
import { useOwnEnhancedCodes } from '../receive/replies.ts';
import type { TlsMaterial } from '../receive/tls.ts';
import { KeyTable } from '../sign/keys.ts';
import { MessageAuthentication } from './authentication.ts';
import { InboundDns } from './dns.ts';
import { Dnsbl } from './dnsbl.ts';
import { Greylist, RedisGreylistStore } from './greylist.ts';
import { RecipientCheck } from './recipients.ts';
import type { ContentScanner } from './scan.ts';
import { buildScanners } from './scanners/index.ts';
import { ClientScreen } from './screen.ts';
import { InboundSessions, InboundStats } from './session.ts';

/** How often greylist records past their time are dropped from the spool. */
const PURGE_EVERY_MS = 3_600_000;

export interface InboundListener {
  addresses: HostPort[];
  stats: InboundStats;
  /** Admission of the inbound listener's own slots. */
  connections: ConnectionMetrics;
  /** New sessions get 421; messages being received get their reply (at most `graceMs`); then the sockets close. */
  close(graceMs: number): Promise<void>;
}

export interface InboundDependencies {
  config: RelayConfig;
  intake: Intake;
  log: EventLog;
  tls: TlsMaterial;
  cluster?: Cluster;
  /** The content scanners; by default those inbound.scan configures (scanners/index.ts). */
  scanners?: ContentScanner[];
  /** The clock of greylisting and the screen's caches (tests move it on instead of waiting). */
  now?: () => number;
}

export async function startInbound(deps: InboundDependencies): Promise<InboundListener> {
  useOwnEnhancedCodes();
  acceptRepeatedParameters();
  const { config, log, tls, cluster } = deps;
  const inbound = config.inbound!;
  const smtp = config.smtp;
  const now = deps.now ?? Date.now;
  const spool = deps.intake.spool;
  const dns = new InboundDns(config.delivery.dnsServers, inbound.dnsbl.timeout);
  const connections = new ConnectionMetrics();
  const admission = new ConnectionAdmission({ smtp, log, metrics: connections });
  const kept = deps.scanners ? [] : buildScanners(inbound.scan);
  const stats = new InboundStats();
  const sessions = new InboundSessions({
    config,
    // inbound mail is not ours to sign: the intake's fix-ups and Received field, no DKIM keys
    intake: { ...deps.intake, preparer: { hostname: smtp.hostname, keys: new KeyTable([]) } },
    log,
    admission,
    screen: new ClientScreen(inbound, new Dnsbl(inbound.dnsbl, dns, now), now),
    recipients: new RecipientCheck({ config: inbound, helo: smtp.hostname, now }),
    greylist: new Greylist({
      config: inbound.greylist,
      store: cluster ? new RedisGreylistStore(cluster.link, spool.greylist) : spool.greylist,
      verifiedName: (ip) => dns.verifiedName(ip),
      now,
    }),
    authentication: new MessageAuthentication(inbound.auth, smtp.hostname, dns),
    scanners: deps.scanners ?? kept,
    verifiedName: (ip) => dns.verifiedName(ip),
    stats,
  });
  const proxyGate = new ProxyProtocolGate(smtp.proxy, log);
  const purge = setInterval(() => void spool.greylist.purge(now()), PURGE_EVERY_MS);
  purge.unref();

  const options = {
    ...sharedServerOptions(smtp, tls, 'mailops MX ready'),
    authOptional: true,
    disabledCommands: ['AUTH'],
    onConnect: sessions.onConnect.bind(sessions),
    onClose: sessions.onClose.bind(sessions),
    onRcptTo: sessions.onRcptTo.bind(sessions),
    onData: sessions.onData.bind(sessions),
  };

  const { servers, addresses } = await listenAll(inbound.listen, options as ConstructorParameters<typeof SMTPServer>[0], proxyGate,
    (err) => log.emit('smtp-error', { listener: 'inbound', error: err.message }));
  log.emit('inbound-listening', {
    smtp: addresses.map(formatHostPort), domains: inbound.domains, verify: inbound.verify, greylist: inbound.greylist.enabled,
    greylistStore: cluster ? 'redis' : 'spool', dnsbl: inbound.dnsbl.sites.map((s) => s.text), scanners: (deps.scanners ?? kept).map((s) => s.name),
  });

  return {
    addresses,
    stats,
    connections,
    async close(graceMs: number) {
      sessions.closing = true;
      await sessions.reception.settle(graceMs);
      clearInterval(purge);
      proxyGate.close();
      admission.close();
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
      for (const scanner of kept) scanner.close();
      dns.cancel();
    },
  };
}

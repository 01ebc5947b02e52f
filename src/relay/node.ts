// A relay node: the stages of a message's journey built in its order and wired through their
// constructors (receive → spool → schedule → deliver, with outcomes and bounces beside), the HTTP
// API with this start's local admin token written to the spool (api/access.ts), and the orderly
// stop (new sessions get 421, in-flight deliveries finish or return to the queue), at once or at
// the end of a drain (drain.ts: no new mail, deliver what the spool holds, then stop).
import type { RelayConfig } from '../config/types.ts';
import { formatHostPort, type HostPort } from '../util/units.ts';
import { ApiAccess, adminTokenPath, localNodeUrl, newAdminToken, removeLocalAdmin, writeLocalAdmin } from './api/access.ts';
import { startApi } from './api/server.ts';
import { resumeDomain } from './api/sending.ts';
import { Bounces } from './bounce/handler.ts';
import { Dispatcher } from './deliver/dispatcher.ts';
import { Suspensions } from './deliver/suspensions.ts';
import { EventLog } from './log.ts';
import { Metrics } from './metrics.ts';
import type { Intake } from './receive/accept.ts';
import { AuthGuard } from './receive/auth-guard.ts';
import { IntakePacer } from './receive/pacing.ts';
import { startSmtp } from './receive/server.ts';
import { tlsMaterial } from './receive/tls.ts';
import { LaneSignals } from './schedule/lane-signals.ts';
import { Outcomes } from './schedule/outcomes.ts';
import { Scheduler } from './schedule/scheduler.ts';
import { Shaper } from './shape/shaper.ts';
import { KeyTable } from './sign/keys.ts';
import { SignerPool } from './sign/pool.ts';
import { Spool } from './spool/spool.ts';
import { Cluster } from './cluster/cluster.ts';
import { Drain, type DrainStatus } from './drain.ts';
import { DeliveryLog } from '../logs/delivery-log.ts';
import { Tenants } from '../logs/tenants.ts';
import { startInbound, type InboundListener } from './inbound/listener.ts';
import type { ContentScanner } from './inbound/scan.ts';

export interface RelayNode {
  config: RelayConfig;
  spool: Spool;
  log: EventLog;
  metrics: Metrics;
  /** The delivery logs' store and live records (src/logs/). */
  logs: DeliveryLog;
  smtpAddresses: HostPort[];
  /** The inbound MX listener (inbound.listen), when configured. */
  inbound?: InboundListener;
  httpAddress: HostPort;
  stop(): Promise<void>;
  /** Stop taking mail, deliver until the spool is empty or `timeoutMs` has passed, then stop. */
  drain(timeoutMs: number): DrainStatus;
  /** Settles once the node has stopped, whoever stopped it (stop(), a drain). */
  finished: Promise<void>;
}

/** How often a few free spool pages are handed back to the file system. */
const RECLAIM_EVERY_MS = 10_000;
const RECLAIM_PAGES = 2048;

export interface RelayOptions {
  log?: EventLog;
  /** For tests: the inbound MX's content scanners instead of inbound.scan's, and its clock. */
  inbound?: { scanners?: ContentScanner[]; now?: () => number };
}

export async function startRelay(config: RelayConfig, options: RelayOptions = {}): Promise<RelayNode> {
  const keys = new KeyTable(config.dkim); // a bad DKIM key stops the start before anything is opened
  const log = options.log ?? new EventLog(config.log.file);
  const lanes = config.lanes.map((l) => l.name);
  const spool = new Spool(config.spool.dir, { commitBatch: config.spool.commitBatch, commitInterval: config.spool.commitInterval, lanes });
  const metrics = new Metrics(lanes);
  // every record event from here on goes to the delivery log's store (off this thread)
  const logs = new DeliveryLog(log, config);
  const tenants = new Tenants(config.tenants);
  // in a cluster: the shared lists and pauses are read before the first delivery
  const cluster = config.cluster ? new Cluster(config.cluster, log) : undefined;
  await cluster?.connect();
  const signals = new LaneSignals();
  // a committed message wakes its lane at once rather than at the lane's next timer
  const preparer = { hostname: config.smtp.hostname, keys, pool: keys.size ? new SignerPool(config.dkim) : undefined };
  // a higher lane's message, by any way in, engages the pacing of the lowest lane's intake
  const pacer = new IntakePacer(lanes, metrics.pacing);
  const intake: Intake = { config, spool, log, metrics, committed: (lane) => { signals.committed(lane); pacer.accepted(lane); }, preparer, tenants };
  const bounces = new Bounces(config.bounces, config.smtp.hostname, spool, log, intake, cluster);
  const outcomes = new Outcomes({ spool, metrics, log, bounces, signals });
  const shaper = new Shaper(config, log, cluster ? (path, perSecond, perHour) => cluster.rate(path, perSecond, perHour) : undefined);
  const dispatcher = new Dispatcher({ config, spool, outcomes, shaper, suspensions: new Suspensions(spool.suspensions), metrics, log, cluster });
  const scheduler = new Scheduler({ config, spool, log, signals, dispatcher, outcomes });
  // another node's operator resumed a domain: what this node held for it is due now, as there
  cluster?.on('resume', (domain) => void resumeDomain({ dispatcher, spool, scheduler }, domain, false));
  const tls = await tlsMaterial(config);
  const authGuard = new AuthGuard(config.smtp.authFailures, metrics.auth, log);
  const smtp = await startSmtp(intake, tls, pacer, authGuard);
  // a listener that cannot start (its address in use) must not leave the others open: the start
  // fails with the error and the process can exit
  const failedStart = async (err: unknown): Promise<never> => {
    await smtp.close(0);
    pacer.close();
    await cluster?.stop();
    await preparer.pool?.close();
    await spool.close();
    await logs.close();
    throw err;
  };
  const inbound = config.inbound ? await startInbound({ config, intake, log, tls, cluster, ...options.inbound }).catch(failedStart) : undefined;
  let smtpClosed: Promise<void> | undefined;
  const closeSmtp = () => (smtpClosed ??= Promise.all([smtp.close(10_000), inbound?.close(10_000)]).then(() => {}));
  const drain = new Drain({ spool, log, closeIntake: closeSmtp, stop: () => node.stop() });
  const adminToken = newAdminToken();
  const access = new ApiAccess({ httpToken: config.http.token, adminToken, adminFile: adminTokenPath(config.spool.dir), tenants });
  const api = await startApi({ ...intake, scheduler, dispatcher, bounces, access, drain, cluster, logs, inbound, startedAt: Date.now() }, config.http.listen)
    .catch(async (err) => {
      await inbound?.close(0);
      return failedStart(err);
    });
  cluster?.join({ api: config.cluster?.advertise ?? `http://${formatHostPort(api.address)}`, smtp: smtp.addresses.map(formatHostPort) });
  writeLocalAdmin(config.spool.dir, { node: localNodeUrl(api.address), token: adminToken });
  const reclaim = setInterval(() => spool.reclaim(RECLAIM_PAGES), RECLAIM_EVERY_MS);
  scheduler.start();
  log.emit('listening', {
    smtp: smtp.addresses.map(formatHostPort), http: formatHostPort(api.address), spool: config.spool.dir,
    lanes, queued: spool.messages, recoveredInFlight: spool.recoveredActive, recoveredDelivered: spool.recoveredDelivered, selfSignedTls: tls.selfSigned,
  });

  let stopped: Promise<void> | undefined;
  let markFinished!: () => void;
  const finished = new Promise<void>((resolve) => (markFinished = resolve));
  const node: RelayNode = {
    config, spool, log, metrics, logs, smtpAddresses: smtp.addresses, inbound, httpAddress: api.address, finished,
    drain: (timeoutMs) => drain.start(timeoutMs),
    stop() {
      stopped ??= (async () => {
        const closingSmtp = closeSmtp();
        scheduler.stop();
        await dispatcher.stop(30_000);
        await closingSmtp;
        await cluster?.stop();
        pacer.close();
        await preparer.pool?.close();
        api.server.closeAllConnections();
        await new Promise((resolve) => api.server.close(resolve));
        removeLocalAdmin(config.spool.dir, adminToken);
        clearInterval(reclaim);
        await spool.close();
        log.emit('stopped', { queued: spool.messages });
        await logs.close();
        await log.close();
        markFinished();
      })();
      return stopped;
    },
  };
  return node;
}

// The dispatcher: takes the jobs the scheduler claimed, finds where each goes (a domain route,
// the lane's route, the smarthost, else the domain's MX hosts), and puts it on the ready queue of
// its egress path = (the lane's sending address, the destination's site). It owns the paths and
// the connections they open, and carries out what the shaping says: a paused lane's queued jobs
// wait (a short pause) or go back to the spool until the pause ends; a group of hosts that cannot
// be reached is left alone for a while and its jobs are deferred at once, so that a dead server
// is not hammered with a connection attempt per message.
//
// The pieces: deliver/egress-path.ts (ready queues, admission, the next job for a connection),
// deliver/connection.ts (one SMTP connection), shape/shaper.ts (profiles and backoff), and the
// operator's suspensions (deliver/suspensions.ts). Outcomes go to the OutcomeSink it was built
// with (schedule/outcomes.ts). In a cluster (cluster/cluster.ts) a connection opens only with a
// lease from the cluster-wide limit of its path, and pauses that replies cause and the operator's
// suspensions are shared: this node's go to the others, theirs are applied here.
// May touch: its paths, the MX cache, the log; the spool read-only; the cluster's leases and lists.
import type { LaneConfig, RelayConfig } from '../../config/types.ts';
import type { LaneEgress } from '../../config/sending-types.ts';
import { formatHostPort, type HostPort } from '../../util/units.ts';
import type { EventLog } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Spool } from '../spool/spool.ts';
import { UNTIL_RESUMED, type Shaper, type SiteRef } from '../shape/shaper.ts';
import type { ShapingAction } from '../shape/path-shaping.ts';
import { runConnection, type ConnectionContext } from './connection.ts';
import { EgressPath, LaneSlots, type HopGroup, type PathConnection } from './egress-path.ts';
import type { Job, OutcomeSink } from './job.ts';
import { MxResolver, type HopAnswer } from './mx.ts';
import type { Suspensions } from './suspensions.ts';
import type { Cluster, PathPause } from '../cluster/cluster.ts';
import { OWN_LIMIT, type Lease } from '../cluster/limits.ts';

/** How far ahead jobs held until further notice are deferred (they come back and are held again). */
const SUSPENDED_RECHECK_MS = 3_600_000;

/** A pause shorter than this keeps the lane's jobs in memory; a longer one hands them back to the spool. */
const MEMORY_HOLD_MS = 30_000;

/** After a "too many connections" refusal at connect, no new connection to those hosts before this. */
const CONNECT_REFUSED_HOLD_MS = 1_000;

/** "Not now" refusals one job may take before it goes onto its lane's retry schedule after all. */
const MAX_NOT_NOW = 20;

/** The cluster is at a path's connection limit: no new connection to that group before this. */
const LEASE_REFUSED_HOLD_MS = 250;

function holdUntil(until: number, now: number): number {
  return until >= UNTIL_RESUMED ? now + SUSPENDED_RECHECK_MS : until;
}

export interface DispatcherParts {
  config: RelayConfig;
  spool: Spool;
  outcomes: OutcomeSink;
  shaper: Shaper;
  suspensions: Suspensions;
  metrics: Metrics;
  log: EventLog;
  /** Absent for a single node. */
  cluster?: Cluster;
}

export class Dispatcher {
  private readonly paths = new Map<string, EgressPath>();
  private readonly config: RelayConfig;
  private readonly outcomes: OutcomeSink;
  private readonly shaper: Shaper;
  private readonly suspensions: Suspensions;
  private readonly metrics: Metrics;
  private readonly log: EventLog;
  private readonly mx: MxResolver;
  private readonly cluster?: Cluster;
  private readonly slots: LaneSlots;
  /** Per lane, paths waiting for one of the lane's relay-wide connection slots. */
  private readonly starved: Set<EgressPath>[];
  private readonly running = new Set<Promise<void>>();
  private readonly connection: ConnectionContext;
  /** Where an answer's hops lead (site and group key), worked out once per answer, not per job. */
  private readonly placed = new WeakMap<HopAnswer, { site: SiteRef; groupKey: string }>();
  /** The same for each configured smarthost (routes, lanes' routes, delivery.smarthost). */
  private readonly smarthosts = new Map<HostPort, { answer: HopAnswer; site: SiteRef; groupKey: string }>();
  private stopping = false;

  constructor(parts: DispatcherParts) {
    this.config = parts.config;
    this.outcomes = parts.outcomes;
    this.shaper = parts.shaper;
    this.suspensions = parts.suspensions;
    this.metrics = parts.metrics;
    this.log = parts.log;
    this.cluster = parts.cluster;
    this.mx = new MxResolver(this.config.delivery.dnsServers, this.config.delivery.port);
    this.slots = new LaneSlots(this.config.lanes);
    this.starved = this.config.lanes.map(() => new Set());
    this.connection = {
      config: this.config, spool: parts.spool, outcomes: this.outcomes, stopping: () => this.stopping,
      observe: (path, p, reply) => this.observe(path, p, reply),
      notNow: (path, group, job, reply) => this.notNow(path, group, job, reply),
      refusedAtConnect: (path, c, p, reply) => this.refusedAtConnect(path, c, p, reply),
      unreachable: (path, group, p, reply) => this.unreachable(path, group, p, reply),
      lease: (path, c) => this.lease(path, c),
    };
    const cluster = this.cluster;
    if (cluster) {
      cluster.on('pause', (pause) => {
        const path = this.paths.get(pause.path);
        if (path) this.pauseFromCluster(path, pause);
      });
      cluster.on('suspend', (s) => void this.suspend(s.domain, s.until, s.reason, false));
    }
  }

  /** A lease for one more connection on the path: the cluster's when there is one (undefined: at its limit, try shortly). */
  private async lease(path: EgressPath, c: PathConnection): Promise<Lease | undefined> {
    if (!this.cluster) return OWN_LIMIT;
    const lease = await this.cluster.lease(path.key, path.connectionLimit(Date.now()));
    if (!lease) c.group.openAfter = Date.now() + LEASE_REFUSED_HOLD_MS;
    return lease;
  }

  /** Another node paused this path (a reply it got): the same lanes pause here. */
  private pauseFromCluster(path: EgressPath, pause: PathPause): void {
    const lanes = pause.lanes.map((name) => this.config.lanes.findIndex((l) => l.name === name)).filter((p) => p >= 0);
    if (lanes.length === 0 || pause.until <= Date.now()) return;
    const action = path.shaping.pause(pause.kind, pause.until, pause.reply, 'cluster', lanes);
    this.shaper.logAction(path, action);
    this.paused(path, action);
  }

  /** The smarthost that a route, the lane or the global setting names for this domain, if any. */
  private smarthostFor(domain: string, lane: LaneConfig): HostPort | undefined {
    for (const route of this.config.routes) {
      if (domain === route.domain || (route.domain.startsWith('.') && domain.endsWith(route.domain))) return route.smarthost;
    }
    return lane.route ?? this.config.delivery.smarthost;
  }

  submit(job: Job): void {
    const manual = this.suspensions.active(job.domain, Date.now());
    if (manual) {
      this.outcomes.deferred(job, job.recipients, `451 4.7.0 ${job.domain} suspended by the operator (${manual.reason})`, {}, holdUntil(manual.until, Date.now()));
      return;
    }
    const smarthost = this.smarthostFor(job.domain, job.lane);
    if (smarthost) {
      let known = this.smarthosts.get(smarthost);
      if (!known) {
        const key = `smarthost:${formatHostPort(smarthost)}`;
        known = { answer: { ok: true, hops: [{ mx: smarthost.host, address: smarthost.host, port: smarthost.port }] }, site: this.shaper.siteForSmarthost(key), groupKey: key };
        this.smarthosts.set(smarthost, known);
      }
      return this.place(job, known.answer, known);
    }
    const known = this.mx.peek(job.domain);
    if (known) return this.place(job, known);
    void this.mx.hops(job.domain).then((answer) => this.place(job, answer));
  }

  private place(job: Job, answer: HopAnswer, where?: { site: SiteRef; groupKey: string }): void {
    if (this.stopping) return this.outcomes.released(job);
    if (!answer.ok) {
      if (answer.permanent) this.outcomes.failed(job, job.recipients, answer.reply, {});
      else this.outcomes.deferred(job, job.recipients, answer.reply, {});
      return;
    }
    where ??= this.placed.get(answer);
    if (!where) {
      const mxNames = answer.hops.map((h) => h.mx);
      where = { site: this.shaper.siteForMx(mxNames), groupKey: `mx:${[...new Set(mxNames.map((h) => h.toLowerCase()))].sort().join(',')}` };
      this.placed.set(answer, where);
    }
    const path = this.pathFor(job.lane, where.site);
    const group = path.group(where.groupKey, answer.hops);
    path.noteDomain(job.domain);
    const now = Date.now();
    if (now < group.unreachableUntil) return this.outcomes.deferred(job, job.recipients, group.unreachableReply, {}, group.unreachableUntil);
    const p = job.lane.priority;
    if (this.heldLong(path, p, now)) return this.outcomes.deferred(job, job.recipients, path.shaping.pauseReply(p), {}, holdUntil(path.shaping.pausedUntil(p), now));
    path.enqueue(job, group);
  }

  private heldLong(path: EgressPath, p: number, now: number): boolean {
    return path.shaping.paused(p, now) && path.shaping.pausedUntil(p) - now > MEMORY_HOLD_MS;
  }

  /** Lanes that share a sending address share its paths; the path speaks with the HELO of the highest such lane. */
  private pathFor(lane: LaneConfig, site: SiteRef): EgressPath {
    const egressName = lane.egress?.address ?? 'default';
    const key = `${egressName}>${site.key}`;
    let path = this.paths.get(key);
    if (!path) {
      const lanes = this.config.lanes;
      const members = lanes.map((l) => (l.egress?.address ?? 'default') === egressName);
      const egress: LaneEgress | undefined = lanes[members.indexOf(true)].egress;
      path = new EgressPath({
        egress, egressName, site: site.key, shaping: this.shaper.shapingFor(key, site, members), lanes, members, slots: this.slots,
        hooks: {
          open: (p, c) => this.open(p, c),
          starved: (p, l) => this.starved[l.priority].add(p),
          freed: (l) => this.freed(l),
        },
      });
      this.paths.set(key, path);
      const pause = this.cluster?.pauseFor(key);
      if (pause) this.pauseFromCluster(path, pause);
    }
    return path;
  }

  private open(path: EgressPath, c: PathConnection): void {
    const run = runConnection(path, c, this.connection)
      .catch((err) => this.log.emit('delivery-error', { path: path.key, destination: c.group.key, error: (err as Error).message }));
    this.running.add(run);
    void run.finally(() => {
      this.running.delete(run);
      if (!this.stopping) this.forgetIfIdle(path);
    });
  }

  /** A lane's relay-wide slot came free: paths that waited for one look again. */
  private freed(lane: LaneConfig): void {
    const waiting = this.starved[lane.priority];
    if (waiting.size === 0 || this.stopping) return;
    for (const path of [...waiting]) {
      if (this.slots.used[lane.priority] >= lane.concurrency) break;
      waiting.delete(path);
      path.pump();
    }
  }

  /** Provider paths are few and stay; a path to an MX set of the long tail goes when idle. */
  private forgetIfIdle(path: EgressPath): void {
    if (path.shaping.profile.name !== 'default' || !path.idleNow()) return;
    this.paths.delete(path.key);
    for (const waiting of this.starved) waiting.delete(path);
  }

  /** A refusal seen on a path: backoff rules, and a pause carried out. Returns until when lane `p` is paused. */
  private observe(path: EgressPath, p: number, reply: string, cap?: number): number {
    const action = this.shaper.observe(path, p, reply, cap);
    if (action && action.action !== 'reduce') {
      this.paused(path, action);
      const first = this.config.lanes.findIndex((l) => l.name === action.lanes[0]);
      this.cluster?.sharePause({ path: path.key, kind: action.action === 'suspend' ? 'suspended' : 'paused', until: path.shaping.pausedUntil(first), reply, lanes: action.lanes });
    }
    const now = Date.now();
    return path.shaping.paused(p, now) ? holdUntil(path.shaping.pausedUntil(p), now) : 0;
  }

  /** Lanes of a path were paused: their queued jobs wait (short pause) or go back to the spool until it ends. */
  private paused(path: EgressPath, action: ShapingAction): void {
    const now = Date.now();
    const lanes = new Set(action.lanes);
    const jobs = path.take((job) => lanes.has(job.lane.name) && this.heldLong(path, job.lane.priority, now));
    for (const job of jobs) {
      const p = job.lane.priority;
      this.outcomes.deferred(job, job.recipients, path.shaping.pauseReply(p), {}, holdUntil(path.shaping.pausedUntil(p), now));
    }
    path.pump();
  }

  private notNow(path: EgressPath, group: HopGroup, job: Job, reply: string): void {
    const now = Date.now();
    const p = job.lane.priority;
    job.notNow = (job.notNow ?? 0) + 1;
    this.metrics.count(job.lane.name, 'requeued', job.recipients.length);
    if (this.stopping) return this.outcomes.released(job);
    if (job.notNow > MAX_NOT_NOW) return this.outcomes.deferred(job, job.recipients, reply, {});
    if (this.heldLong(path, p, now)) return this.outcomes.deferred(job, job.recipients, path.shaping.pauseReply(p), {}, holdUntil(path.shaping.pausedUntil(p), now));
    path.requeueFront(job, group);
  }

  private refusedAtConnect(path: EgressPath, c: PathConnection, p: number, reply: string): void {
    this.observe(path, p, reply, Math.max(1, path.established));
    c.group.openAfter = Date.now() + CONNECT_REFUSED_HOLD_MS;
  }

  private unreachable(path: EgressPath, group: HopGroup, p: number, reply: string): void {
    this.observe(path, p, reply);
    const now = Date.now();
    group.unreachableUntil = now + this.config.delivery.unreachableBackoff;
    group.unreachableReply = reply;
    this.log.emit('destination-paused', { destination: group.key, path: path.key, until: new Date(group.unreachableUntil).toISOString(), reply });
    for (const job of path.take((_, g) => g === group)) this.outcomes.deferred(job, job.recipients, reply, {}, group.unreachableUntil);
    path.dismissIdle(group);
  }

  /** Clears the unreachable pauses of the groups that serve a domain (every one without a domain): an operator asked to retry now. */
  unpause(domain?: string): void {
    for (const path of this.paths.values()) {
      if (domain && !path.recent.includes(domain) && !path.site.startsWith('smarthost:')) continue;
      for (const group of path.groups.values()) group.unreachableUntil = 0;
    }
  }

  /**
   * An operator suspends a domain (until `until`, or until resumed); its queued jobs wait. Resolves
   * once recorded on disk. `share`: tell the cluster (false when the cluster told us).
   */
  async suspend(domain: string, until: number, reason: string, share = true): Promise<void> {
    const d = domain.toLowerCase();
    await this.suspensions.set(d, { until, reason });
    if (share) this.cluster?.shareSuspension({ domain: d, until, reason });
    const reply = `451 4.7.0 ${d} suspended by the operator (${reason})`;
    for (const path of this.paths.values()) {
      for (const job of path.take((j) => j.domain === d)) this.outcomes.deferred(job, job.recipients, reply, {}, holdUntil(until, Date.now()));
    }
    this.log.emit('shaping', { action: 'suspend', domain: d, until: until >= UNTIL_RESUMED ? undefined : new Date(until).toISOString(), reply, by: 'operator' });
  }

  /** Lifts an operator's suspension of a domain and any pause of the paths to its site (on every node when `share`). */
  async resume(domain: string, share = true): Promise<{ domain: boolean; site?: string }> {
    const d = domain.toLowerCase();
    const had = await this.suspensions.delete(d);
    if (had) this.log.emit('shaping', { action: 'resume', domain: d, by: 'operator' });
    const known = this.mx.peek(d);
    const site = known?.ok ? this.shaper.siteForMx(known.hops.map((h) => h.mx)).key : undefined;
    let resumed: string | undefined;
    const paths: string[] = [];
    for (const path of this.paths.values()) {
      if (path.site !== site && !path.recent.includes(d)) continue;
      const action = path.shaping.resume();
      if (action) this.shaper.logAction(path, action);
      resumed = path.site;
      paths.push(path.key);
      path.pump();
    }
    if (share) this.cluster?.shareResume(d, paths);
    return { domain: had, site: resumed };
  }

  /** Suspensions in force (for the destinations view). */
  suspended(now: number) {
    return this.suspensions.list(now);
  }

  /** Every egress path with its state per lane, for `mailops queue destinations` and /metrics. */
  describe(now = Date.now()) {
    return [...this.paths.values()].map((path) => {
      const shaping = path.shaping;
      const lanes = this.config.lanes.filter((l) => (l.egress?.address ?? 'default') === path.egressName);
      const lowest = lanes[lanes.length - 1].priority;
      const paused = shaping.paused(lowest, now);
      return {
        path: path.key, egress: path.egressName, site: path.site, profile: shaping.profile.name,
        state: shaping.laneState(lowest, now), connections: path.open, limit: shaping.limit(lowest, now),
        maxConnections: shaping.profile.maxConnections, messagesPerConnection: shaping.profile.messagesPerConnection,
        rate: { perSecond: shaping.profile.ratePerSecond, perHour: shaping.profile.ratePerHour },
        pausedUntil: paused ? (shaping.pausedUntil(lowest) >= UNTIL_RESUMED ? 'until resumed' : new Date(shaping.pausedUntil(lowest)).toISOString()) : undefined,
        reply: paused ? shaping.pauseReply(lowest) : undefined,
        lanes: Object.fromEntries(lanes.map((l) => {
          const p = l.priority;
          const lanePaused = shaping.paused(p, now);
          return [l.name, {
            state: shaping.laneState(p, now), limit: shaping.limit(p, now), busy: path.busy[p], queued: path.queued(p),
            pausedUntil: lanePaused ? (shaping.pausedUntil(p) >= UNTIL_RESUMED ? 'until resumed' : new Date(shaping.pausedUntil(p)).toISOString()) : undefined,
            reply: lanePaused ? shaping.pauseReply(p) : undefined,
          }];
        })),
        destinations: path.recent.map((d) => `mx:${d}`), history: shaping.history,
      };
    });
  }

  /** Stops opening connections, hands queued jobs back, and waits for messages in flight. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    for (const path of this.paths.values()) {
      for (const job of path.take(() => true)) this.outcomes.released(job);
      path.stop();
    }
    const deadline = new Promise((resolve) => setTimeout(resolve, graceMs).unref());
    await Promise.race([Promise.all(this.running), deadline]);
  }
}

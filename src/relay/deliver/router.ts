// Picks the destination for each job (domain route, lane route, smarthost, else MX lookup of the
// domain), keeps one Destination per target, and opens connections as slots free up. A target
// that cannot be reached is paused for a while and its queued jobs are deferred at once, so the
// relay does not hammer a dead server with a connection attempt per message.
import type { LaneConfig, RelayConfig } from '../../config/types.ts';
import { formatHostPort, type HostPort } from '../../util/units.ts';
import type { EventLog } from '../log.ts';
import type { Spool } from '../spool/spool.ts';
import { runConnection } from './connection.ts';
import { Destination, LaneSlots } from './destination.ts';
import type { Job, OutcomeSink } from './job.ts';
import { MxResolver, type HopAnswer } from './mx.ts';
import { Suspensions } from './suspensions.ts';
import { Shaper } from '../shape/shaper.ts';
import type { Site } from '../shape/site.ts';

/** How far ahead jobs of a site suspended until further notice are deferred (they come back and are deferred again). */
const SUSPENDED_RECHECK_MS = 3_600_000;

function holdUntil(until: number, now: number): number {
  return until >= Number.MAX_SAFE_INTEGER ? now + SUSPENDED_RECHECK_MS : until;
}

export class Router {
  readonly destinations = new Map<string, Destination>();
  private readonly slots: LaneSlots;
  private readonly mx: MxResolver;
  private readonly config: RelayConfig;
  private readonly outcomes: OutcomeSink;
  private readonly spool: Spool;
  private readonly log: EventLog;
  private readonly running = new Set<Promise<void>>();
  /** Per lane, destinations waiting for one of the lane's connection slots, in arrival order. */
  private readonly starved: Set<Destination>[];
  private stopping = false;
  readonly shaper: Shaper;
  /** Domains an operator suspended (`mailops queue suspend`): until when, and why. */
  readonly suspended: Suspensions;

  constructor(config: RelayConfig, spool: Spool, outcomes: OutcomeSink, log: EventLog) {
    this.config = config;
    this.spool = spool;
    this.outcomes = outcomes;
    this.log = log;
    this.slots = new LaneSlots(config.lanes);
    this.starved = config.lanes.map(() => new Set());
    this.mx = new MxResolver(config.delivery.dnsServers, config.delivery.port);
    this.shaper = new Shaper(config, log);
    this.suspended = new Suspensions(spool);
    this.shaper.onPause = (site) => this.sitePaused(site);
  }

  /** The smarthost that a route, the lane or the global setting names for this domain, if any. */
  private smarthostFor(domain: string, lane: LaneConfig): HostPort | undefined {
    for (const route of this.config.routes) {
      if (domain === route.domain || (route.domain.startsWith('.') && domain.endsWith(route.domain))) return route.smarthost;
    }
    return lane.route ?? this.config.delivery.smarthost;
  }

  submit(job: Job): void {
    const destination = this.destinationFor(job);
    if (Date.now() < destination.pausedUntil) {
      this.outcomes.deferred(job, job.recipients, destination.pauseReply, {}, destination.pausedUntil);
      return;
    }
    const held = this.hold(job.domain, destination.site);
    if (held) return this.outcomes.deferred(job, job.recipients, held.reply, {}, held.until);
    destination.enqueue(job);
  }

  private destinationFor(job: Job): Destination {
    const smarthost = this.smarthostFor(job.domain, job.lane);
    const key = smarthost ? `smarthost:${formatHostPort(smarthost)}` : `mx:${job.domain}`;
    let destination = this.destinations.get(key);
    if (!destination) {
      const resolve = smarthost
        ? (): Promise<HopAnswer> => Promise.resolve({ ok: true, hops: [{ mx: smarthost.host, address: smarthost.host, port: smarthost.port }] })
        : () => this.mx.hops(job.domain);
      destination = new Destination(key, resolve, this.config.lanes, this.config.delivery.maxConnectionsPerDestination,
        this.slots, (d, lane) => this.open(d, lane), (d, lane) => this.starved[lane.priority].add(d));
      this.destinations.set(key, destination);
      this.assignSite(destination, smarthost ? undefined : job.domain);
    }
    return destination;
  }

  /** Whether jobs for a domain must wait: an operator's suspension, or its site's pause. */
  private hold(domain: string, site: Site | undefined): { reply: string; until: number } | undefined {
    const now = Date.now();
    const manual = this.suspended.active(domain, now);
    if (manual) return { reply: `451 4.7.0 ${domain} suspended by the operator (${manual.reason})`, until: holdUntil(manual.until, now) };
    if (site?.paused(now)) return { reply: site.pauseReply, until: holdUntil(site.pausedUntil, now) };
    return undefined;
  }

  /** Sites group destinations by provider or MX set, so the site is known after the MX lookup. */
  private assignSite(destination: Destination, domain: string | undefined): void {
    const join = (site: Site) => {
      if (this.stopping) return;
      destination.site = site;
      site.join(destination);
      if (site.paused()) this.sitePaused(site);
      else destination.pump();
    };
    if (!domain) return join(this.shaper.siteForSmarthost(destination.key));
    void this.mx.hops(domain).then((answer) => join(this.shaper.siteForMx(answer.ok ? answer.hops.map((h) => h.mx) : [domain])));
  }

  /** A site was paused or suspended: what its destinations have queued waits until it returns. */
  private sitePaused(site: Site): void {
    const hold = { reply: site.pauseReply, until: holdUntil(site.pausedUntil, Date.now()) };
    for (const member of site.members) {
      const destination = member as Destination;
      for (const job of destination.drain()) this.outcomes.deferred(job, job.recipients, hold.reply, {}, hold.until);
      destination.dismissIdle();
    }
  }

  /** Outcomes of one connection, with every failure reply shown to the site's backoff rules first. */
  private observed(site: Site | undefined): OutcomeSink {
    const o = this.outcomes;
    if (!site) return o;
    const seen = (reply: string) => {
      this.shaper.observe(site, reply);
      return site.paused() ? holdUntil(site.pausedUntil, Date.now()) : 0;
    };
    return {
      delivered: (job, rs, reply, attempt) => o.delivered(job, rs, reply, attempt),
      failed: (job, rs, reply, attempt) => { seen(reply); o.failed(job, rs, reply, attempt); },
      deferred: (job, rs, reply, attempt, notBefore) => { const until = seen(reply); o.deferred(job, rs, reply, attempt, Math.max(notBefore ?? 0, until)); },
      released: (job) => o.released(job),
      vanished: (job) => o.vanished(job),
    };
  }

  private open(destination: Destination, lane: LaneConfig): void {
    const run = runConnection(destination, lane, {
      config: this.config, spool: this.spool, outcomes: this.observed(destination.site), stopping: () => this.stopping,
      unreachable: (d, reply, permanent) => this.unreachable(d, reply, permanent),
    }).catch((err) => this.log.emit('delivery-error', { destination: destination.key, error: (err as Error).message }));
    this.running.add(run);
    run.finally(() => {
      this.running.delete(run);
      if (!this.stopping) this.afterClose(destination, lane);
    });
  }

  /** A slot came free: this destination first, then those that waited for a slot of this lane. */
  private afterClose(destination: Destination, lane: LaneConfig): void {
    destination.pump();
    destination.site?.released();
    const starved = this.starved[lane.priority];
    for (const other of starved) {
      if (this.slots.used[lane.priority] >= lane.concurrency) break;
      starved.delete(other);
      other.pump();
    }
    if (destination.total === 0 && destination.queued === 0 && destination.pausedUntil < Date.now()) {
      this.destinations.delete(destination.key);
      const site = destination.site;
      if (site) {
        site.members.delete(destination);
        site.blocked.delete(destination);
        // provider sites are few and stay; a site per MX set of the long tail goes when idle
        if (site.profile.name === 'default' && site.idle()) this.shaper.sites.delete(site.key);
      }
    }
  }

  private unreachable(destination: Destination, reply: string, permanent: boolean): void {
    if (destination.site) this.shaper.observe(destination.site, reply);
    const jobs = destination.drain();
    if (!permanent) {
      destination.pausedUntil = Date.now() + this.config.delivery.unreachableBackoff;
      destination.pauseReply = reply;
      this.log.emit('destination-paused', { destination: destination.key, until: new Date(destination.pausedUntil).toISOString(), reply });
    }
    for (const job of jobs) {
      if (permanent) this.outcomes.failed(job, job.recipients, reply, {});
      else this.outcomes.deferred(job, job.recipients, reply, {}, destination.pausedUntil);
    }
    destination.dismissIdle();
  }

  /** Clears pauses and cached lookups for a domain (an operator asked to retry now). */
  unpause(domain?: string): void {
    for (const destination of this.destinations.values()) {
      if (!domain || destination.key === `mx:${domain}` || destination.key.startsWith('smarthost:')) destination.pausedUntil = 0;
    }
  }

  /** An operator suspends a domain (until `until`, or until resumed); its queued jobs wait. Resolves once recorded on disk. */
  async suspend(domain: string, until: number, reason: string): Promise<void> {
    const d = domain.toLowerCase();
    await this.suspended.set(d, { until, reason });
    const reply = `451 4.7.0 ${d} suspended by the operator (${reason})`;
    for (const destination of this.destinations.values()) {
      const keep = destination.drain().filter((job) => {
        if (job.domain !== d) return true;
        this.outcomes.deferred(job, job.recipients, reply, {}, holdUntil(until, Date.now()));
        return false;
      });
      for (const job of keep) destination.enqueue(job);
    }
    this.log.emit('shaping', { action: 'suspend', domain: d, until: until >= Number.MAX_SAFE_INTEGER ? undefined : new Date(until).toISOString(), reply, by: 'operator' });
  }

  /** Lifts an operator's suspension of a domain and any pause of the site it belongs to. */
  async resume(domain: string): Promise<{ domain: boolean; site?: string }> {
    const d = domain.toLowerCase();
    const had = await this.suspended.delete(d);
    const site = this.destinations.get(`mx:${d}`)?.site ?? [...this.shaper.sites.values()].find((s) => [...s.members].some((m) => m.key === `mx:${d}`));
    if (site?.paused()) this.shaper.logAction(site, site.resume());
    if (had) this.log.emit('shaping', { action: 'resume', domain: d, by: 'operator' });
    return { domain: had, site: site?.paused() === false ? site.key : undefined };
  }

  /** Stops opening connections, hands queued jobs back, and waits for messages in flight. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    for (const destination of this.destinations.values()) {
      for (const job of destination.drain()) this.outcomes.released(job);
      destination.dismissIdle();
    }
    const deadline = new Promise((resolve) => setTimeout(resolve, graceMs).unref());
    await Promise.race([Promise.all(this.running), deadline]);
  }
}

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

  constructor(config: RelayConfig, spool: Spool, outcomes: OutcomeSink, log: EventLog) {
    this.config = config;
    this.spool = spool;
    this.outcomes = outcomes;
    this.log = log;
    this.slots = new LaneSlots(config.lanes);
    this.starved = config.lanes.map(() => new Set());
    this.mx = new MxResolver(config.delivery.dnsServers, config.delivery.port);
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
    }
    return destination;
  }

  private open(destination: Destination, lane: LaneConfig): void {
    const run = runConnection(destination, lane, {
      config: this.config, spool: this.spool, outcomes: this.outcomes, stopping: () => this.stopping,
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
    const starved = this.starved[lane.priority];
    for (const other of starved) {
      if (this.slots.used[lane.priority] >= lane.concurrency) break;
      starved.delete(other);
      other.pump();
    }
    if (destination.total === 0 && destination.queued === 0 && destination.pausedUntil < Date.now()) {
      this.destinations.delete(destination.key);
    }
  }

  private unreachable(destination: Destination, reply: string, permanent: boolean): void {
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

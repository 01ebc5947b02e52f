// One destination (a domain reached by MX lookup, or a smarthost): a FIFO of jobs per lane and
// the connections open to it. Lanes are served in priority order, and a lane may only open a
// connection if the slots reserved for higher-priority lanes stay free, so transactional mail
// always finds a connection even while bulk saturates the same destination.
import type { LaneConfig } from '../../config/types.ts';
import type { HopAnswer } from './mx.ts';
import type { Job } from './job.ts';
import type { Site } from '../shape/site.ts';

/** Connections in use per lane across all destinations (each lane's `concurrency`). */
export class LaneSlots {
  readonly used: number[];
  constructor(lanes: LaneConfig[]) {
    this.used = lanes.map(() => 0);
  }
}

export class Destination {
  readonly key: string;
  readonly resolve: () => Promise<HopAnswer>;
  readonly queues: Job[][];
  readonly connections: number[];
  total = 0;
  /** No new connection before this time (after the destination failed to answer). */
  pausedUntil = 0;
  pauseReply = '';
  /** The shaping site whose limits this destination shares; connections wait until it is known. */
  site?: Site;
  private readonly waiting: ((job: Job | undefined) => void)[][];
  private readonly lanes: LaneConfig[];
  private readonly limit: number;
  private readonly slots: LaneSlots;
  private readonly open: (destination: Destination, lane: LaneConfig) => void;
  /** Told when a lane has jobs here but all of the lane's connections are busy elsewhere. */
  private readonly starved: (destination: Destination, lane: LaneConfig) => void;

  constructor(key: string, resolve: () => Promise<HopAnswer>, lanes: LaneConfig[], limit: number, slots: LaneSlots,
    open: (destination: Destination, lane: LaneConfig) => void, starved: (destination: Destination, lane: LaneConfig) => void) {
    this.key = key;
    this.resolve = resolve;
    this.lanes = lanes;
    this.limit = limit;
    this.slots = slots;
    this.open = open;
    this.starved = starved;
    this.queues = lanes.map(() => []);
    this.connections = lanes.map(() => 0);
    this.waiting = lanes.map(() => []);
  }

  get queued(): number {
    return this.queues.reduce((sum, q) => sum + q.length, 0);
  }

  enqueue(job: Job): void {
    const waiter = this.waiting[job.lane.priority].shift();
    if (waiter) waiter(job);
    else this.queues[job.lane.priority].push(job);
    this.pump();
  }

  take(lane: LaneConfig): Job | undefined {
    return this.queues[lane.priority].shift();
  }

  /** Waits up to `ms` for a job of this lane for an idle connection; undefined when none came. */
  waitForJob(lane: LaneConfig, ms: number): Promise<Job | undefined> {
    return new Promise((resolve) => {
      const waiters = this.waiting[lane.priority];
      const timer = setTimeout(() => {
        const i = waiters.indexOf(deliver);
        if (i !== -1) waiters.splice(i, 1);
        resolve(undefined);
      }, ms);
      const deliver = (job: Job | undefined) => {
        clearTimeout(timer);
        resolve(job);
      };
      waiters.push(deliver);
    });
  }

  /** Wakes idle connections so that they close (shutdown, or the destination was paused). */
  dismissIdle(): void {
    for (const waiters of this.waiting) while (waiters.length) waiters.shift()!(undefined);
  }

  /**
   * Slots that higher-priority lanes have reserved and are not using now; never all of them, so
   * that every lane can have at least one connection even when reserves add up to the limit.
   */
  private reservedAbove(lane: LaneConfig): number {
    let reserved = 0;
    for (const other of this.lanes) {
      if (other.priority < lane.priority) reserved += Math.max(0, other.reserve - this.connections[other.priority]);
    }
    return Math.min(reserved, this.limit - 1);
  }

  /** Whether `lane` may open one more connection here: it has jobs no connection will pick up yet, and slots allow. */
  private canOpen(lane: LaneConfig): boolean {
    const i = lane.priority;
    if (this.queues[i].length <= this.connections[i] - this.waiting[i].length) return false;
    if (this.total >= this.limit - this.reservedAbove(lane) || Date.now() < this.pausedUntil) return false;
    if (!this.site || !this.site.admit(this, lane, this.lanes)) return false;
    if (this.slots.used[i] >= lane.concurrency) {
      this.starved(this, lane);
      return false;
    }
    return true;
  }

  /** Opens connections where lanes have queued jobs and slots allow, highest priority first. */
  pump(): void {
    for (const lane of this.lanes) {
      while (this.canOpen(lane)) {
        this.connections[lane.priority]++;
        this.slots.used[lane.priority]++;
        this.total++;
        this.site!.opened(lane);
        this.open(this, lane);
      }
    }
  }

  connectionClosed(lane: LaneConfig): void {
    this.connections[lane.priority]--;
    this.slots.used[lane.priority]--;
    this.total--;
    this.site?.closed(lane);
  }

  /** Takes every queued job out (when the destination is paused or failed). */
  drain(): Job[] {
    return this.queues.flatMap((queue) => queue.splice(0));
  }
}

// One egress path: a sending address (a lane's egress) × a destination site (a provider, an MX
// set, or a smarthost). It holds the path's ready queues and its connections, and answers the one
// question the dispatcher's connections ask after every message: what do I send next?
//
// Ready queues: per group of next hops (domains with the same MX set) and per lane. A connection
// to a host (by name or address) serves every group whose next hops contain that host, so
// connections to the same host and egress are interchangeable between domains and lanes: after each message a connection takes the
// highest-priority admitted job (a reminder overtakes the newsletter at the next message
// boundary), and rate tokens are taken only when the job is picked, so they too go to the
// highest lane first.
//
// Admission per lane (`admits`): the lane is not paused on this path; the connections busy with
// it and the lanes below it stay under its limit (which backoff may have lowered, see
// shape/path-shaping.ts), less the reserves of higher lanes that send from the same egress and
// do not use them now; and the lane is under its relay-wide concurrency. Reserves hold at most
// half of the limit: a provider's small (or reduced) limit must not leave bulk one connection
// while reminders sit idle, and a reminder does not need the reserve to go first, since it takes
// the next message slot of any connection on the path. A connection being opened counts as busy
// for the lane that asked for it.
//
// May touch: its own queues and counters, the shared LaneSlots, and the callbacks it was built
// with (open a connection, tell that a lane waits for a relay-wide slot). Outcomes, spool and
// logging are the dispatcher's and the connection's business.
import type { LaneConfig } from '../../config/types.ts';
import type { LaneEgress } from '../../config/sending-types.ts';
import type { PathShaping } from '../shape/path-shaping.ts';
import type { Job } from './job.ts';
import type { NextHop } from './mx.ts';

/** Connections in use per lane across all paths (each lane's `concurrency`). */
export class LaneSlots {
  readonly used: number[];
  constructor(lanes: LaneConfig[]) {
    this.used = lanes.map(() => 0);
  }
}

/** Domains that share next hops (an MX set, or a smarthost): one ready queue per lane. */
export interface HopGroup {
  key: string;
  hops: NextHop[];
  /** Host names and addresses of the hops: a connection to any of them serves the group. */
  hosts: Set<string>;
  queues: Job[][];
  /** Connections being opened to this group. */
  opening: number;
  /** Idle connections woken for this group that have not picked yet. */
  woken: number;
  /** No connection could be made: new jobs are deferred until then. */
  unreachableUntil: number;
  unreachableReply: string;
  /** A refusal at connect ("too many connections"): no new connection before then; jobs wait. */
  openAfter: number;
}

/** A connection as the path sees it. */
export interface PathConnection {
  group: HopGroup;
  /** The lane that asked for it, while it is being opened. */
  openingFor?: number;
  /** The host it is connected to: its MX name and address. */
  host?: string;
  address?: string;
  /** The group it was woken for, until it picks. */
  wokenFor?: HopGroup;
  wake?: (work: boolean) => void;
}

export type Pick = { job: Job } | { wait: number } | undefined;

export interface PathHooks {
  open(path: EgressPath, connection: PathConnection): void;
  /** A lane has jobs here but all of its relay-wide connections are busy elsewhere. */
  starved(path: EgressPath, lane: LaneConfig): void;
  /** A lane gave a relay-wide connection slot back. */
  freed(lane: LaneConfig): void;
}

export class EgressPath {
  readonly key: string;
  readonly egress: LaneEgress | undefined;
  readonly egressName: string;
  readonly site: string;
  readonly shaping: PathShaping;
  readonly groups = new Map<string, HopGroup>();
  /** Connections carrying (or being opened for) each lane's message now, by lane priority. */
  readonly busy: number[];
  /** Domains seen most recently, for the destinations view. */
  readonly recent: string[] = [];
  private readonly lanes: LaneConfig[];
  /** Lanes that send from this path's egress: only their reserves count here. */
  private readonly members: boolean[];
  private readonly connections = new Set<PathConnection>();
  private readonly idle: PathConnection[] = [];
  private readonly slots: LaneSlots;
  private readonly hooks: PathHooks;
  private pumpTimer?: NodeJS.Timeout;
  private pumpAtTime = Infinity;
  private stopped = false;

  constructor(options: { egress?: LaneEgress; egressName: string; site: string; shaping: PathShaping; lanes: LaneConfig[]; members: boolean[]; slots: LaneSlots; hooks: PathHooks }) {
    this.egress = options.egress;
    this.egressName = options.egressName;
    this.site = options.site;
    this.key = `${options.egressName}>${options.site}`;
    this.shaping = options.shaping;
    this.lanes = options.lanes;
    this.members = options.members;
    this.slots = options.slots;
    this.hooks = options.hooks;
    this.busy = options.lanes.map(() => 0);
  }

  get open(): number {
    return this.connections.size;
  }

  /** Connections past their greeting. */
  get established(): number {
    let n = 0;
    for (const c of this.connections) if (c.host !== undefined) n++;
    return n;
  }

  queued(p?: number): number {
    let n = 0;
    for (const g of this.groups.values()) {
      if (p === undefined) for (const q of g.queues) n += q.length;
      else n += g.queues[p].length;
    }
    return n;
  }

  /** The group for these next hops (created on first use). */
  group(key: string, hops: NextHop[]): HopGroup {
    let g = this.groups.get(key);
    if (!g) {
      const hosts = new Set<string>();
      for (const h of hops) hosts.add(h.mx.toLowerCase()).add(h.address);
      g = { key, hops, hosts, queues: this.lanes.map(() => []), opening: 0, woken: 0, unreachableUntil: 0, unreachableReply: '', openAfter: 0 };
      this.groups.set(key, g);
    }
    return g;
  }

  noteDomain(domain: string): void {
    if (this.recent.includes(domain)) return;
    this.recent.push(domain);
    if (this.recent.length > 20) this.recent.shift();
  }

  enqueue(job: Job, group: HopGroup): void {
    const g = this.attach(group);
    g.queues[job.lane.priority].push(job);
    this.pump(Date.now(), g);
  }

  /** A job refused with "not now" goes back to the front of its ready queue. */
  requeueFront(job: Job, group: HopGroup): void {
    const g = this.attach(group);
    g.queues[job.lane.priority].unshift(job);
    this.pump(Date.now(), g);
  }

  /** The group as the path has it now (an idle group may have been dropped since the job was placed). */
  private attach(group: HopGroup): HopGroup {
    const current = this.groups.get(group.key);
    if (current) return current;
    this.groups.set(group.key, group);
    return group;
  }

  private reservedAbove(p: number): number {
    let reserved = 0;
    for (let q = 0; q < p; q++) if (this.members[q]) reserved += Math.max(0, this.lanes[q].reserve - this.busy[q]);
    return reserved;
  }

  /** Whether lane `p` may have one more connection busy on this path now (see the header). */
  admits(p: number, now: number): boolean {
    if (this.shaping.paused(p, now)) return false;
    const limit = this.shaping.limit(p, now);
    let busy = 0;
    for (let q = p; q < this.busy.length; q++) busy += this.busy[q];
    return busy < limit - Math.min(this.reservedAbove(p), Math.floor(limit / 2));
  }

  /** The most connections the path may have open: the limit of its highest lane. */
  connectionLimit(now: number): number {
    const top = this.members.indexOf(true);
    return this.shaping.limit(top === -1 ? 0 : top, now);
  }

  private serves(c: PathConnection, g: HopGroup): boolean {
    return g === c.group || (c.host !== undefined && (g.hosts.has(c.host) || g.hosts.has(c.address!)));
  }

  /** The next job for an open connection: the highest admitted lane first; `wait` when the rate says so. */
  next(c: PathConnection, now: number): Pick {
    this.unwake(c);
    const rateWait = this.shaping.rate.wait(now);
    for (let p = 0; p < this.lanes.length; p++) {
      let admitted: boolean | undefined;
      for (const g of this.groups.values()) {
        const queue = g.queues[p];
        if (queue.length === 0 || !this.serves(c, g)) continue;
        admitted ??= this.admits(p, now) && this.slotFree(p);
        if (!admitted) break;
        if (rateWait > 0) return { wait: rateWait };
        this.shaping.rate.take(now);
        this.busy[p]++;
        this.slots.used[p]++;
        return { job: queue.shift()! };
      }
    }
    return undefined;
  }

  private unwake(c: PathConnection): void {
    if (!c.wokenFor) return;
    c.wokenFor.woken--;
    c.wokenFor = undefined;
  }

  private slotFree(p: number): boolean {
    if (this.slots.used[p] < this.lanes[p].concurrency) return true;
    this.hooks.starved(this, this.lanes[p]);
    return false;
  }

  /** The job a connection picked has its outcome: the lane's slot is free again. */
  done(job: Job): void {
    const p = job.lane.priority;
    this.busy[p]--;
    this.slots.used[p]--;
    this.hooks.freed(job.lane);
  }

  /** Waits up to `ms` for work that this idle connection may serve; false when none came. */
  waitForWork(c: PathConnection, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(false), ms);
      const finish = (work: boolean) => {
        clearTimeout(timer);
        const i = this.idle.indexOf(c);
        if (i !== -1) this.idle.splice(i, 1);
        c.wake = undefined;
        resolve(work);
      };
      c.wake = finish;
      this.idle.push(c);
    });
  }

  /** The connection is up: it no longer counts as busy for the lane that asked for it. */
  connected(c: PathConnection, host: string, address: string): void {
    c.host = host.toLowerCase();
    c.address = address;
    this.openingDone(c);
  }

  private openingDone(c: PathConnection): void {
    if (c.openingFor === undefined) return;
    const p = c.openingFor;
    c.openingFor = undefined;
    c.group.opening--;
    this.busy[p]--;
    this.slots.used[p]--;
    this.hooks.freed(this.lanes[p]);
  }

  closed(c: PathConnection): void {
    this.openingDone(c);
    this.unwake(c);
    this.connections.delete(c);
    c.wake?.(false);
    this.forgetIfIdle(c.group);
    this.pump();
  }

  /**
   * A group with nothing queued, no connection of its own and no hold is dropped: a provider whose
   * every customer domain has an MX name of its own (Microsoft 365) must not leave a group per
   * domain behind for as long as the path lives.
   */
  private forgetIfIdle(g: HopGroup, now = Date.now()): void {
    if (g.opening > 0 || g.woken > 0 || now < g.unreachableUntil || now < g.openAfter) return;
    if (g.queues.some((q) => q.length > 0)) return;
    for (const c of this.connections) if (c.group === g) return;
    this.groups.delete(g.key);
  }

  /**
   * Gives queued jobs to idle connections that may send them, then opens connections where lanes
   * have jobs that no connection will pick up, highest lane first, as far as admission allows.
   * `only`: just this group (new work there); otherwise every group, and those that got a
   * connection go to the back, so that a busy group cannot keep the others waiting for the limit.
   */
  pump(now = Date.now(), only?: HopGroup): void {
    if (this.stopped) return;
    const opened = new Set<HopGroup>();
    for (let p = 0; p < this.lanes.length; p++) {
      for (const g of only ? [only] : this.groups.values()) {
        let want = g.queues[p].length - g.woken - g.opening;
        if (want <= 0) continue;
        if (!this.admits(p, now)) {
          if (this.shaping.paused(p, now)) this.pumpAt(this.shaping.pausedUntil(p));
          break;
        }
        for (let i = 0; i < this.idle.length && want > 0;) {
          const c = this.idle[i];
          if (!this.serves(c, g)) { i++; continue; }
          g.woken++;
          c.wokenFor = g;
          want--;
          c.wake!(true); // removes it from `idle`
        }
        if (want <= 0) continue;
        if (now < g.openAfter) { this.pumpAt(g.openAfter); continue; }
        // held by the rate: another connection would not send faster, if one already serves the group
        const rateWait = this.shaping.rate.wait(now);
        if (rateWait > 0 && this.servedByAny(g)) { this.pumpAt(now + rateWait); continue; }
        while (want > 0 && this.canOpen(p, now)) {
          if (this.connections.size >= this.connectionLimit(now)) {
            // at the path's limit: an idle connection to another host makes room (its close pumps again)
            this.idle.find((c) => !this.serves(c, g))?.wake!(false);
            break;
          }
          want--;
          this.openConnection(g, p);
          opened.add(g);
        }
      }
    }
    if (!only) for (const g of opened) this.groups.delete(g.key) && this.groups.set(g.key, g);
  }

  private servedByAny(g: HopGroup): boolean {
    for (const c of this.connections) if (this.serves(c, g)) return true;
    return false;
  }

  private canOpen(p: number, now: number): boolean {
    return this.admits(p, now) && this.slotFree(p);
  }

  private openConnection(g: HopGroup, p: number): void {
    const c: PathConnection = { group: g, openingFor: p };
    this.connections.add(c);
    g.opening++;
    this.busy[p]++;
    this.slots.used[p]++;
    this.hooks.open(this, c);
  }

  /** Looks again at `time` (a pause, a hold or the rate lets something through then). */
  pumpAt(time: number): void {
    if (time >= this.pumpAtTime || this.stopped) return;
    clearTimeout(this.pumpTimer);
    this.pumpAtTime = time;
    this.pumpTimer = setTimeout(() => {
      this.pumpAtTime = Infinity;
      this.pump();
    }, Math.max(1, time - Date.now()));
    this.pumpTimer.unref();
  }

  /** Takes out the queued jobs that `keep` returns false for. */
  take(drop: (job: Job, group: HopGroup) => boolean): Job[] {
    const out: Job[] = [];
    for (const g of this.groups.values()) {
      for (let p = 0; p < g.queues.length; p++) {
        const queue = g.queues[p];
        if (queue.length === 0) continue;
        const kept: Job[] = [];
        for (const job of queue) (drop(job, g) ? out : kept).push(job);
        g.queues[p] = kept;
      }
    }
    return out;
  }

  /** Wakes idle connections so that they close (shutdown, pause, or their group failed). */
  dismissIdle(group?: HopGroup): void {
    for (const c of [...this.idle]) if (!group || c.group === group) c.wake!(false);
  }

  /** Nothing queued, nothing open, no backoff to remember: the path can be forgotten. */
  idleNow(now = Date.now()): boolean {
    return this.connections.size === 0 && this.queued() === 0 && this.shaping.idle(now);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.pumpTimer);
    this.dismissIdle();
  }
}

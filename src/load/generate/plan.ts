// The stream of messages a run sends: the bulk newsletter on its open-loop schedule (or as fast
// as possible), merged with Poisson streams of transactional reminders and member mail. Only the
// next arrival of each stream is held, so memory does not depend on the volume.
import type { Lane, Scenario, SizeDist } from '../scenario/types.ts';
import { Random, lognormal } from './random.ts';
import { RateSchedule } from './schedule.ts';

export interface Planned {
  seq: number;
  lane: Lane;
  /** Intended send time, ms since the run started (open loop); for `max` the time it was taken. */
  intended: number;
  size: number;
}

interface Sizer { sample: (r: Random) => number; fixed: boolean; median: number }

function sizer(d: SizeDist): Sizer {
  const sample = lognormal(d.median, d.p95);
  // Clamp the tail so the template cache stays bounded (at most 4x p95, at least 512 bytes).
  const max = Math.max(d.p95 * 4, 1024);
  return { sample: (r) => Math.min(Math.max(sample(r), 512), max), fixed: d.median === d.p95, median: d.median };
}

export class Plan {
  readonly scenario: Scenario;
  private readonly random: Random;
  private readonly schedule?: RateSchedule;
  private readonly sizers: Record<Lane, Sizer>;
  private bulkSent = 0;
  private seq = 0;
  private nextBulk: number | undefined;
  private nextTx: number;
  private nextMember: number;
  /** Bulk's last intended time (open loop) bounds the Poisson streams; unknown for max. */
  readonly bulkEnd: number | undefined;
  readonly counts: Record<Lane, number> = { transactional: 0, member: 0, bulk: 0 };

  constructor(scenario: Scenario, seed: number) {
    this.scenario = scenario;
    this.random = new Random(seed ^ 0x5eed);
    if (scenario.rate !== 'max') this.schedule = new RateSchedule(scenario.rate, scenario.startRate);
    const bulkSize = sizer(scenario.bulk.size);
    this.sizers = {
      bulk: bulkSize,
      transactional: scenario.transactional ? sizer(scenario.transactional.size) : bulkSize,
      member: scenario.member ? sizer(scenario.member.size) : bulkSize,
    };
    this.nextBulk = scenario.messages > 0 ? (this.schedule ? this.schedule.timeOf(0) : 0) : undefined;
    const tx = scenario.transactional?.rate ?? 0;
    const member = scenario.member?.rate ?? 0;
    this.nextTx = tx > 0 ? this.random.exponentialMs(tx) : Infinity;
    this.nextMember = member > 0 ? this.random.exponentialMs(member) : Infinity;
    const last = this.schedule && scenario.messages > 0 ? this.schedule.timeOf(scenario.messages - 1) : undefined;
    this.bulkEnd = scenario.duration > 0 ? Math.min(last ?? Infinity, scenario.duration) : last;
  }

  /** Messages the plan expects to send in total (Poisson streams estimated), for progress and ETA. */
  expectedTotal(elapsed: number): number {
    const end = this.bulkEnd ?? (this.scenario.duration || elapsed);
    const poisson = ((this.scenario.transactional?.rate ?? 0) + (this.scenario.member?.rate ?? 0)) * (end / 1000);
    const bulk = this.schedule && this.scenario.duration ? Math.min(this.scenario.messages, this.schedule.countAt(this.scenario.duration)) : this.scenario.messages;
    return Math.round(bulk + poisson);
  }

  private streamsOpen(t: number, now: number): boolean {
    if (this.scenario.duration > 0 && t > this.scenario.duration) return false;
    if (this.bulkEnd !== undefined) return t <= this.bulkEnd;
    // Closed loop: the streams run while the newsletter still has messages to send.
    return this.nextBulk !== undefined || (this.scenario.messages === 0 && this.scenario.duration > 0 && now <= this.scenario.duration);
  }

  /**
   * Due time (ms since start) of the next message; Infinity when the plan is exhausted. Of the
   * messages already due, the highest lane goes first: an application sends a password reminder
   * ahead of the newsletter it is still working through, so a run that falls behind its schedule
   * (a target slower than the offered rate) does not queue reminders behind bulk in the load
   * generator itself, and their send latency is the target's.
   */
  peek(now: number): number {
    const bulk = this.nextBulk === undefined ? Infinity : this.schedule ? this.nextBulk : now;
    const bulkDue = this.scenario.duration > 0 && bulk > this.scenario.duration ? Infinity : bulk;
    if (this.nextTx <= now && this.streamsOpen(this.nextTx, now)) return this.nextTx;
    if (this.nextMember <= now && this.streamsOpen(this.nextMember, now)) return this.nextMember;
    const stream = Math.min(this.nextTx, this.nextMember);
    return stream < bulkDue && this.streamsOpen(stream, now) ? stream : bulkDue;
  }

  /** Takes the next message; call only after peek() returned a finite time. */
  take(now: number): Planned {
    const due = this.peek(now);
    let lane: Lane;
    if (due === this.nextTx) {
      lane = 'transactional';
      this.nextTx += this.random.exponentialMs(this.scenario.transactional!.rate);
    } else if (due === this.nextMember) {
      lane = 'member';
      this.nextMember += this.random.exponentialMs(this.scenario.member!.rate);
    } else {
      lane = 'bulk';
      this.bulkSent++;
      this.nextBulk = this.bulkSent >= this.scenario.messages ? undefined
        : this.schedule ? this.schedule.timeOf(this.bulkSent) : now;
    }
    this.counts[lane]++;
    const s = this.sizers[lane];
    return { seq: ++this.seq, lane, intended: due, size: s.fixed ? s.median : Math.round(s.sample(this.random)) };
  }

  isFixed(lane: Lane): boolean {
    return this.sizers[lane].fixed;
  }

  /** Random stream shared with recipient selection (same seed → same run). */
  get rng(): Random {
    return this.random;
  }
}

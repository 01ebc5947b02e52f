// A destination site: every destination (domain) whose mail goes to the same provider or MX set.
// It holds the shared limits (connections, messages per connection, rate, idle time) and the
// backoff state: a reduced connection limit that grows back one step at a time, or a pause /
// suspension during which nothing is sent to the site at all.
import type { BackoffRule, ShapingProfile } from '../../config/sending-types.ts';
import type { LaneConfig } from '../../config/types.ts';
import { SiteRate } from './rate.ts';

export interface SiteAction { action: string; reply: string; at: string; until?: string; limit?: number; by: 'reply' | 'operator' }

/** Something that queues jobs and opens connections for the site (a deliver/Destination). */
export interface SiteMember { key: string; pump(): void }

export class Site {
  readonly key: string;
  readonly profile: ShapingProfile;
  readonly rate: SiteRate;
  readonly members = new Set<SiteMember>();
  /** Members that wanted a connection while the site was at its limit, in arrival order. */
  readonly blocked = new Set<SiteMember>();
  open = 0;
  /** Open connections per lane (by priority index), for the lanes' reserved slots. */
  readonly openByLane: number[] = [];
  pausedUntil = 0;
  /** 'paused' or 'suspended' while pausedUntil is in the future. */
  pauseKind: 'paused' | 'suspended' = 'paused';
  pauseReply = '';
  /** Connection limit after a backoff: `from` at `since`, one more per `step` up to the profile's. */
  private ramp?: { from: number; since: number };
  private readonly step: number;
  private lastReduce = 0;
  readonly history: SiteAction[] = [];
  /** The destinations (domains) that joined most recently, for the API view. */
  readonly recent: string[] = [];

  constructor(key: string, profile: ShapingProfile, rampStep: number) {
    this.key = key;
    this.profile = profile;
    this.step = rampStep;
    this.rate = new SiteRate(profile.ratePerSecond, profile.ratePerHour);
  }

  limit(now = Date.now()): number {
    const max = this.profile.maxConnections;
    if (!this.ramp) return max;
    const value = this.ramp.from + Math.max(0, Math.floor((now - this.ramp.since) / this.step));
    if (value >= max) {
      this.ramp = undefined;
      return max;
    }
    return value;
  }

  paused(now = Date.now()): boolean {
    return now < this.pausedUntil;
  }

  join(member: SiteMember): void {
    this.members.add(member);
    if (!this.recent.includes(member.key)) {
      this.recent.push(member.key);
      if (this.recent.length > 20) this.recent.shift();
    }
  }

  /** Nothing to remember: no members, no backoff in force (the site can be forgotten). */
  idle(now = Date.now()): boolean {
    return this.members.size === 0 && this.open === 0 && this.state(now) === 'active';
  }

  /**
   * Whether `lane` may open one more connection now. As within a destination, slots that
   * higher-priority lanes have reserved and do not use stay free (never all of them), so a
   * provider's small limit cannot be filled by bulk alone. A refused member is remembered in `blocked`.
   */
  admit(member: SiteMember, lane: LaneConfig, lanes: LaneConfig[], now = Date.now()): boolean {
    if (this.paused(now)) return false;
    const limit = this.limit(now);
    let reserved = 0;
    for (const other of lanes) {
      if (other.priority < lane.priority) reserved += Math.max(0, other.reserve - (this.openByLane[other.priority] ?? 0));
    }
    if (this.open < limit - Math.min(reserved, limit - 1)) return true;
    this.blocked.add(member);
    return false;
  }

  opened(lane: LaneConfig): void {
    this.open++;
    this.openByLane[lane.priority] = (this.openByLane[lane.priority] ?? 0) + 1;
  }

  closed(lane: LaneConfig): void {
    this.open--;
    this.openByLane[lane.priority]--;
  }

  /** A connection closed: let the members that waited for a slot try again. */
  released(): void {
    // a snapshot: a member refused again (reserved slots) is re-added and must not be visited twice
    for (const member of [...this.blocked]) {
      if (this.open >= this.limit() || this.paused()) break;
      this.blocked.delete(member);
      member.pump();
    }
  }

  /** The first rule whose pattern matches the reply. */
  rule(reply: string): BackoffRule | undefined {
    return this.profile.backoff.find((r) => r.regex.test(reply));
  }

  /**
   * Applies a backoff rule; returns the action taken for the log, or undefined when the site is
   * already backing off at least as much (one throttled reply per pipelined message must not
   * extend a pause fifty times).
   */
  apply(rule: BackoffRule, reply: string, now = Date.now()): SiteAction | undefined {
    if (rule.action === 'reduce') {
      if (now - this.lastReduce < this.step) return undefined;
      this.lastReduce = now;
      const current = this.limit(now);
      const target = Math.max(1, Math.min(current - 1, rule.connections ?? Math.floor(current / 2)));
      this.ramp = { from: target, since: now };
      return this.record({ action: 'reduce', reply, at: new Date(now).toISOString(), limit: target, by: 'reply' });
    }
    // while paused, only a suspension overrides a pause; replies from connections still in flight change nothing
    if (this.paused(now) && (this.pauseKind === 'suspended' || rule.action === 'pause')) return undefined;
    const until = rule.duration === undefined ? Number.MAX_SAFE_INTEGER : now + rule.duration;
    return this.pause(rule.action === 'suspend' ? 'suspended' : 'paused', until, reply, 'reply', now);
  }

  pause(kind: 'paused' | 'suspended', until: number, reply: string, by: 'reply' | 'operator', now = Date.now()): SiteAction {
    this.pausedUntil = until;
    this.pauseKind = kind;
    this.pauseReply = reply;
    // after the pause the site starts again with one connection and ramps up
    this.ramp = { from: 1, since: until };
    return this.record({ action: kind === 'paused' ? 'pause' : 'suspend', reply, at: new Date(now).toISOString(), until: until >= Number.MAX_SAFE_INTEGER ? undefined : new Date(until).toISOString(), by });
  }

  resume(now = Date.now()): SiteAction {
    this.pausedUntil = 0;
    this.ramp = { from: 1, since: now };
    return this.record({ action: 'resume', reply: '', at: new Date(now).toISOString(), by: 'operator' });
  }

  private record(action: SiteAction): SiteAction {
    this.history.push(action);
    if (this.history.length > 20) this.history.shift();
    return action;
  }

  state(now = Date.now()): 'active' | 'reduced' | 'paused' | 'suspended' {
    if (this.paused(now)) return this.pauseKind;
    return this.limit(now) < this.profile.maxConnections ? 'reduced' : 'active';
  }
}

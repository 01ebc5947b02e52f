// The shaping state of one egress path (a sending address × a destination site), kept per path as
// KumoMTA does, because providers count per sending IP: a throttle reply to the bulk address must
// not slow mail sent from another address. Within a path the state is kept per lane. A reply to
// one lane's traffic cuts the lowest lanes first: a pause for a reply to member mail pauses the
// lanes below member that still send on the path (bulk), and member itself only when its own
// traffic is refused again with nothing below it left sending; a reduction cuts the lane and the
// lanes below it. Transactional slows only when its own traffic is refused.
//
// State: a connection limit per lane that a `reduce` lowers and that grows back one step at a
// time, and pauses/suspensions during which a lane sends nothing on the path. The path's message
// rate (GCRA; this node's, or the cluster's through Redis) is shared by its lanes. May touch: nothing outside this object; callers act on what
// it answers (deliver/egress-path.ts decides who gets a connection, shape/shaper.ts logs actions).
import type { BackoffRule, ShapingProfile } from '../../config/sending-types.ts';
import type { LaneConfig } from '../../config/types.ts';
import type { RateLimiter } from './rate.ts';

export type PathState = 'active' | 'reduced' | 'paused' | 'suspended';

/** What a reply or an operator did to a path, for the log and the destinations view. */
export interface ShapingAction {
  action: 'reduce' | 'pause' | 'suspend' | 'resume';
  reply: string;
  at: string;
  until?: string;
  limit?: number;
  /** The lanes whose sending the action changed. */
  lanes: string[];
  /** A reply seen here, an operator, or another node of the cluster (that saw the reply). */
  by: 'reply' | 'operator' | 'cluster';
}

interface LaneShaping {
  /** Connection limit after a backoff: `from` at `since`, one more per step up to the profile's. */
  ramp?: { from: number; since: number };
  pausedUntil: number;
  pauseKind: 'paused' | 'suspended';
  pauseReply: string;
  lastReduce: number;
}

/** `until` for "until resumed". */
export const UNTIL_RESUMED = Number.MAX_SAFE_INTEGER;

export class PathShaping {
  readonly profile: ShapingProfile;
  readonly rate: RateLimiter;
  readonly history: ShapingAction[] = [];
  /** Every lane of the relay, in priority order (a path's state is indexed by lane priority). */
  private readonly lanes: LaneConfig[];
  private readonly byLane: LaneShaping[];
  /** Lanes that send on this path (their own egress address is the path's). */
  private readonly members: boolean[];
  private readonly step: number;
  /** Messages a receiver took per session before it said "too many messages in this session", if fewer than the profile's. */
  private sessionLimit = Infinity;

  constructor(profile: ShapingProfile, lanes: LaneConfig[], rampStep: number, rate: RateLimiter, members = lanes.map(() => true)) {
    this.profile = profile;
    this.lanes = lanes;
    this.members = members;
    this.step = rampStep;
    this.rate = rate;
    this.byLane = lanes.map(() => ({ pausedUntil: 0, pauseKind: 'paused', pauseReply: '', lastReduce: -Infinity }));
  }

  private ownLimit(p: number, now: number): number {
    const max = this.profile.maxConnections;
    const s = this.byLane[p];
    if (!s.ramp) return max;
    const value = s.ramp.from + Math.max(0, Math.floor((now - s.ramp.since) / this.step));
    if (value >= max) {
      s.ramp = undefined;
      return max;
    }
    return value;
  }

  /** Connections lane `p` may keep busy on the path: its own limit, never above a higher lane's. */
  limit(p: number, now = Date.now()): number {
    let limit = this.profile.maxConnections;
    for (let q = 0; q <= p; q++) limit = Math.min(limit, this.ownLimit(q, now));
    return limit;
  }

  /** Messages to send per connection: the profile's, or fewer when the receiver showed its own limit. */
  messagesPerConnection(): number {
    return Math.min(this.profile.messagesPerConnection, this.sessionLimit);
  }

  /** The receiver ended a session after `sent` messages: send no more than that per connection from now on. */
  learnSessionLimit(sent: number): void {
    if (sent >= 1) this.sessionLimit = Math.min(this.sessionLimit, sent);
  }

  paused(p: number, now = Date.now()): boolean {
    return now < this.byLane[p].pausedUntil;
  }

  pausedUntil(p: number): number {
    return this.byLane[p].pausedUntil;
  }

  pauseReply(p: number): string {
    return this.byLane[p].pauseReply;
  }

  /** The first backoff rule of the profile whose pattern matches the reply. */
  rule(reply: string): BackoffRule | undefined {
    return this.profile.backoff.find((r) => r.regex.test(reply));
  }

  /**
   * Applies a backoff rule to a reply that lane `p`'s traffic got: it acts on `p` and the lanes
   * after it. Returns the action for the log, or undefined when those lanes already back off at
   * least as much (one throttled reply per pipelined message must not extend a pause fifty times).
   * `cap`: the connections that the receiver did accept when it refused one more; a reduction
   * goes no higher than that (the provider just told us its limit).
   */
  apply(rule: BackoffRule, reply: string, p: number, now = Date.now(), cap = Infinity): ShapingAction | undefined {
    if (rule.action === 'reduce') {
      if (now - this.byLane[p].lastReduce < this.step) return undefined;
      const touched: number[] = [];
      let target = 0;
      for (let q = p; q < this.lanes.length; q++) {
        const current = this.limit(q, now);
        const to = Math.max(1, Math.min(current - 1, cap, rule.connections ?? Math.floor(current / 2)));
        if (q === p) target = to;
        if (to >= current && current === 1) continue;
        this.byLane[q].ramp = { from: to, since: now };
        this.byLane[q].lastReduce = now;
        touched.push(q);
      }
      if (touched.length === 0) return undefined;
      return this.record({ action: 'reduce', reply, at: new Date(now).toISOString(), limit: target, lanes: this.names(touched), by: 'reply' });
    }
    const kind = rule.action === 'suspend' ? 'suspended' : 'paused';
    const until = rule.duration === undefined ? UNTIL_RESUMED : now + rule.duration;
    // while paused, only a suspension overrides a pause; replies from connections still in flight change nothing
    const cut = (q: number) => !(this.paused(q, now) && (this.byLane[q].pauseKind === 'suspended' || kind === 'paused'));
    // lowest lanes first: while a lane below `p` still sends here, `p` itself keeps sending
    const below: number[] = [];
    for (let q = p + 1; q < this.lanes.length; q++) if (cut(q)) below.push(q);
    const touched = below.some((q) => this.members[q]) ? below : [p, ...below].filter(cut);
    if (touched.length === 0) return undefined;
    return this.pause(kind, until, reply, 'reply', touched, now);
  }

  /** Pauses the given lanes (all by default) until `until`; afterwards each starts again at one connection. */
  pause(kind: 'paused' | 'suspended', until: number, reply: string, by: ShapingAction['by'], lanes = this.lanes.map((_, i) => i), now = Date.now()): ShapingAction {
    for (const q of lanes) {
      const s = this.byLane[q];
      s.pausedUntil = until;
      s.pauseKind = kind;
      s.pauseReply = reply;
      s.ramp = { from: 1, since: until };
    }
    return this.record({
      action: kind === 'paused' ? 'pause' : 'suspend', reply, at: new Date(now).toISOString(),
      until: until >= UNTIL_RESUMED ? undefined : new Date(until).toISOString(), lanes: this.names(lanes), by,
    });
  }

  /** Lifts every lane's pause; the lanes that were paused start again at one connection. Undefined when none was. */
  resume(now = Date.now()): ShapingAction | undefined {
    const touched: number[] = [];
    this.byLane.forEach((s, q) => {
      if (!this.paused(q, now)) return;
      s.pausedUntil = 0;
      s.ramp = { from: 1, since: now };
      touched.push(q);
    });
    if (touched.length === 0) return undefined;
    return this.record({ action: 'resume', reply: '', at: new Date(now).toISOString(), lanes: this.names(touched), by: 'operator' });
  }

  laneState(p: number, now = Date.now()): PathState {
    if (this.paused(p, now)) return this.byLane[p].pauseKind;
    return this.limit(p, now) < this.profile.maxConnections ? 'reduced' : 'active';
  }

  /** Nothing to remember: no backoff in force for any lane. */
  idle(now = Date.now()): boolean {
    return this.lanes.every((_, p) => this.laneState(p, now) === 'active');
  }

  private names(lanes: number[]): string[] {
    return lanes.map((q) => this.lanes[q].name);
  }

  private record(action: ShapingAction): ShapingAction {
    this.history.push(action);
    if (this.history.length > 20) this.history.shift();
    return action;
  }
}

// Message rate limits as GCRA (the generic cell rate algorithm, a token bucket kept as one
// timestamp). Asking and taking are separate: a connection asks how long until the next slot,
// sleeps, and only then picks the message that takes the slot, so that a reminder that became
// ready during the wait gets the slot before the newsletter that was waiting longer (rate tokens
// go to the highest lane first).
export class Gcra {
  private readonly interval: number;
  private readonly tolerance: number;
  private tat = 0;

  /** `count` messages per `windowMs`, with bursts of up to `burst` messages. */
  constructor(count: number, windowMs: number, burst: number) {
    this.interval = windowMs / count;
    this.tolerance = (Math.max(1, burst) - 1) * this.interval;
  }

  /** Milliseconds until a slot is free (0: now). */
  wait(now: number): number {
    return Math.max(0, Math.max(this.tat, now) - this.tolerance - now);
  }

  /** Uses a slot (call when `wait` said 0). */
  take(now: number): void {
    this.tat = Math.max(this.tat, now) + this.interval;
  }
}

/** A path's message rate, asked and spent as above: this node's own (SiteRate), or a cluster's (cluster/limits.ts). */
export interface RateLimiter {
  /** Milliseconds until a message may go (0: now). */
  wait(now: number): number;
  /** Spends the slot that `wait` said was free. */
  take(now: number): void;
}

/** Per-second and per-hour limits together; 0 means no limit. Bursts: one second's worth, one minute's worth. */
export class SiteRate implements RateLimiter {
  private readonly limits: Gcra[] = [];

  constructor(perSecond: number, perHour: number) {
    if (perSecond > 0) this.limits.push(new Gcra(perSecond, 1000, Math.floor(perSecond)));
    if (perHour > 0) this.limits.push(new Gcra(perHour, 3_600_000, Math.floor(perHour / 60)));
  }

  wait(now: number): number {
    let wait = 0;
    for (const limit of this.limits) wait = Math.max(wait, limit.wait(now));
    return wait;
  }

  take(now: number): void {
    for (const limit of this.limits) limit.take(now);
  }
}

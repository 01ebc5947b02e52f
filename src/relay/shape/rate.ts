// Message rate limits as GCRA (the generic cell rate algorithm, a token bucket kept as one
// timestamp): each send reserves its slot and is told how long to wait for it, so concurrent
// connections of one site queue up fairly without a timer per message.
export class Gcra {
  private readonly interval: number;
  private readonly tolerance: number;
  private tat = 0;

  /** `count` messages per `windowMs`, with bursts of up to `burst` messages. */
  constructor(count: number, windowMs: number, burst: number) {
    this.interval = windowMs / count;
    this.tolerance = (Math.max(1, burst) - 1) * this.interval;
  }

  /** Reserves the next slot; returns the milliseconds to wait before using it. */
  reserve(now: number): number {
    const start = Math.max(this.tat, now);
    this.tat = start + this.interval;
    return Math.max(0, start - this.tolerance - now);
  }
}

/** Per-second and per-hour limits together; 0 means no limit. Bursts: one second's worth, one minute's worth. */
export class SiteRate {
  private readonly limits: Gcra[] = [];

  constructor(perSecond: number, perHour: number) {
    if (perSecond > 0) this.limits.push(new Gcra(perSecond, 1000, Math.floor(perSecond)));
    if (perHour > 0) this.limits.push(new Gcra(perHour, 3_600_000, Math.floor(perHour / 60)));
  }

  reserve(now: number): number {
    let wait = 0;
    for (const limit of this.limits) wait = Math.max(wait, limit.reserve(now));
    return wait;
  }
}

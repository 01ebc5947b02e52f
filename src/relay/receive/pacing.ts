// Intake pacing: a newsletter injected as fast as the relay accepts saturates its event loop, and
// a password reminder's SMTP commands then wait in line behind the newsletter's DATA. While the
// loop lags, the lowest lane's 250 is held back (its message is already durable: nothing is at
// risk) until the loop is calm again, at most MAX_HOLD_MS; a client sending bulk as fast as it is
// answered thus slows down, and the reminder's session gets the loop. Higher lanes are answered at
// once. May touch: nothing but its own timer; receive/server.ts asks it before each 250.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Histogram } from '../metrics.ts';

/** The loop counts as lagging while its delay over the last window reaches this (p99, ms). */
const LAG_MS = 20;
/** Window over which the delay is measured. */
const WINDOW_MS = 100;
/** The longest a 250 is held back. */
const MAX_HOLD_MS = 1000;

export class IntakePacer {
  private readonly lowestLane: string;
  private readonly delay: ReturnType<typeof monitorEventLoopDelay>;
  private readonly timer: NodeJS.Timeout;
  private lagging = false;
  /** Where the worst event-loop delay of each window goes (ms), for /metrics. */
  private readonly worstDelays: Histogram;

  constructor(lowestLane: string, worstDelays: Histogram) {
    this.lowestLane = lowestLane;
    this.worstDelays = worstDelays;
    this.delay = monitorEventLoopDelay({ resolution: 10 });
    this.delay.enable();
    this.timer = setInterval(() => {
      this.lagging = this.delay.count > 0 && this.delay.percentile(99) / 1e6 >= LAG_MS;
      if (this.delay.count > 0) this.worstDelays.observe(this.delay.max / 1e6);
      this.delay.reset();
    }, WINDOW_MS);
    this.timer.unref();
  }

  /** Whether the loop lagged over the last window. */
  get isLagging(): boolean {
    return this.lagging;
  }

  /** Whether a message of `lane` must wait before its answer (the lowest lane, while the loop lags). */
  holds(lane: string): boolean {
    return this.lagging && lane === this.lowestLane;
  }

  /** Resolves when a message of `lane` may be answered: at once, but for the lowest lane while the loop lags. */
  async whenCalm(lane: string): Promise<void> {
    if (!this.holds(lane)) return;
    const until = Date.now() + MAX_HOLD_MS;
    while (this.lagging && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, WINDOW_MS / 2));
  }

  close(): void {
    clearInterval(this.timer);
    this.delay.disable();
  }
}

// Intake pacing: the event loop is a scarce resource too, and it goes to the highest lane first.
// A newsletter injected as fast as the relay answers keeps the loop saturated; a password
// reminder's SMTP commands then queue behind the newsletter's DATA at every round trip (on a
// loop near saturation the wait grows without bound). While higher lanes have mail coming in
// (ENGAGED_MS since their last message), the lowest lane's 250s go out at a rate that an
// additive-increase / multiplicative-decrease controller sets from the loop's worst delay in each
// window: above TARGET_MS the rate drops by a fifth, below half of it the rate grows again. The
// held message is durable already (nothing is at risk) and its client, waiting for the 250,
// sends nothing more meanwhile, so the newsletter's intake slows to what leaves the loop calm.
// With no higher-lane mail coming in the lowest lane is never held: a newsletter alone goes in at
// full speed. A held answer waits at most HOLD_LIMIT_MS (far below a client's 10 min DATA
// timeout). Pacing cannot prevent what the disk does: a spool COMMIT that waits for the device
// stops the loop for every session (SQLite cutting the WAL back did, until schema.ts stopped it;
// a write or read of a page no longer cached still can). May touch: nothing but its own timers and waiters; the node tells it the lane of
// each accepted message, receive/server.ts asks it before each 250.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { PacingMetrics } from '../metrics.ts';

/** Window over which the loop's delay is measured and the rate adjusted. */
const WINDOW_MS = 100;
/** The delay monitor's timer interval; what it records beyond this is the loop's lateness. */
const RESOLUTION_MS = 5;
/** The loop's worst delay per window that pacing aims to stay under while higher lanes are active. */
const TARGET_MS = 10;
/** How long after a higher lane's last message the lowest lane stays paced. */
const ENGAGED_MS = 5000;
/** The lowest lane is never paced below this many messages per second. */
const MIN_RATE = 20;
/** The longest a 250 is held back. */
const HOLD_LIMIT_MS = 10_000;
/** How often held answers are let go while some wait. */
const TICK_MS = 5;

interface Held { resolve: () => void; since: number }

export class IntakePacer {
  private readonly lowestLane: string;
  private readonly delay: ReturnType<typeof monitorEventLoopDelay>;
  private readonly window: NodeJS.Timeout;
  /** The worst event-loop delay of each window, the rate and the held answers, for /metrics. */
  private readonly metrics: PacingMetrics;
  private higherLaneAt = -Infinity;
  /** Answers per second the lowest lane gets while engaged; Infinity while not. */
  private rate = Infinity;
  /** Lowest-lane answers given in the current window (seeds the rate when pacing engages). */
  private answeredInWindow = 0;
  private allowance = 0;
  private lastRefill = performance.now();
  private readonly held: Held[] = [];
  private ticker: NodeJS.Timeout | undefined;
  private lagging = false;

  /** `lanes`: every lane in priority order (the last is the one paced). */
  constructor(lanes: string[], metrics: PacingMetrics) {
    this.lowestLane = lanes[lanes.length - 1];
    this.metrics = metrics;
    this.delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    this.delay.enable();
    this.window = setInterval(() => this.adjust(), WINDOW_MS);
    this.window.unref();
  }

  /** Whether the loop's worst delay over the last window exceeded the target. */
  get isLagging(): boolean {
    return this.lagging;
  }

  /** Whether the lowest lane is being paced (higher lanes have mail coming in). */
  get engaged(): boolean {
    return performance.now() - this.higherLaneAt < ENGAGED_MS;
  }

  /** A message of `lane` was accepted (a higher lane's engages pacing). */
  accepted(lane: string): void {
    if (lane !== this.lowestLane) this.higherLaneAt = performance.now();
  }

  /** Whether a message of `lane` must wait before its answer. */
  private holds(lane: string): boolean {
    if (lane !== this.lowestLane || this.rate === Infinity) return false;
    this.refill();
    return this.held.length > 0 || this.allowance < 1;
  }

  /** Resolves when a message of `lane` may be answered: at once, but for the lowest lane while paced. */
  whenCalm(lane: string): Promise<void> {
    if (lane === this.lowestLane) this.answeredInWindow++;
    if (!this.holds(lane)) {
      if (lane === this.lowestLane && this.rate !== Infinity) this.allowance--;
      return Promise.resolve();
    }
    this.metrics.heldTotal++;
    return new Promise((resolve) => {
      this.held.push({ resolve, since: performance.now() });
      this.metrics.held = this.held.length;
      if (!this.ticker) {
        this.ticker = setInterval(() => this.release(), TICK_MS);
        this.ticker.unref(); // the held sessions keep the process alive, not this timer
      }
    });
  }

  /** Lets every held answer go (the listener is closing). */
  releaseAll(): void {
    for (const waiter of this.held.splice(0)) waiter.resolve();
    this.metrics.held = 0;
    this.stopTicker();
  }

  close(): void {
    this.releaseAll();
    clearInterval(this.window);
    this.delay.disable();
  }

  private refill(): void {
    const now = performance.now();
    const burst = Math.max(1, this.rate * (WINDOW_MS / 1000) / 2);
    this.allowance = Math.min(burst, this.allowance + ((now - this.lastRefill) / 1000) * this.rate);
    this.lastRefill = now;
  }

  private release(): void {
    this.refill();
    const now = performance.now();
    while (this.held.length > 0 && (this.allowance >= 1 || this.rate === Infinity || now - this.held[0].since >= HOLD_LIMIT_MS)) {
      this.allowance--;
      this.held.shift()!.resolve();
    }
    this.metrics.held = this.held.length;
    if (this.held.length === 0) this.stopTicker();
  }

  private stopTicker(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
  }

  /** Once per window: the worst delay seen, and the lowest lane's rate from it. */
  private adjust(): void {
    // the monitor records whole intervals between its timer's runs: the lateness is the excess
    // (no run at all in a window: the loop was held for longer than the window)
    const worst = this.delay.count > 0 ? Math.max(0, this.delay.max / 1e6 - RESOLUTION_MS) : WINDOW_MS;
    this.delay.reset();
    this.metrics.loopDelay.observe(worst);
    this.lagging = worst > TARGET_MS;
    const answered = (this.answeredInWindow * 1000) / WINDOW_MS;
    this.answeredInWindow = 0;
    if (!this.engaged) {
      this.rate = Infinity;
      this.metrics.rate = 0;
      if (this.held.length > 0) this.release();
      return;
    }
    if (this.rate === Infinity) { // engaging: start from what the lowest lane got lately
      this.rate = Math.max(MIN_RATE, answered);
      this.allowance = 0;
      this.lastRefill = performance.now();
    }
    if (this.lagging) this.rate = Math.max(MIN_RATE, this.rate * 0.8);
    // grows while the loop is calm, but not far past what the lowest lane took (a rate its
    // clients never used would let a sudden burst through unpaced)
    else if (worst < TARGET_MS / 2) this.rate = Math.min(this.rate * 1.05 + 5, Math.max(2 * MIN_RATE, 2 * answered));
    this.metrics.rate = this.rate;
  }
}

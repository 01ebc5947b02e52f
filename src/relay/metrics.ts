// Counters and the inject-to-delivered latency histogram per lane: what /metrics exposes in the
// Prometheus text format and /api/v1/queue summarises. Fixed buckets: constant memory whatever the
// volume.

export const LATENCY_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 200, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000, 21_600_000, 86_400_000];

/** `requeued`: refused with "not now" (connections, session, rate) and put back at the front of the ready queue. */
export const OUTCOMES = ['received', 'delivered', 'deferred', 'failed', 'expired', 'requeued'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export class Histogram {
  readonly counts = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
  sum = 0;
  count = 0;

  observe(ms: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS_MS.length && ms > LATENCY_BUCKETS_MS[i]) i++;
    this.counts[i]++;
    this.sum += ms;
    this.count++;
  }

  /** Upper bound of the bucket holding quantile q (an estimate good to one bucket). */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i];
      if (seen >= rank) return LATENCY_BUCKETS_MS[i] ?? Infinity;
    }
    return Infinity;
  }
}

export class LaneMetrics {
  readonly counters: Record<Outcome, number> = { received: 0, delivered: 0, deferred: 0, failed: 0, expired: 0, requeued: 0 };
  readonly latency = new Histogram();
  /** From the end of DATA to the 250: commit, fsync and any pacing hold. */
  readonly answer = new Histogram();
}

/** Failed SMTP logins and what receive/auth-guard.ts did about them. */
export class AuthMetrics {
  /** AUTH attempts with a wrong user name or password. */
  failures = 0;
  /** Answers held back because the address (or user name) had failed before. */
  delayed = 0;
  /** Lockouts started, per scope. */
  readonly lockouts = { address: 0, user: 0 };
  /** AUTH attempts refused with 421 4.7.0 during a lockout, unchecked. */
  lockedOut = 0;
  /** Entries in the guard's tables now (each bounded). */
  readonly tracked = { address: 0, user: 0 };
}

/** Why an SMTP connection was refused at connect (receive/admission.ts). */
export const CONNECTION_REFUSALS = ['per-ip', 'per-network', 'reserved', 'capacity'] as const;
export type ConnectionRefusal = (typeof CONNECTION_REFUSALS)[number];
/** Why the relay ended an admitted SMTP session (receive/admission.ts, receive/session-clock.ts). */
export const SESSION_CUTS = ['idle', 'command-deadline', 'data-rate', 'shed'] as const;
export type SessionCut = (typeof SESSION_CUTS)[number];

/** SMTP connection admission: refusals at connect and sessions ended by the relay, by reason; what is open now. */
export class ConnectionMetrics {
  readonly refused = Object.fromEntries(CONNECTION_REFUSALS.map((r) => [r, 0])) as Record<ConnectionRefusal, number>;
  readonly cut = Object.fromEntries(SESSION_CUTS.map((r) => [r, 0])) as Record<SessionCut, number>;
  /** Open sessions from relayNetworks or authenticated (they may use smtp.reservedConnections), and the others. */
  readonly open = { privileged: 0, other: 0 };
  /** Whether stress mode (shorter limits) is on, and how often it came on. */
  stress = false;
  stressEntered = 0;
}

/** The intake pacer's view (receive/pacing.ts): the loop's worst delays, and the lowest lane's pace. */
export class PacingMetrics {
  /** The worst event-loop delay (ms) of each window: what every session waited at most. */
  readonly loopDelay = new Histogram();
  /** Answers per second the lowest lane gets while paced; 0 while not paced. */
  rate = 0;
  /** Lowest-lane answers held back now, and all that were. */
  held = 0;
  heldTotal = 0;
}

export class Metrics {
  readonly lanes = new Map<string, LaneMetrics>();
  readonly pacing = new PacingMetrics();
  readonly auth = new AuthMetrics();
  readonly connections = new ConnectionMetrics();

  constructor(lanes: string[]) {
    for (const lane of lanes) this.lanes.set(lane, new LaneMetrics());
  }

  lane(name: string): LaneMetrics {
    let metrics = this.lanes.get(name);
    if (!metrics) this.lanes.set(name, (metrics = new LaneMetrics()));
    return metrics;
  }

  count(lane: string, outcome: Outcome, n = 1): void {
    this.lane(lane).counters[outcome] += n;
  }
}

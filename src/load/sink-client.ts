// Reads the mailops sink's /api/v1/stats and waits, after sending, until every injected message
// has arrived or been refused for good (or the drain timeout passes). Counts are taken as deltas
// from a snapshot before the run, so a long-running sink can serve several runs.

export interface SinkStats {
  received: number;
  duplicates: number;
  bytes: number;
  byDomain?: Record<string, number>;
  byProfile?: Record<string, number>;
  replies: Record<string, number>;
  repliesByPhase?: Record<string, Record<string, number>>;
  byLane: Record<string, { count: number; latencyMs: { p50: number; p90: number; p99: number; max: number } }>;
}

export interface Arrival {
  /** Tagged messages (with X-Mailops-Load) that arrived during this run. */
  arrived: number;
  /** Permanent refusals (5xx at MAIL, RCPT or end of data) the sink gave during this run. */
  refused: number;
  duplicates: number;
  byLane: SinkStats['byLane'];
  byProfile: Record<string, number>;
  replies: Record<string, number>;
  /** ms from the end of sending until the counts were complete (or the timeout). */
  drainMs: number;
  complete: boolean;
}

export async function fetchSinkStats(base: string): Promise<SinkStats> {
  const url = new URL('/api/v1/stats', base);
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  } catch (err) {
    throw new Error(`--sink ${base}: GET ${url.pathname} failed: ${(err as Error).cause ?? (err as Error).message}`);
  }
  if (!res.ok) throw new Error(`--sink ${base}: GET ${url.pathname} answered ${res.status}`);
  return (await res.json()) as SinkStats;
}

export async function resetSink(base: string): Promise<void> {
  const res = await fetch(new URL('/api/v1/reset', base), { method: 'POST', signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`--sink ${base}: POST /api/v1/reset answered ${res.status}`);
}

const tagged = (s: SinkStats) => Object.values(s.byLane ?? {}).reduce((sum, l) => sum + l.count, 0);

function refusals(s: SinkStats): number {
  // One recipient per generated message, so permanent refusals count messages. The summary
  // `replies` map mixes phases; prefer the per-phase breakdown when the sink gives it.
  const phases = s.repliesByPhase ? [s.repliesByPhase.mail, s.repliesByPhase.rcpt, s.repliesByPhase.dataEnd] : [s.replies];
  let n = 0;
  for (const map of phases) for (const [code, count] of Object.entries(map ?? {})) if (code.startsWith('5')) n += count;
  return n;
}

function delta(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) !== 0) out[k] = v - (before[k] ?? 0);
  return out;
}

/** Polls until arrived + refused >= expected, or `timeoutMs` passes. */
export async function waitForArrival(base: string, before: SinkStats, expected: number, timeoutMs: number, onPoll?: (a: Arrival) => void): Promise<Arrival> {
  const start = Date.now();
  for (;;) {
    const now = await fetchSinkStats(base);
    const byLane: SinkStats['byLane'] = {};
    for (const [lane, l] of Object.entries(now.byLane ?? {})) {
      const count = l.count - (before.byLane?.[lane]?.count ?? 0);
      if (count > 0) byLane[lane] = { count, latencyMs: l.latencyMs };
    }
    const arrival: Arrival = {
      arrived: tagged(now) - tagged(before),
      refused: refusals(now) - refusals(before),
      duplicates: now.duplicates - before.duplicates,
      byLane,
      byProfile: delta(now.byProfile ?? {}, before.byProfile ?? {}),
      replies: delta(now.replies ?? {}, before.replies ?? {}),
      drainMs: Date.now() - start,
      complete: false,
    };
    arrival.complete = arrival.arrived - arrival.duplicates + arrival.refused >= expected;
    onPoll?.(arrival);
    if (arrival.complete || Date.now() - start >= timeoutMs) return arrival;
    await new Promise((r) => setTimeout(r, 200));
  }
}

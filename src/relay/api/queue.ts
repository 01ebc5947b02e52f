// GET /api/v1/queue: recipients per lane and state, and the age of each lane's oldest message.
// Counts come from tallies kept with every spool change, not from scanning the spool.
import type { Spool } from '../spool/spool.ts';

export function queueStatus(spool: Spool, lanes: string[]) {
  const now = Date.now();
  const out: Record<string, { queued: number; deferred: number; active: number; oldestAgeSeconds: number }> = {};
  for (const lane of lanes) {
    const counts = spool.counts.get(lane) ?? { queued: 0, deferred: 0, active: 0 };
    out[lane] = { ...counts, oldestAgeSeconds: spool.oldestAgeSeconds(lane, now) };
  }
  return { lanes: out, total: spool.messages };
}

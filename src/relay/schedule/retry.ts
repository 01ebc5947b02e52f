// When a deferred recipient is tried again: the lane's exponential schedule (initial × factor^n,
// capped at max) with ±10 % jitter so that a burst of deferrals does not return as a burst, and
// never past the message's lifetime.
import type { LaneConfig } from '../../config/types.ts';

export type RetryDecision = { expired: true } | { expired: false; nextAt: number };

export function nextAttempt(lane: LaneConfig, attemptsMade: number, receivedAt: number, now: number): RetryDecision {
  const expiresAt = receivedAt + lane.lifetime;
  if (now >= expiresAt) return { expired: true };
  const { initial, max, factor } = lane.retry;
  const delay = Math.min(max, initial * factor ** Math.max(0, attemptsMade - 1));
  const jittered = delay * (0.9 + Math.random() * 0.2);
  return { expired: false, nextAt: Math.min(expiresAt, Math.round(now + jittered)) };
}

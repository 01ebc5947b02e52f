// Open-loop schedule: the intended send time of the n-th bulk message under k6-style stages
// (the rate moves linearly from the previous target to the next over each stage's duration,
// then the last target holds). Computed in closed form per message, so no list of times exists.
import type { Stage } from '../scenario/types.ts';

interface Segment { start: number; duration: number; r0: number; r1: number; count0: number; count: number }

export class RateSchedule {
  private readonly segments: Segment[] = [];
  private readonly tailStart: number;
  private readonly tailCount: number;
  private readonly tailRate: number;

  constructor(stages: Stage[], startRate: number) {
    let t = 0;
    let counted = 0;
    let rate = startRate;
    for (const stage of stages) {
      const seconds = stage.duration / 1000;
      const count = ((rate + stage.target) / 2) * seconds;
      if (stage.duration > 0) this.segments.push({ start: t, duration: seconds, r0: rate, r1: stage.target, count0: counted, count });
      t += stage.duration;
      counted += count;
      rate = stage.target;
    }
    this.tailStart = t;
    this.tailCount = counted;
    this.tailRate = rate;
  }

  /** Intended time in ms from the start for message n (0-based), or undefined if the rate ends first. */
  timeOf(n: number): number | undefined {
    for (const s of this.segments) {
      if (n >= s.count0 + s.count) continue;
      const k = n - s.count0;
      const a = (s.r1 - s.r0) / s.duration; // msgs/s²
      const secs = a === 0 ? k / s.r0 : (-s.r0 + Math.sqrt(s.r0 * s.r0 + 2 * a * k)) / a;
      return s.start + secs * 1000;
    }
    if (this.tailRate <= 0) return undefined;
    return this.tailStart + ((n - this.tailCount) / this.tailRate) * 1000;
  }

  /** Expected messages by time t (ms): used for progress and ETA. */
  countAt(t: number): number {
    let n = 0;
    for (const s of this.segments) {
      const secs = Math.min(Math.max((t - s.start) / 1000, 0), s.duration);
      n += s.r0 * secs + ((s.r1 - s.r0) / s.duration / 2) * secs * secs;
    }
    if (t > this.tailStart) n += ((t - this.tailStart) / 1000) * this.tailRate;
    return n;
  }
}

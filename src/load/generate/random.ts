// Seeded randomness for the generator: the same seed gives the same recipients, sizes, lanes and
// arrival times, so two runs of a scenario differ only by what the target did.

/** mulberry32: tiny, fast, good enough for load shaping (not for cryptography). */
export class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0 || 0x9e3779b9;
  }

  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Standard normal via Box-Muller (one value per call; the pair's twin is dropped for simplicity). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Exponential inter-arrival time (ms) for a Poisson stream of `perSecond` events. */
  exponentialMs(perSecond: number): number {
    return (-Math.log(1 - this.next()) / perSecond) * 1000;
  }
}

/** Lognormal from a median and a p95: sigma = ln(p95/median) / z(0.95). */
export function lognormal(median: number, p95: number) {
  const mu = Math.log(median);
  const sigma = p95 > median ? Math.log(p95 / median) / 1.6448536 : 0;
  return (random: Random): number => Math.exp(mu + sigma * random.normal());
}

/** Picks an index by weight in O(log n) from a cumulative table built once. */
export class WeightedPick {
  private readonly cumulative: Float64Array;
  constructor(weights: ArrayLike<number>) {
    this.cumulative = new Float64Array(weights.length);
    let sum = 0;
    for (let i = 0; i < weights.length; i++) this.cumulative[i] = sum += weights[i];
  }

  pick(random: Random): number {
    const target = random.next() * this.cumulative[this.cumulative.length - 1];
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cumulative[mid] > target) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}

/** Zipf weights 1/rank^s for ranks 1..n: a few big company domains, a long tail of small ones. */
export function zipfWeights(n: number, s: number): Float64Array {
  const weights = new Float64Array(n);
  for (let rank = 1; rank <= n; rank++) weights[rank - 1] = 1 / rank ** s;
  return weights;
}

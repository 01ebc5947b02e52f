// Seeded randomness. Reply decisions hash stable inputs (seed + recipient address) so that the same
// seed gives the same replies whatever order connections arrive in; latency draws use a seeded stream.

/** FNV-1a over a string, mixed with a seed, finished with a murmur3 avalanche: uniform 32-bit. */
export function hash32(seed: number, text: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A number in [0, 1) fixed by seed, a salt naming the decision and the input. */
export function unitHash(seed: number, salt: string, text: string): number {
  return hash32(seed, `${salt}\0${text}`) / 4294967296;
}

/** mulberry32: small, fast, good enough for simulated latency. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** How long a reply waits: fixed, uniform between min and max, or log-normal from median and p99. */
export type Latency =
  | { kind: 'fixed'; ms: number }
  | { kind: 'uniform'; min: number; max: number }
  | { kind: 'lognormal'; mu: number; sigma: number; max: number };

export function lognormal(median: number, p99: number, max: number): Latency {
  const mu = Math.log(Math.max(median, 0.001));
  // z(0.99) = 2.326: p99 = exp(mu + 2.326 sigma)
  const sigma = Math.max(0, (Math.log(Math.max(p99, median, 0.001)) - mu) / 2.326);
  return { kind: 'lognormal', mu, sigma, max };
}

export function drawLatency(latency: Latency, random: () => number): number {
  switch (latency.kind) {
    case 'fixed':
      return latency.ms;
    case 'uniform':
      return latency.min + (latency.max - latency.min) * random();
    case 'lognormal': {
      // Box-Muller; 1 - u keeps log() away from 0.
      const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
      return Math.min(latency.max, Math.exp(latency.mu + latency.sigma * z));
    }
  }
}

// Greylisting as postgrey does it: the first attempt of a (client network, sender, recipient)
// triplet is refused; a retry from `delay` after the first attempt passes, and the triplet then
// passes at once until it has been unused for `window`. At most `maxEntries` triplets are kept
// (oldest dropped first), so memory stays bounded under any load.
import { isIP } from 'node:net';
import { plainAddress } from '../util/network.ts';

/** postgrey groups IPv4 clients by /24; IPv6 by /64. */
export function clientNetwork(address: string): string {
  const plain = plainAddress(address);
  if (isIP(plain) === 4) return plain.slice(0, plain.lastIndexOf('.'));
  return plain.split(':').slice(0, 4).join(':');
}

export class Greylist {
  // Pending triplets hold the first attempt's time; passed ones hold -(last use).
  private readonly entries = new Map<string, number>();

  /** True when the attempt passes. */
  check(key: string, now: number, delayMs: number, windowMs: number, maxEntries: number): boolean {
    const value = this.entries.get(key);
    if (value !== undefined) {
      const passed = value < 0;
      const last = passed ? -value : value;
      if (now - last <= windowMs) {
        if (passed || now - value >= delayMs) {
          this.entries.delete(key); // re-insert: the Map's order is the eviction order
          this.entries.set(key, -now);
          return true;
        }
        return false;
      }
      this.entries.delete(key);
    }
    if (this.entries.size >= maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, delayMs <= 0 ? -now : now);
    return delayMs <= 0;
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }
}

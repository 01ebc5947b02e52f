// Duplicate detection by run + seq with bounded memory: one bitset per run, indexed by seq and
// grown (doubling) only up to the highest seq seen. A run of a million messages costs 128 KB.
// Only the most recent `maxRuns` runs are remembered; seqs beyond `maxSeq` are not tracked.

export class SeqTracker {
  private readonly runs = new Map<string, Uint8Array>();
  private readonly maxRuns: number;
  private readonly maxSeq: number;
  untracked = 0;

  constructor(maxRuns = 64, maxSeq = 1 << 28) {
    this.maxRuns = maxRuns;
    this.maxSeq = maxSeq;
  }

  /** Records run+seq; true when it was seen before. */
  seen(run: string, seq: number): boolean {
    if (!Number.isInteger(seq) || seq < 0 || seq >= this.maxSeq) {
      this.untracked++;
      return false;
    }
    let bits = this.runs.get(run);
    if (!bits) {
      if (this.runs.size >= this.maxRuns) this.runs.delete(this.runs.keys().next().value!);
      bits = new Uint8Array(1024);
      this.runs.set(run, bits);
    }
    const byte = seq >>> 3;
    if (byte >= bits.length) {
      let size = bits.length;
      while (size <= byte) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(bits);
      bits = grown;
      this.runs.set(run, bits);
    }
    const mask = 1 << (seq & 7);
    if (bits[byte] & mask) return true;
    bits[byte] |= mask;
    return false;
  }

  /** Bytes held by the bitsets (for tests and /metrics). */
  bytes(): number {
    let total = 0;
    for (const bits of this.runs.values()) total += bits.length;
    return total;
  }

  clear(): void {
    this.runs.clear();
    this.untracked = 0;
  }
}

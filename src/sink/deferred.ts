// The recipients the sink is deferring right now: those whose most recent answer was a 4xx at RCPT
// or at the end of data (mailbox full, greylisted, rate limited...). A sender holds such mail and
// retries, so a load generator counts them as held, not lost (`deferredNow` in the stats). An
// acceptance or a 5xx settles a recipient. Addresses are kept lower-cased, in a capped set, so
// memory stays bounded; deferrals past the cap are counted as untracked. Pure bookkeeping: Stats
// owns one; it touches nothing else.

/** Enough for every recipient of a million-message run to be deferred at once (about 70 MB when full). */
export const MAX_DEFERRED_RECIPIENTS = 1_000_000;

export class DeferredRecipients {
  private readonly addresses = new Set<string>();
  private readonly maxEntries: number;
  /** 4xx answers to recipients not in the set while it was full: deferredNow counts them short. */
  untracked = 0;

  constructor(maxEntries = MAX_DEFERRED_RECIPIENTS) {
    this.maxEntries = maxEntries;
  }

  get size(): number {
    return this.addresses.size;
  }

  /**
   * The sink's final answer to these recipients in one transaction step: a 4xx defers them, a 2xx
   * (the message accepted) or a 5xx (refused for good) settles them.
   */
  answered(recipients: readonly string[], code: number): void {
    const deferred = code >= 400 && code < 500;
    // The common case at speed: a message accepted while nobody is deferred costs nothing.
    if (!deferred && this.addresses.size === 0) return;
    for (const recipient of recipients) {
      const address = recipient.toLowerCase();
      if (!deferred) this.addresses.delete(address);
      else if (this.addresses.has(address)) continue;
      else if (this.addresses.size < this.maxEntries) this.addresses.add(address);
      else this.untracked++;
    }
  }

  clear(): void {
    this.addresses.clear();
    this.untracked = 0;
  }
}

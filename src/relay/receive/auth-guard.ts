// AUTH guessing. Failed logins are counted per client address and per user name, each within
// smtp.authFailures.window. Once an address has `delayAfter` failures, the answer to its every
// AUTH is held back, longer with each further failure; right or wrong alike, so that a client
// that gives up on a slow answer learns nothing from it. At `lockoutAfter` failures its AUTH is
// refused unchecked with 421 4.7.0 (which closes the session) for `lockout`. A user name's
// failures, gathered from every address, count against an address only once that address has
// failed itself: whoever guesses a user's password elsewhere, a correct login from an address
// that has not failed is answered at once. Both tables are bounded; the longest-quiet entry is
// forgotten first. An IPv6 client counts as its /64 (one customer's allocation, in which it may
// pick a new address for every guess). May touch: its own tables, the auth metrics and the event
// log; receive/server.ts asks it in onAuth.
import { isIP } from 'node:net';
import type { AuthFailuresConfig } from '../../config/types.ts';
import { networkOf } from '../../util/network.ts';
import type { EventLog } from '../log.ts';
import type { AuthMetrics } from '../metrics.ts';

/** Client addresses, and user names, remembered at most (each entry a few dozen bytes). */
export const TRACKED_MAX = 10_000;

/** `locked-out`: refused unchecked, 421 4.7.0; `refused`: wrong credentials, 535. */
export type AuthVerdict = 'accepted' | 'refused' | 'locked-out';

interface Failures {
  count: number;
  /** When the first failure of the window was. */
  since: number;
  /** While later than now, the key is locked out; 0 when it is not. */
  lockedUntil: number;
}

/** Recent failures per key, at most `capacity` keys. */
class FailureTable {
  private readonly entries = new Map<string, Failures>();
  private readonly capacity: number;
  private readonly window: number;

  constructor(capacity: number, window: number) {
    this.capacity = capacity;
    this.window = window;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The key's failures now; none once its window has passed or its lockout has ended. */
  current(key: string, now: number): Failures | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    const over = entry.lockedUntil ? now >= entry.lockedUntil : now - entry.since >= this.window;
    if (!over) return entry;
    this.entries.delete(key);
    return undefined;
  }

  add(key: string, now: number): Failures {
    const entry = this.current(key, now) ?? { count: 0, since: now, lockedUntil: 0 };
    entry.count++;
    // Map order is insertion order: re-inserted, the key is the last to be forgotten
    this.entries.delete(key);
    this.entries.set(key, entry);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
    return entry;
  }

  forget(key: string): void {
    this.entries.delete(key);
  }
}

/** What failures of `client` count under: the address itself for IPv4, its /64 for IPv6. */
function clientKey(client: string): string {
  return isIP(client) === 6 ? networkOf(client) : client;
}

export class AuthGuard {
  private readonly settings: AuthFailuresConfig;
  private readonly metrics: AuthMetrics;
  private readonly log: EventLog;
  private readonly now: () => number;
  private readonly addresses: FailureTable;
  private readonly users: FailureTable;

  constructor(settings: AuthFailuresConfig, metrics: AuthMetrics, log: EventLog, options: { capacity?: number; now?: () => number } = {}) {
    this.settings = settings;
    this.metrics = metrics;
    this.log = log;
    this.now = options.now ?? Date.now;
    this.addresses = new FailureTable(options.capacity ?? TRACKED_MAX, settings.window);
    this.users = new FailureTable(options.capacity ?? TRACKED_MAX, settings.window);
  }

  /**
   * The verdict on one AUTH from `client` for `username`: refused unchecked while locked out,
   * else after the hold its failures so far call for, as `verify` (the credentials check) says.
   */
  async judge(client: string, username: string, verify: () => boolean): Promise<AuthVerdict> {
    const key = clientKey(client);
    const delayMs = this.lockedOut(key, username, this.now()) ? 0 : this.delayFor(key, username, this.now());
    if (delayMs > 0) {
      this.metrics.delayed++;
      await new Promise((resolve) => setTimeout(resolve, delayMs).unref());
    }
    // asked again after the hold: attempts made in parallel may have started a lockout meanwhile
    const now = this.now();
    if (this.lockedOut(key, username, now)) {
      this.metrics.lockedOut++;
      return 'locked-out';
    }
    if (verify()) {
      this.addresses.forget(key);
      this.metrics.tracked.address = this.addresses.size;
      return 'accepted';
    }
    this.failed(key, client, username, now, delayMs);
    return 'refused';
  }

  private lockedOut(key: string, username: string, now: number): boolean {
    const failures = this.addresses.current(key, now);
    if (failures === undefined) return false; // an address that has not failed is never locked out
    return failures.lockedUntil > 0 || (this.users.current(username, now)?.lockedUntil ?? 0) > 0;
  }

  private delayFor(key: string, username: string, now: number): number {
    const ofAddress = this.addresses.current(key, now)?.count ?? 0;
    const ofUser = ofAddress > 0 ? this.users.current(username, now)?.count ?? 0 : 0;
    // not locked out: both counts are below lockoutAfter, so the hold is bounded
    const failures = Math.max(ofAddress, ofUser);
    const { delayAfter, delay } = this.settings;
    return failures >= delayAfter ? delay * (failures - delayAfter + 1) : 0;
  }

  private failed(key: string, client: string, username: string, now: number, delayMs: number): void {
    this.metrics.failures++;
    const ofAddress = this.addresses.add(key, now);
    const ofUser = this.users.add(username, now);
    this.metrics.tracked.address = this.addresses.size;
    this.metrics.tracked.user = this.users.size;
    this.log.emit('auth-failed', { client, user: username, failures: ofAddress.count, userFailures: ofUser.count, delayMs });
    this.lockOutAt(ofAddress, now, 'address', { client: key });
    this.lockOutAt(ofUser, now, 'user', { user: username });
  }

  private lockOutAt(entry: Failures, now: number, scope: 'address' | 'user', who: Record<string, string>): void {
    if (entry.lockedUntil || entry.count < this.settings.lockoutAfter) return;
    entry.lockedUntil = now + this.settings.lockout;
    this.metrics.lockouts[scope]++;
    this.log.emit('auth-lockout', { scope, ...who, failures: entry.count, until: new Date(entry.lockedUntil).toISOString() });
  }
}

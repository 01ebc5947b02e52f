// Domains an operator suspended (`mailops queue suspend`), looked up in memory: every job asks.
// The spool keeps them on disk (spool/suspended.ts) so that they hold across a restart.
// Suspensions that ran out are dropped when next asked for.
import type { Suspension, SuspendedTable } from '../spool/suspended.ts';

export type { Suspension };

export class Suspensions {
  private readonly entries = new Map<string, Suspension>();
  private readonly table: SuspendedTable;

  constructor(table: SuspendedTable, now = Date.now()) {
    this.table = table;
    for (const [domain, s] of table.inForce(now)) this.entries.set(domain, s);
  }

  /** The suspension of `domain` in force at `now`, if any. */
  active(domain: string, now: number): Suspension | undefined {
    const s = this.entries.get(domain);
    if (!s || s.until > now) return s;
    this.entries.delete(domain);
    void this.table.remove(domain).catch(() => {}); // an expired row left behind is ignored at start
    return undefined;
  }

  /** Suspends `domain`; resolves once that is on disk. */
  set(domain: string, suspension: Suspension): Promise<void> {
    this.entries.set(domain, suspension);
    return this.table.put(domain, suspension);
  }

  /** Lifts the suspension; resolves with whether there was one, once that is on disk. */
  async delete(domain: string): Promise<boolean> {
    const had = this.entries.delete(domain);
    await this.table.remove(domain);
    return had;
  }

  /** Suspensions in force at `now`. */
  list(now: number): [string, Suspension][] {
    return [...this.entries].filter(([, s]) => s.until > now);
  }
}

// Domains an operator suspended (`mailops queue suspend`). Kept in the spool database, so that a
// restart does not send mail to a domain the operator stopped, and looked up in memory: every job
// asks. Suspensions that ran out are dropped when next asked for.
import type { StatementSync } from 'node:sqlite';
import type { Spool } from '../spool/spool.ts';

/** `until` is a time in ms, or Number.MAX_SAFE_INTEGER for "until resumed". */
export interface Suspension { until: number; reason: string }

export class Suspensions {
  private readonly entries = new Map<string, Suspension>();
  private readonly spool: Spool;
  private readonly sql: Record<'put' | 'remove', StatementSync>;

  constructor(spool: Spool, now = Date.now()) {
    this.spool = spool;
    spool.db.exec('CREATE TABLE IF NOT EXISTS suspensions (domain TEXT PRIMARY KEY, until INTEGER NOT NULL, reason TEXT NOT NULL) WITHOUT ROWID');
    this.sql = {
      put: spool.db.prepare('INSERT INTO suspensions (domain, until, reason) VALUES (?, ?, ?) ON CONFLICT (domain) DO UPDATE SET until = excluded.until, reason = excluded.reason'),
      remove: spool.db.prepare('DELETE FROM suspensions WHERE domain = ?'),
    };
    for (const row of spool.db.prepare('SELECT domain, until, reason FROM suspensions WHERE until > ?').all(now)) {
      this.entries.set(String(row.domain), { until: Number(row.until), reason: String(row.reason) });
    }
  }

  /** The suspension of `domain` in force at `now`, if any. */
  active(domain: string, now: number): Suspension | undefined {
    const s = this.entries.get(domain);
    if (!s || s.until > now) return s;
    this.entries.delete(domain);
    void this.spool.commits.run(() => this.sql.remove.run(domain)).catch(() => {}); // an expired row left behind is ignored at start
    return undefined;
  }

  /** Suspends `domain`; resolves once that is on disk. */
  set(domain: string, suspension: Suspension): Promise<void> {
    this.entries.set(domain, suspension);
    return this.spool.commits.run(() => { this.sql.put.run(domain, suspension.until, suspension.reason); });
  }

  /** Lifts the suspension; resolves with whether there was one, once that is on disk. */
  async delete(domain: string): Promise<boolean> {
    const had = this.entries.delete(domain);
    await this.spool.commits.run(() => this.sql.remove.run(domain));
    return had;
  }

  /** Suspensions in force at `now`. */
  list(now: number): [string, Suspension][] {
    return [...this.entries].filter(([, s]) => s.until > now);
  }
}

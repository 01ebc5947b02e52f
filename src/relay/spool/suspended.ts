// The operators' suspensions table (spool/schema.ts: `suspensions`): domains that `mailops queue
// suspend` stopped, until when and why, so that a restart does not send mail to a domain the
// operator stopped. The spool builds it and owns it; deliver/suspensions.ts keeps the copy in
// memory that every job asks.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { GroupCommit } from './group-commit.ts';

/** `until` is a time in ms, or Number.MAX_SAFE_INTEGER for "until resumed". */
export interface Suspension { until: number; reason: string }

export class SuspendedTable {
  private readonly commits: GroupCommit;
  private readonly sql: Record<'put' | 'remove' | 'inForce', StatementSync>;

  constructor(db: DatabaseSync, commits: GroupCommit) {
    this.commits = commits;
    this.sql = {
      put: db.prepare('INSERT INTO suspensions (domain, until, reason) VALUES (?, ?, ?) ON CONFLICT (domain) DO UPDATE SET until = excluded.until, reason = excluded.reason'),
      remove: db.prepare('DELETE FROM suspensions WHERE domain = ?'),
      inForce: db.prepare('SELECT domain, until, reason FROM suspensions WHERE until > ?'),
    };
  }

  /** Suspensions in force at `now`. */
  inForce(now: number): [string, Suspension][] {
    return this.sql.inForce.all(now).map((row) => [String(row.domain), { until: Number(row.until), reason: String(row.reason) }]);
  }

  /** Records a suspension; resolves once it is on disk. */
  put(domain: string, suspension: Suspension): Promise<void> {
    return this.commits.run(() => { this.sql.put.run(domain, suspension.until, suspension.reason); });
  }

  /** Removes a suspension; resolves once that is on disk. */
  remove(domain: string): Promise<void> {
    return this.commits.run(() => { this.sql.remove.run(domain); });
  }
}

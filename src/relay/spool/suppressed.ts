// The suppression list's table (spool/schema.ts: `suppressed`): addresses that must not get mail
// (hard bounces, or added by an operator). Kept in the spool database, so it survives restarts
// and moves with the spool; lookups use the primary key, one indexed read per claimed recipient.
// The spool builds it and owns it; bounce/handler.ts decides what goes on it.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { GroupCommit } from './group-commit.ts';

export interface Suppressed { address: string; reason: string; source: string; addedAt: string }

export class SuppressedTable {
  private readonly commits: GroupCommit;
  private readonly sql: Record<string, StatementSync>;

  constructor(db: DatabaseSync, commits: GroupCommit) {
    this.commits = commits;
    const p = (sql: string) => db.prepare(sql);
    this.sql = {
      get: p('SELECT reason, source, added_at FROM suppressed WHERE address = ?'),
      add: p('INSERT INTO suppressed (address, reason, source, added_at) VALUES (?, ?, ?, ?) ON CONFLICT (address) DO UPDATE SET reason = excluded.reason, source = excluded.source, added_at = excluded.added_at'),
      remove: p('DELETE FROM suppressed WHERE address = ?'),
      list: p('SELECT address, reason, source, added_at FROM suppressed WHERE address > ? ORDER BY address LIMIT ?'),
      count: p('SELECT count(*) AS n FROM suppressed'),
    };
  }

  /** The entry for an address (case-insensitive), if suppressed. */
  get(address: string): Suppressed | undefined {
    const key = address.toLowerCase();
    const row = this.sql.get.get(key);
    return row ? { address: key, reason: String(row.reason), source: String(row.source), addedAt: new Date(Number(row.added_at)).toISOString() } : undefined;
  }

  add(address: string, reason: string, source: string): Promise<void> {
    return this.commits.run(() => {
      this.sql.add.run(address.toLowerCase(), reason.slice(0, 500), source, Date.now());
    });
  }

  remove(address: string): Promise<boolean> {
    return this.commits.run(() => Number(this.sql.remove.run(address.toLowerCase()).changes) > 0);
  }

  /** A page of entries in address order, starting after `after`. */
  list(after: string, limit: number): Suppressed[] {
    return this.sql.list.all(after.toLowerCase(), limit).map((row) => ({
      address: String(row.address), reason: String(row.reason), source: String(row.source), addedAt: new Date(Number(row.added_at)).toISOString(),
    }));
  }

  get size(): number {
    return Number(this.sql.count.get()!.n);
  }
}

// The greylisting tables (spool/schema.ts: `greylist`, `greylist_clients`): the inbound MX's
// triplets and the client networks that passed, kept in the spool database so that a restart
// does not greylist every correspondent again. The rules live in inbound/greylist.ts; this is the
// single node's store behind its GreylistStore interface (a cluster keeps the same records in
// Redis). Writes join the next group commit without waiting for its fsync: a record lost to a
// crash costs one more 450, never a message; until its commit has run, a written record is
// read from memory. Reads are one primary-key lookup. The spool builds
// it and owns it; purge() drops what is past its keep_until.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { ClientRecord, GreylistStore, TripletRecord } from '../inbound/greylist.ts';
import type { GroupCommit } from './group-commit.ts';

const NOT_DURABLE = { durable: false };

export class GreylistTable implements GreylistStore {
  private readonly commits: GroupCommit;
  private readonly sql: Record<string, StatementSync>;
  /** Records written whose commit has not run yet (the group commit runs them at a later turn). */
  private readonly unwrittenTriplets = new Map<string, { record: TripletRecord; keepUntil: number }>();
  private readonly unwrittenClients = new Map<string, { record: ClientRecord; keepUntil: number }>();

  constructor(db: DatabaseSync, commits: GroupCommit) {
    this.commits = commits;
    const p = (sql: string) => db.prepare(sql);
    this.sql = {
      triplet: p('SELECT first_seen, last_seen, passed FROM greylist WHERE triplet = ? AND keep_until > ?'),
      putTriplet: p('INSERT INTO greylist (triplet, first_seen, last_seen, passed, keep_until) VALUES (?, ?, ?, ?, ?) ON CONFLICT (triplet) DO UPDATE SET first_seen = excluded.first_seen, last_seen = excluded.last_seen, passed = excluded.passed, keep_until = excluded.keep_until'),
      client: p('SELECT passes, last_pass FROM greylist_clients WHERE network = ? AND keep_until > ?'),
      putClient: p('INSERT INTO greylist_clients (network, passes, last_pass, keep_until) VALUES (?, ?, ?, ?) ON CONFLICT (network) DO UPDATE SET passes = excluded.passes, last_pass = excluded.last_pass, keep_until = excluded.keep_until'),
      purgeTriplets: p('DELETE FROM greylist WHERE keep_until <= ?'),
      purgeClients: p('DELETE FROM greylist_clients WHERE keep_until <= ?'),
    };
  }

  async triplet(key: string, now: number): Promise<TripletRecord | undefined> {
    const unwritten = this.unwrittenTriplets.get(key);
    if (unwritten) return unwritten.keepUntil > now ? unwritten.record : undefined;
    const row = this.sql.triplet.get(key, now);
    return row ? { firstSeen: Number(row.first_seen), lastSeen: Number(row.last_seen), passed: Number(row.passed) === 1 } : undefined;
  }

  async putTriplet(key: string, record: TripletRecord, keepUntil: number): Promise<void> {
    const entry = { record, keepUntil };
    this.unwrittenTriplets.set(key, entry);
    const written = () => { if (this.unwrittenTriplets.get(key) === entry) this.unwrittenTriplets.delete(key); };
    void this.commits.run(() => { this.sql.putTriplet.run(key, record.firstSeen, record.lastSeen, record.passed ? 1 : 0, keepUntil); }, NOT_DURABLE).then(written, written);
  }

  async client(network: string, now: number): Promise<ClientRecord | undefined> {
    const unwritten = this.unwrittenClients.get(network);
    if (unwritten) return unwritten.keepUntil > now ? unwritten.record : undefined;
    const row = this.sql.client.get(network, now);
    return row ? { passes: Number(row.passes), lastPass: Number(row.last_pass) } : undefined;
  }

  async putClient(network: string, record: ClientRecord, keepUntil: number): Promise<void> {
    const entry = { record, keepUntil };
    this.unwrittenClients.set(network, entry);
    const written = () => { if (this.unwrittenClients.get(network) === entry) this.unwrittenClients.delete(network); };
    void this.commits.run(() => { this.sql.putClient.run(network, record.passes, record.lastPass, keepUntil); }, NOT_DURABLE).then(written, written);
  }

  /** Drops the records past their keep_until; resolves with how many went. */
  purge(now: number): Promise<number> {
    return this.commits.run(() => Number(this.sql.purgeTriplets.run(now).changes) + Number(this.sql.purgeClients.run(now).changes), NOT_DURABLE);
  }
}

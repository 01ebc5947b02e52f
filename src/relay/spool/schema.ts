// The spool's tables (the spool owns every table in its database). One row per message (the body stored once, however many recipients and
// domains it has) and one row per recipient carrying its own delivery state. Finished recipients
// and messages are deleted as they finish, so the spool holds only unfinished work; freed pages
// are reused by new mail and handed back to the file system a little at a time (incremental
// vacuum), never in one stop-the-world pass.

export const PRAGMAS = [
  'PRAGMA page_size = 8192',
  'PRAGMA auto_vacuum = INCREMENTAL', // only takes effect on a new database, before the first table
  'PRAGMA journal_mode = WAL',
  // COMMIT writes the WAL without syncing it; group-commit.ts fsyncs the WAL after every commit
  // (on the thread pool) before anyone is told, which is what FULL would do on the event loop.
  'PRAGMA synchronous = NORMAL',
  'PRAGMA wal_autocheckpoint = 0', // checkpoints run in checkpointer.ts, off the event loop
  // The WAL is never cut back while the spool is open (it goes when the last connection closes).
  // SQLite cuts it inside the COMMIT that restarts it, on the event loop, and on a file system
  // mounted with `discard` an ftruncate waits for the device to discard the freed blocks: 80-200 ms
  // per cut with every session stopped (measured under a newsletter, bench/reminders-friction.sh:
  // six cuts in two minutes with a 64 MB limit, one of 2.2 s with 1 GiB). Kept at its high-water
  // mark instead, the WAL costs disk the size of the checkpointer's worst lag, reused by later mail.
  'PRAGMA journal_size_limit = -1',
  'PRAGMA cache_size = -16384', // 16 MB page cache: the hot pages are the newest rows and the indexes' edges
  'PRAGMA temp_store = MEMORY',
  'PRAGMA busy_timeout = 5000',
];

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);

CREATE TABLE IF NOT EXISTS messages (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  lane        TEXT    NOT NULL,
  sender      TEXT    NOT NULL,
  received_at INTEGER NOT NULL,
  client      TEXT    NOT NULL,
  size        INTEGER NOT NULL,
  remaining   INTEGER NOT NULL,
  -- whose it is, for the delivery logs (src/logs/tenants.ts); NULL: no tenant. Before the body, so
  -- that reading it never walks the body's overflow pages (a spool made before has it at the end)
  tenant      TEXT,
  body        BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_lane ON messages (lane);
-- age buckets of the queue summary (admin.ts)
CREATE INDEX IF NOT EXISTS messages_received ON messages (received_at);

-- state: 0 waiting for its next_at, 1 claimed by a delivery attempt (reset to 0 at start-up)
CREATE TABLE IF NOT EXISTS recipients (
  id          INTEGER PRIMARY KEY,
  message_id  INTEGER NOT NULL,
  address     TEXT    NOT NULL,
  domain      TEXT    NOT NULL,
  lane        TEXT    NOT NULL,
  state       INTEGER NOT NULL DEFAULT 0,
  attempts    INTEGER NOT NULL DEFAULT 0,
  next_at     INTEGER NOT NULL,
  last_reply  TEXT
);
CREATE INDEX IF NOT EXISTS recipients_ready ON recipients (lane, state, next_at);
CREATE INDEX IF NOT EXISTS recipients_message ON recipients (message_id);

-- the suppression list (suppressed.ts)
CREATE TABLE IF NOT EXISTS suppressed (
  address  TEXT PRIMARY KEY,
  reason   TEXT NOT NULL,
  source   TEXT NOT NULL,
  added_at INTEGER NOT NULL
) WITHOUT ROWID;

-- operators' suspensions of domains (suspended.ts); until: ms, or 2^53-1 for "until resumed"
CREATE TABLE IF NOT EXISTS suspensions (domain TEXT PRIMARY KEY, until INTEGER NOT NULL, reason TEXT NOT NULL) WITHOUT ROWID;

-- greylisting of the inbound MX (greylist.ts): one row per triplet (client network, sender,
-- recipient) and one per client network that passed; rows are gone once past keep_until
CREATE TABLE IF NOT EXISTS greylist (
  triplet    TEXT PRIMARY KEY,
  first_seen INTEGER NOT NULL,
  last_seen  INTEGER NOT NULL,
  passed     INTEGER NOT NULL,
  keep_until INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS greylist_expiry ON greylist (keep_until);
CREATE TABLE IF NOT EXISTS greylist_clients (
  network    TEXT PRIMARY KEY,
  passes     INTEGER NOT NULL,
  last_pass  INTEGER NOT NULL,
  keep_until INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS greylist_clients_expiry ON greylist_clients (keep_until);
`;

/** Columns added since the first release: a spool made before gets them at its next start. */
export const ADDED_COLUMNS = [{ table: 'messages', column: 'tenant', type: 'TEXT' }];

export const STATE_WAITING = 0;
export const STATE_ACTIVE = 1;

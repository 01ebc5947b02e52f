// Worker thread that moves committed pages from the WAL into the database file (SQLite's
// checkpoint) off the event loop. The writer connection has automatic checkpoints turned off, so
// receiving never stalls for a checkpoint's copying and syncing; a PASSIVE checkpoint here never
// blocks the writer either. Runs until the parent terminates it.
import { parentPort, workerData } from 'node:worker_threads';
import { DatabaseSync } from 'node:sqlite';

const { file, everyMs } = workerData as { file: string; everyMs: number };
const db = new DatabaseSync(file);
db.exec('PRAGMA busy_timeout = 1000');
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');

function run(): void {
  try {
    const row = checkpoint.get() as { busy: number; log: number; checkpointed: number };
    parentPort!.postMessage({ log: row.log, checkpointed: row.checkpointed });
  } catch (err) {
    parentPort!.postMessage({ error: (err as Error).message });
  }
  setTimeout(run, everyMs);
}
run();

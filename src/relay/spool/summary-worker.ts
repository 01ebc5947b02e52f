// Worker thread that answers queue summaries (admin.ts) on its own read-only connection: the
// summary reads every queued recipient, which with a million queued takes long enough to stall
// receiving and delivery if it ran on the event loop. WAL mode lets it read while the relay writes.
import { parentPort, workerData } from 'node:worker_threads';
import { DatabaseSync } from 'node:sqlite';
import { queueSummary, type QueueSummary } from './admin.ts';

export interface SummaryRequest { id: number; now: number; top: number }
export type SummaryReply = { id: number; summary: QueueSummary } | { id: number; error: string };

const db = new DatabaseSync((workerData as { file: string }).file, { readOnly: true });
db.exec('PRAGMA busy_timeout = 1000');

parentPort!.on('message', ({ id, now, top }: SummaryRequest) => {
  try {
    parentPort!.postMessage({ id, summary: queueSummary(db, now, top) } satisfies SummaryReply);
  } catch (err) {
    parentPort!.postMessage({ id, error: (err as Error).message } satisfies SummaryReply);
  }
});

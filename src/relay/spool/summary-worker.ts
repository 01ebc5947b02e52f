// Worker thread that answers queue summaries (admin.ts) on its own read-only connection: the
// summary reads every queued recipient, which with a million queued takes long enough to stall
// receiving and delivery if it ran on the event loop. WAL mode lets it read while the relay writes.
import { workerData } from 'node:worker_threads';
import { DatabaseSync } from 'node:sqlite';
import { answerCalls } from '../../util/worker-calls.ts';
import { queueSummary } from './admin.ts';

export interface SummaryRequest { now: number; top: number }

const db = new DatabaseSync((workerData as { file: string }).file, { readOnly: true });
db.exec('PRAGMA busy_timeout = 1000');

answerCalls(({ now, top }: SummaryRequest) => queueSummary(db, now, top));

// The delivered journal: a receiver's 250 written down the moment it is read, before the spool's
// next commit records it. A kill -9 loses what the process had not yet written; the spool commits
// a delivered recipient's finish at the next turn of the event loop (group-commit.ts), and a kill
// inside that turn sent the message again at the next start. Here each delivered recipient is one
// 16-byte record (message id, recipient id) appended with a plain write(2) as its 250 is handled:
// the page cache keeps it through a kill, at the cost of one small system call and no sync (a
// power loss may still send it again, as Postfix's queue manager would). At start the spool reads
// the records left over and finishes the recipients they name that are still unfinished.
//
// Two files take turns: records go to the current one; once it holds ROTATE_RECORDS and every
// finish recorded in the other has reached the disk (the spool tells us as each settles), the
// other is emptied and becomes current. Neither grows without bound, and a record is dropped only
// once the spool itself holds what it says. Message ids are never given out twice (AUTOINCREMENT),
// so a record can never finish another message's recipient. May touch: its two files only.
import { closeSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const RECORD_BYTES = 16;
const ROTATE_RECORDS = 4096;

/** A recipient a record names: its message and its row. */
export interface DeliveredRecord { messageId: number; recipientId: number }

export class DeliveredJournal {
  private readonly paths: [string, string];
  private readonly fds: [number, number];
  /** The file records go to now. */
  private current: 0 | 1 = 0;
  private written: [number, number] = [0, 0];
  /** Finishes recorded in each file that the spool has not yet made durable. */
  private unsettled: [number, number] = [0, 0];
  /** Records that could not be written (the finish is still committed as usual). */
  failures = 0;

  constructor(dir: string) {
    this.paths = [join(dir, 'delivered.0'), join(dir, 'delivered.1')];
    this.fds = [openSync(this.paths[0], 'a+'), openSync(this.paths[1], 'a+')];
  }

  /** The records the previous process left (read before anything new is written). */
  leftOver(): DeliveredRecord[] {
    const records: DeliveredRecord[] = [];
    for (const path of this.paths) {
      const bytes = readFileSync(path);
      // a record torn by a full disk is incomplete: whole records only
      for (let at = 0; at + RECORD_BYTES <= bytes.length; at += RECORD_BYTES) {
        records.push({ messageId: bytes.readDoubleLE(at), recipientId: bytes.readDoubleLE(at + 8) });
      }
    }
    return records;
  }

  /** Empties both files once the spool has made the left-over records durable. */
  clear(): void {
    for (const i of [0, 1] as const) {
      ftruncateSync(this.fds[i], 0);
      this.written[i] = 0;
    }
  }

  /** Writes the records of delivered recipients; returns the file they went to, for `settled`. */
  record(recipients: readonly { messageId: number; id: number }[]): 0 | 1 {
    const file = this.current;
    const bytes = Buffer.allocUnsafe(recipients.length * RECORD_BYTES);
    recipients.forEach((r, i) => {
      bytes.writeDoubleLE(r.messageId, i * RECORD_BYTES);
      bytes.writeDoubleLE(r.id, i * RECORD_BYTES + 8);
    });
    try {
      writeSync(this.fds[file], bytes);
      this.written[file] += recipients.length;
    } catch {
      this.failures++; // a full disk: the spool's own commit still records the delivery
    }
    this.unsettled[file]++;
    this.rotate();
    return file;
  }

  /** The finish recorded in `file` is durable in the spool (or failed there, and stays unfinished). */
  settled(file: 0 | 1): void {
    this.unsettled[file]--;
    this.rotate();
  }

  private rotate(): void {
    const other = this.current === 0 ? 1 : 0;
    if (this.written[this.current] < ROTATE_RECORDS || this.unsettled[other] > 0) return;
    try {
      ftruncateSync(this.fds[other], 0);
      this.written[other] = 0;
      this.current = other;
    } catch {
      this.failures++;
    }
  }

  close(): void {
    for (const fd of this.fds) closeSync(fd);
  }
}

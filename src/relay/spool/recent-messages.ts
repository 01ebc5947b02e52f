// Messages accepted lately, kept in memory for their first delivery attempt: most are sent
// moments after their commit, and reading the body back from SQLite would cost a query and a
// copy each. Bounded by bytes (the oldest go first) and only ever a shortcut: the spool row is
// the truth, and a message not here is read from it.
import type { StoredMessage } from './spool.ts';

export class RecentMessages {
  private readonly entries = new Map<number, StoredMessage>();
  private bytes = 0;
  private readonly maxBytes: number;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  add(message: StoredMessage): void {
    if (message.body.length > this.maxBytes / 4) return; // a few big ones must not push out everything else
    this.entries.set(message.id, message);
    this.bytes += message.body.length;
    if (this.bytes <= this.maxBytes) return;
    for (const [id, oldest] of this.entries) {
      this.entries.delete(id);
      this.bytes -= oldest.body.length;
      if (this.bytes <= this.maxBytes) break;
    }
  }

  get(id: number): StoredMessage | undefined {
    return this.entries.get(id);
  }

  delete(id: number): void {
    const message = this.entries.get(id);
    if (!message) return;
    this.entries.delete(id);
    this.bytes -= message.body.length;
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }
}

// The relay's event log: one JSON line per event (received, deferred, delivered, failed, expired,
// and operational events), written in batches so that a busy relay makes one write per event-loop
// turn rather than one per line. Subscribers (the SSE endpoint) get every event as it happens.
import { createWriteStream, type WriteStream } from 'node:fs';

export interface LogEvent {
  time: string;
  event: string;
  [key: string]: unknown;
}

type Listener = (event: LogEvent, line: string) => void;

/** Bytes the log may hold for a slow reader before the scheduler waits (see `whenWritable`). */
const HIGH_WATER = 8 << 20;

export class EventLog {
  private buffer: string[] = [];
  private scheduled = false;
  private readonly out: NodeJS.WritableStream | WriteStream;
  private readonly listeners = new Set<Listener>();
  private drained?: Promise<void>;

  constructor(file?: string) {
    this.out = file ? createWriteStream(file, { flags: 'a' }) : process.stdout;
  }

  emit(event: string, fields: Record<string, unknown> = {}): void {
    const entry: LogEvent = { time: new Date().toISOString(), event, ...fields };
    const line = JSON.stringify(entry);
    this.buffer.push(line);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    for (const listener of this.listeners) listener(entry, line);
  }

  info(message: string, fields: Record<string, unknown> = {}): void {
    this.emit('info', { message, ...fields });
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  flush(): void {
    this.scheduled = false;
    if (this.buffer.length === 0) return;
    const text = this.buffer.join('\n') + '\n';
    this.buffer = [];
    this.out.write(text);
  }

  /**
   * Resolves at once while the output keeps up, else when it has drained. Producers of large
   * volumes of events (the scheduler) wait on it, so a slow log reader slows delivery down
   * instead of growing the relay's memory, and no line is dropped.
   */
  whenWritable(): Promise<void> {
    const out = this.out as NodeJS.WritableStream & { writableLength?: number };
    if ((out.writableLength ?? 0) < HIGH_WATER) return Promise.resolve();
    this.drained ??= new Promise<void>((resolve) => out.once('drain', () => {
      this.drained = undefined;
      resolve();
    }));
    return this.drained;
  }

  close(): Promise<void> {
    this.flush();
    if (this.out === process.stdout) return Promise.resolve();
    return new Promise((resolve) => (this.out as WriteStream).end(resolve));
  }
}

// A pool of signing workers, one per core by default: canonicalisation and the RSA private-key
// operation leave the event loop, so receiving, spooling and delivering keep one core while the
// others sign. Requests of one event-loop turn travel together: each worker gets one message with
// its share of them (one wake-up, not one per message) and answers each as soon as it is signed.
// Requests go to the worker with the fewest outstanding; a worker that dies fails its requests
// (the client gets a 451 and retries) and is replaced.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { DkimKeyConfig } from '../../config/sending-types.ts';
import { WorkerCalls } from '../../util/worker-calls.ts';
import type { SignRequest } from './worker.ts';

interface Slot { calls: WorkerCalls<SignRequest, string>; outstanding: number }
interface Queued { request: SignRequest; resolve: (fields: string) => void; reject: (err: Error) => void }

export class SignerPool {
  private readonly slots: Slot[] = [];
  private readonly entries: DkimKeyConfig[];
  private queued: Queued[] = [];
  private closed = false;
  /** Workers that died in a row without answering: a worker that cannot even start is not restarted forever. */
  private deaths = 0;

  constructor(entries: DkimKeyConfig[], size = availableParallelism()) {
    this.entries = entries;
    for (let i = 0; i < Math.max(1, size); i++) this.slots.push(this.spawn());
  }

  private spawn(): Slot {
    const worker = new Worker(new URL('./worker.ts', import.meta.url), { workerData: this.entries });
    worker.unref(); // pending requests keep the relay busy anyway; an idle pool must not keep it alive
    const slot: Slot = {
      outstanding: 0,
      calls: new WorkerCalls(worker, {
        name: 'signing worker',
        onAnswer: () => { this.deaths = 0; },
        onFail: () => {
          const i = this.slots.indexOf(slot);
          if (this.closed || i === -1) return;
          if (++this.deaths > 3 * this.slots.length) {
            this.slots.splice(i, 1); // give up on this slot; with none left, sign() refuses (451 to the client)
            return;
          }
          this.slots[i] = this.spawn();
        },
      }),
    };
    return slot;
  }

  /** DKIM-Signature fields for the message, with the keys of `domain` (the key table's match). */
  sign(message: Buffer, headerEnd: number, domain: string, now: number): Promise<string> {
    if (this.closed || this.slots.length === 0) return Promise.reject(new Error(this.closed ? 'signing pool is closed' : 'signing workers keep failing'));
    const copy = new Uint8Array(message); // a copy the worker owns (transferred, not cloned again)
    return new Promise((resolve, reject) => {
      if (this.queued.push({ request: { message: copy, headerEnd, domain, now }, resolve, reject }) === 1) setImmediate(() => this.dispatch());
    });
  }

  /** Sends this turn's requests, each to the worker with the fewest outstanding, one message per worker. */
  private dispatch(): void {
    const queued = this.queued;
    this.queued = [];
    if (this.slots.length === 0) return queued.forEach((q) => q.reject(new Error('signing workers keep failing')));
    const shares = new Map<Slot, Queued[]>();
    for (const q of queued) {
      let slot = this.slots[0];
      for (const s of this.slots) if (s.outstanding < slot.outstanding) slot = s;
      slot.outstanding++;
      const share = shares.get(slot);
      if (share) share.push(q);
      else shares.set(slot, [q]);
    }
    for (const [slot, share] of shares) {
      const batch = share.map((q) => q.request);
      slot.calls.callAll(batch, batch.map((r) => r.message.buffer as ArrayBuffer)).forEach((answer, i) => answer.then(share[i].resolve, share[i].reject).finally(() => { slot.outstanding--; }));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.calls.worker.terminate()));
  }
}

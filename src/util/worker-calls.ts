// Request and reply over a worker thread. Each call gets an id; the worker's reply with that id
// settles it. Several calls can travel in one message (one wake-up of the worker for all of
// them) and are still answered one by one, each as soon as it is done. A worker that errors or
// exits fails every call it still owes, once.
import { parentPort, type Transferable, type Worker } from 'node:worker_threads';

export type WorkerReply<T> = { id: number; value: T } | { id: number; error: string };

interface Pending<T> { resolve: (value: T) => void; reject: (err: Error) => void }

export class WorkerCalls<Req extends object, T> {
  readonly worker: Worker;
  private readonly pending = new Map<number, Pending<T>>();
  private nextId = 1;
  private failed = false;
  private readonly name: string;

  /** `name` goes into error messages; `onAnswer` runs for every reply (the worker is alive), `onFail` once when it is lost. */
  constructor(worker: Worker, hooks: { name: string; onAnswer?: () => void; onFail?: (err: Error) => void }) {
    this.worker = worker;
    this.name = hooks.name;
    worker.on('message', (reply: WorkerReply<T>) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      hooks.onAnswer?.();
      if ('error' in reply) p.reject(new Error(reply.error));
      else p.resolve(reply.value);
    });
    const fail = (err: Error) => {
      if (this.failed) return; // an 'error' is followed by an 'exit'
      this.failed = true;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      hooks.onFail?.(err);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`${hooks.name} exited with code ${code}`)));
  }

  /** Calls not yet answered. */
  get outstanding(): number {
    return this.pending.size;
  }

  call(request: Req, transfer: Transferable[] = []): Promise<T> {
    return this.callAll([request], transfer)[0];
  }

  /** Sends the requests in one message; the promises settle one by one as the answers come. */
  callAll(requests: Req[], transfer: Transferable[] = []): Promise<T>[] {
    if (this.failed) return requests.map(() => Promise.reject(new Error(`${this.name} is gone`)));
    const calls = requests.map((request) => ({ ...request, id: this.nextId++ }));
    const promises = calls.map(({ id }) => new Promise<T>((resolve, reject) => this.pending.set(id, { resolve, reject })));
    this.worker.postMessage(calls, transfer);
    return promises;
  }
}

/** Worker side: answers each request, in order, with the handler's value or its error message. */
export function answerCalls<Req, T>(handler: (request: Req) => T | Promise<T>): void {
  parentPort!.on('message', async (requests: (Req & { id: number })[]) => {
    for (const request of requests) {
      let reply: WorkerReply<T>;
      try {
        reply = { id: request.id, value: await handler(request) };
      } catch (err) {
        reply = { id: request.id, error: (err as Error).message };
      }
      parentPort!.postMessage(reply);
    }
  });
}

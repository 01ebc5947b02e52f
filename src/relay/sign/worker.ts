// A signing worker: loads the configured DKIM keys itself and answers batches of sign requests
// from the pool (pool.ts) with the DKIM-Signature fields, or an error message, per request.
import { workerData } from 'node:worker_threads';
import type { DkimKeyConfig } from '../../config/sending-types.ts';
import { answerCalls } from '../../util/worker-calls.ts';
import { dkimSignatures, signSync } from './dkim.ts';
import { KeyTable } from './keys.ts';

export interface SignRequest { message: Uint8Array; headerEnd: number; domain: string; now: number }
export interface SignBatch { batch: SignRequest[] }
export type SignResult = string | { error: string };

const keys = new KeyTable(workerData as DkimKeyConfig[]);

async function sign(req: SignRequest): Promise<SignResult> {
  try {
    const found = keys.lookup(req.domain);
    if (!found) throw new Error(`no key for ${req.domain}`);
    const message = Buffer.from(req.message.buffer, req.message.byteOffset, req.message.byteLength);
    return await dkimSignatures(message, req.headerEnd, found, req.now, signSync);
  } catch (err) {
    return { error: (err as Error).message };
  }
}

answerCalls(async ({ batch }: SignBatch) => {
  const results: SignResult[] = [];
  for (const req of batch) results.push(await sign(req));
  return results;
});

// A signing worker: loads the configured DKIM keys itself and answers sign requests from the
// pool (pool.ts) with the DKIM-Signature fields, or an error message.
import { workerData } from 'node:worker_threads';
import type { DkimKeyConfig } from '../../config/sending-types.ts';
import { answerCalls } from '../../util/worker-calls.ts';
import { dkimSignatures, signSync } from './dkim.ts';
import { KeyTable } from './keys.ts';

export interface SignRequest { message: Uint8Array; headerEnd: number; domain: string; now: number }

const keys = new KeyTable(workerData as DkimKeyConfig[]);

answerCalls((req: SignRequest) => {
  const found = keys.lookup(req.domain);
  if (!found) throw new Error(`no key for ${req.domain}`);
  return dkimSignatures(Buffer.from(req.message.buffer, req.message.byteOffset, req.message.byteLength), req.headerEnd, found, req.now, signSync);
});

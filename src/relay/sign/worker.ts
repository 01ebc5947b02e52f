// A signing worker: loads the configured DKIM keys itself and answers sign requests from the
// pool (pool.ts) with the DKIM-Signature fields, or an error message.
import { parentPort, workerData } from 'node:worker_threads';
import type { DkimKeyConfig } from '../../config/sending-types.ts';
import { dkimSignatures, signSync } from './dkim.ts';
import { KeyTable } from './keys.ts';

export interface SignRequest { id: number; message: Uint8Array; headerEnd: number; domain: string; now: number }
export type SignReply = { id: number; signatures: string } | { id: number; error: string };

const keys = new KeyTable(workerData as DkimKeyConfig[]);

parentPort!.on('message', (req: SignRequest) => {
  const message = Buffer.from(req.message.buffer, req.message.byteOffset, req.message.byteLength);
  const found = keys.lookup(req.domain);
  const done = (reply: SignReply) => parentPort!.postMessage(reply);
  if (!found) return done({ id: req.id, error: `no key for ${req.domain}` });
  dkimSignatures(message, req.headerEnd, found, req.now, signSync).then(
    (signatures) => done({ id: req.id, signatures }),
    (err: Error) => done({ id: req.id, error: err.message }),
  );
});

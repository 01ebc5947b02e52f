// Progress output: the ink view on a (simulated) terminal, plain lines otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { inkProgress } from '../../src/load/progress/ink.ts';
import { progressLine } from '../../src/load/progress/plain.ts';
import type { Progress } from '../../src/load/run.ts';

const p: Progress = {
  stage: 'sending', elapsed: 12.3, accepted: 1000, failed: 7, expected: 2000, inFlight: 16, rate: 450, etaSeconds: 2.2,
  lanes: { transactional: { p50: 1.5, p99: 42 }, bulk: { p50: 3, p99: 1200 } },
};

test('plain progress line: counts, rate, ETA and per-lane p99', () => {
  assert.equal(progressLine(p), '[   12s] sending  accepted 1,000/2,000  failed 7  rate 450/s  in-flight 16  eta 3s  transactional p99 42 ms, bulk p99 1.20 s');
});

/** Renders one frame on a fake terminal and returns it without escape codes. */
async function frame(progress: Progress): Promise<string> {
  const out = Object.assign(new PassThrough(), { isTTY: true, columns: 120, rows: 40 }) as unknown as NodeJS.WriteStream;
  let text = '';
  (out as unknown as PassThrough).on('data', (d: Buffer) => (text += d.toString()));
  const view = inkProgress('newsletter-smoke', out);
  view.update(progress);
  // ink writes the last frame at unmount at the latest (always so when CI is set).
  view.stop();
  await new Promise((r) => setImmediate(r));
  return text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
}

test('ink view renders rate, sent/target, errors, ETA and per-lane latency', async () => {
  const plain = await frame(p);
  assert.match(plain, /mailops load newsletter-smoke — sending/);
  assert.match(plain, /1,007\/2,000/);
  assert.match(plain, /450\/s/);
  assert.match(plain, /errors 7/);
  assert.match(plain, /ETA 3s/);
  assert.match(plain, /transactional\s+p50\s+1\.50 ms\s+p99\s+42 ms/);
  assert.match(plain, /bulk\s+p50\s+3\.00 ms\s+p99\s+1\.20 s/);
  const draining = await frame({ ...p, accepted: 1500, stage: 'draining', arrived: 1400, etaSeconds: null });
  assert.match(draining, /draining[\s\S]*arrived 1,400/);
  assert.doesNotMatch(draining, /ETA/);
});

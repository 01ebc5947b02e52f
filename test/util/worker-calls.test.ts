// Request/reply over a real worker thread (answerCalls on the other side): answers and errors by
// id, several calls in one message answered one by one, and a worker that exits fails what it
// still owes exactly once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { WorkerCalls } from '../../src/util/worker-calls.ts';

const WORKER = new URL('./fixtures/calls-worker.ts', import.meta.url);

test('replies settle their own calls; a worker that exits fails the rest once', async () => {
  let answers = 0;
  const failures: string[] = [];
  const calls = new WorkerCalls<{ op: string; n?: number }, number>(new Worker(WORKER), {
    name: 'test worker', onAnswer: () => answers++, onFail: (err) => failures.push(err.message),
  });
  assert.deepEqual(await Promise.all([calls.call({ op: 'double', n: 2 }), calls.call({ op: 'double', n: 5 })]), [4, 10]);
  await assert.rejects(calls.call({ op: 'bad' }), /bad request/);
  assert.equal(answers, 3);
  const held = calls.call({ op: 'hold' });
  assert.equal(calls.outstanding, 1);
  const died = calls.call({ op: 'die' });
  await assert.rejects(held, /test worker exited with code 3/);
  await assert.rejects(died, /test worker exited with code 3/);
  assert.deepEqual(failures, ['test worker exited with code 3']);
  assert.equal(calls.outstanding, 0);
  await assert.rejects(calls.call({ op: 'double', n: 1 }), /test worker is gone/);
});

test('calls sent together are answered one by one: a slow one does not hold back those before it', async (t) => {
  const calls = new WorkerCalls<{ op: string; n?: number }, number>(new Worker(WORKER), { name: 'test worker' });
  t.after(() => calls.worker.terminate());
  const [a, b, held] = calls.callAll([{ op: 'double', n: 3 }, { op: 'bad' }, { op: 'hold' }]);
  assert.equal(await a, 6);
  await assert.rejects(b, /bad request/);
  assert.equal(calls.outstanding, 1, 'only the held call is still owed');
  held.catch(() => {});
});

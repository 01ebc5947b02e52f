// Request/reply over a real worker thread: answers and errors by id, and a worker that exits
// fails what it still owes exactly once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { WorkerCalls } from '../../src/util/worker-calls.ts';

// answers "n" with n * 2, "bad" with an error reply, never answers "hold", exits on "die"
const WORKER = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', ({ id, op, n }) => {
  if (op === 'die') process.exit(3);
  if (op === 'bad') parentPort.postMessage({ id, error: 'bad request' });
  else if (op === 'double') parentPort.postMessage({ id, value: n * 2 });
});`;

test('replies settle their own calls; a worker that exits fails the rest once', async () => {
  let answers = 0;
  const failures: string[] = [];
  const calls = new WorkerCalls<{ op: string; n?: number }, number>(new Worker(WORKER, { eval: true }), {
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

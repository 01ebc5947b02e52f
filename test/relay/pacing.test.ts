// Intake pacing: while higher lanes have mail coming in and the event loop lags, the lowest lane's
// answers are paced (held, then let go at the controller's rate) and the others' never are; a
// newsletter alone is never held, however busy the loop.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { IntakePacer } from '../../src/relay/receive/pacing.ts';
import { PacingMetrics } from '../../src/relay/metrics.ts';
import { until } from '../helpers/wait.ts';

const LANES = ['transactional', 'member', 'bulk'];

/** A pacer over the three lanes with its metrics, closed after the test. */
function startPacer(t: TestContext): { pacer: IntakePacer; metrics: PacingMetrics } {
  const metrics = new PacingMetrics();
  const pacer = new IntakePacer(LANES, metrics);
  t.after(() => pacer.close());
  return { pacer, metrics };
}

function blockLoop(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) { /* a bulk DATA burst keeping the loop busy */ }
}

/** Blocks the loop in 60 ms stretches until the pacer has seen a lagging window. */
async function makeLag(pacer: IntakePacer): Promise<void> {
  for (let i = 0; i < 40 && !pacer.isLagging; i++) {
    blockLoop(60);
    await new Promise((resolve) => setTimeout(resolve, 1)); // let the pacer's window end
  }
  assert.ok(pacer.isLagging, 'a loop blocked for 60 ms at a time counts as lagging');
}

async function settled(promise: Promise<void>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true));
  for (let i = 0; i < 3; i++) await Promise.resolve();
  return done;
}

test('with reminders coming in, the newsletter\'s 250s are paced while the loop lags; the reminders\' never', async (t) => {
  const { pacer, metrics } = startPacer(t);
  pacer.accepted('transactional');
  await makeLag(pacer);
  assert.ok(metrics.loopDelay.quantile(1) >= 50, 'the windows\' worst delays are recorded for /metrics');
  assert.ok(pacer.engaged, 'a reminder accepted lately engages the pacing');
  assert.ok(metrics.rate > 0, 'the newsletter has a rate');
  pacer.accepted('transactional');
  assert.equal(await settled(pacer.whenCalm('transactional')), true, 'a reminder is answered at once');
  assert.equal(await settled(pacer.whenCalm('member')), true, 'member mail is answered at once');
  // a burst of newsletter answers: more than the rate allows at once, so some wait
  const answers = Array.from({ length: 10 }, () => pacer.whenCalm('bulk'));
  const now = await Promise.all(answers.map(settled));
  assert.ok(now.some((done) => !done), 'the newsletter waits while the loop lags');
  assert.ok(metrics.held > 0 && metrics.heldTotal > 0, 'held answers are counted');
  let out = 0;
  for (const answer of answers) void answer.then(() => out++);
  await until('the held answers go out at the paced rate', () => out === answers.length, 5000);
  assert.equal(metrics.held, 0);
});

test('a newsletter alone is never held, however busy the loop', async (t) => {
  const { pacer, metrics } = startPacer(t);
  await makeLag(pacer);
  assert.equal(pacer.engaged, false);
  const answers = Array.from({ length: 50 }, () => pacer.whenCalm('bulk'));
  assert.ok((await Promise.all(answers.map(settled))).every(Boolean), 'no higher lane active: full speed');
  assert.equal(metrics.heldTotal, 0);
});

test('a closing listener lets every held answer go at once', async (t) => {
  const { pacer, metrics } = startPacer(t);
  pacer.accepted('member');
  await makeLag(pacer);
  const answers = Array.from({ length: 200 }, () => pacer.whenCalm('bulk'));
  assert.ok(!(await settled(answers[199])), 'the last of a burst waits');
  pacer.releaseAll();
  assert.ok((await Promise.all(answers.map(settled))).every(Boolean));
});

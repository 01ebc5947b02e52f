// Intake pacing: while the event loop lags, the lowest lane's answer waits and the others' do not;
// once the loop is calm again the held answer goes out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IntakePacer } from '../../src/relay/receive/pacing.ts';
import { Histogram } from '../../src/relay/metrics.ts';
import { until } from '../helpers/wait.ts';

function blockLoop(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) { /* a bulk DATA burst keeping the loop busy */ }
}

test('intake pacing holds the lowest lane\'s 250 while the loop lags, never a higher lane\'s', async (t) => {
  const worst = new Histogram();
  const pacer = new IntakePacer('bulk', worst);
  t.after(() => pacer.close());
  assert.equal(pacer.isLagging, false);
  for (let i = 0; i < 40 && !pacer.isLagging; i++) {
    blockLoop(60);
    await new Promise((resolve) => setTimeout(resolve, 1)); // let the pacer's window end
  }
  assert.ok(pacer.isLagging, 'a loop blocked for 60 ms at a time counts as lagging');
  assert.ok(worst.quantile(1) >= 50, 'the windows\' worst delays are recorded for /metrics');
  let transactional = false;
  let bulk = false;
  void pacer.whenCalm('transactional').then(() => (transactional = true));
  void pacer.whenCalm('bulk').then(() => (bulk = true));
  await Promise.resolve();
  await Promise.resolve();
  assert.equal(transactional, true, 'a reminder is answered at once');
  assert.equal(bulk, false, 'the newsletter waits while the loop lags');
  await until('the held answer goes out once the loop is calm', () => bulk, 5000);
});

// The queue summary on a real spool, answered by its worker thread: recipients by lane, domain
// and age bucket, and concurrent requests sharing one computation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGE_BUCKETS_MIN } from '../../src/relay/spool/admin.ts';
import { Spool } from '../../src/relay/spool/spool.ts';

test('summary counts recipients by lane, domain and age, off the event loop', async (t) => {
  const spool = new Spool(mkdtempSync(join(tmpdir(), 'mailops-summary-')), { commitBatch: 500, commitInterval: 0, lanes: ['bulk', 'transactional'] });
  t.after(() => spool.close());
  const now = Date.now();
  const body = Buffer.from('From: a@b.test\r\n\r\nx\r\n');
  const add = (lane: string, minutesAgo: number, recipients: string[]) =>
    spool.insert({ lane, sender: 'a@b.test', recipients, client: '127.0.0.1', receivedAt: now - minutesAgo * 60_000, body });
  // in arrival order, as the relay stores them
  await add('bulk', 2000, ['a@old.test']);
  await add('bulk', 30, ['b@gmail.test', 'c@gmail.test', 'd@old.test']);
  await add('bulk', 7, ['e@gmail.test']);
  await add('transactional', 1, ['f@gmail.test']);

  const [summary, shared] = await Promise.all([spool.summary(now, 20), spool.summary(now, 20)]);
  assert.equal(summary, shared, 'a request made while one runs gets the same answer');
  const at = (minutes: number) => AGE_BUCKETS_MIN.findIndex((m) => minutes < m) === -1 ? AGE_BUCKETS_MIN.length : AGE_BUCKETS_MIN.findIndex((m) => minutes < m);
  const expected = (entries: [number, number][]) => {
    const buckets = new Array(AGE_BUCKETS_MIN.length + 1).fill(0);
    for (const [minutes, n] of entries) buckets[at(minutes)] += n;
    return buckets;
  };
  const bulk = summary.lanes.bulk;
  assert.equal(bulk.total, 5);
  assert.deepEqual(bulk.buckets, expected([[2000, 1], [30, 3], [7, 1]]));
  assert.deepEqual(bulk.domains.map((d) => [d.domain, d.total]), [['gmail.test', 3], ['old.test', 2]]);
  assert.deepEqual(bulk.domains[1].buckets, expected([[2000, 1], [30, 1]]));
  assert.deepEqual(summary.lanes.transactional.buckets, expected([[1, 1]]));

  // finished recipients leave the summary
  const claimed = await spool.claim('transactional', now, 10);
  await spool.finish('transactional', claimed);
  assert.equal((await spool.summary(Date.now(), 20)).lanes.transactional, undefined);
});

// The memory cache of lately accepted messages: bounded by bytes (oldest out first), emptied as
// messages finish, and never the only copy (the spool row answers when it has let go).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RecentMessages } from '../../src/relay/spool/recent-messages.ts';
import { Spool } from '../../src/relay/spool/spool.ts';

const message = (id: number, size: number) => ({ id, lane: 'bulk', sender: 's@a.test', receivedAt: 0, body: Buffer.alloc(size, id) });

test('bounded by bytes: the oldest go first, and one big message does not push out the rest', () => {
  const recent = new RecentMessages(1000);
  for (let id = 1; id <= 5; id++) recent.add(message(id, 200));
  recent.add(message(6, 250));
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((id) => recent.get(id) !== undefined), [false, false, true, true, true, true]);
  recent.add(message(7, 600)); // more than a quarter of the budget: not kept
  assert.equal(recent.get(7), undefined);
  assert.ok(recent.get(3));
  recent.delete(3);
  assert.equal(recent.get(3), undefined);
});

test('the spool serves a new message from memory, reads it back once evicted, and forgets it when finished', async (t) => {
  const spool = new Spool(mkdtempSync(join(tmpdir(), 'mailops-recent-')), { commitBatch: 500, commitInterval: 0, lanes: ['bulk'] });
  t.after(() => spool.close());
  const body = Buffer.from('Subject: x\r\n\r\nbody\r\n');
  const id = await spool.insert({ lane: 'bulk', sender: 's@a.test', recipients: ['r@b.test'], client: '127.0.0.1', receivedAt: 1, body });
  assert.equal(spool.readMessage(id)!.body, body, 'the very buffer that was stored: no read from SQLite');
  const [claimed] = await spool.claim('bulk', Date.now(), 10);
  await spool.finish('bulk', [claimed]);
  assert.equal(spool.readMessage(id), undefined, 'finished: gone from memory and from the spool');

  const second = await spool.insert({ lane: 'bulk', sender: 's@a.test', recipients: ['r@b.test'], client: '127.0.0.1', receivedAt: 2, body });
  (spool as unknown as { recent: RecentMessages }).recent.clear();
  const read = spool.readMessage(second)!;
  assert.notEqual(read.body, body);
  assert.deepEqual(read.body, body, 'evicted: read back from the spool, byte for byte');
});

// The delivered journal (spool/delivered-journal.ts): a receiver's 250 written down the moment it
// is handled survives a kill -9 that comes before the spool's commit of it, and the next start
// finishes that recipient instead of sending it again; the journal's files stay bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Spool } from '../../src/relay/spool/spool.ts';
import { DeliveredJournal } from '../../src/relay/spool/delivered-journal.ts';

const SPOOL = new URL('../../src/relay/spool/spool.ts', import.meta.url).href;
const options = { commitBatch: 500, commitInterval: 0, lanes: ['member'] };

// In a process of its own: store a message for two recipients, claim both, hear the first one's
// 250 (finish as delivered) and die by SIGKILL in the same turn of the event loop, before the
// spool's next commit can record it.
const DIE_AFTER_250 = `
import { Spool } from ${JSON.stringify(SPOOL)};
const spool = new Spool(process.argv[1], ${JSON.stringify(options)});
const body = Buffer.from('From: a@a.test\\r\\nSubject: x\\r\\n\\r\\nbody\\r\\n');
await spool.insert({ lane: 'member', sender: 'a@a.test', recipients: ['one@b.test', 'two@b.test'], client: '127.0.0.1', receivedAt: 1, body });
const claimed = await spool.claim('member', Date.now(), 10);
void spool.finish('member', [claimed[0]], { delivered: true });
process.kill(process.pid, 'SIGKILL');
`;

test('a 250 handled just before a kill -9 is not sent again: the next start finishes its recipient', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mailops-journal-'));
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', DIE_AFTER_250, dir], { encoding: 'utf8' });
  assert.equal(child.signal, 'SIGKILL', child.stderr);
  const spool = new Spool(dir, options);
  try {
    assert.equal(spool.recoveredDelivered, 1, 'the recipient whose 250 was journaled is finished at start');
    assert.equal(spool.recoveredActive, 1, 'the other, claimed but never answered, goes back to the queue');
    const left = spool.db.prepare('SELECT address, state FROM recipients').all();
    assert.deepEqual(left.map((r) => [r.address, r.state]), [['two@b.test', 0]]);
    assert.equal(spool.messages, 1, 'the message stays for its other recipient');
  } finally {
    void spool.close();
  }
  // and once more: the journal was emptied, nothing is finished twice
  const again = new Spool(dir, options);
  try {
    assert.equal(again.recoveredDelivered, 0);
    assert.equal(again.db.prepare('SELECT count(*) AS n FROM recipients').get()!.n, 1);
  } finally {
    void again.close();
  }
});

test('the journal\'s two files take turns and stay bounded while finishes settle', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mailops-journal-'));
  const journal = new DeliveredJournal(dir);
  try {
    for (let i = 1; i <= 20_000; i++) journal.settled(journal.record([{ messageId: i, id: i }]));
    const sizes = ['delivered.0', 'delivered.1'].map((f) => statSync(join(dir, f)).size);
    assert.ok(sizes.every((size) => size <= 4096 * 16), `each file at most 4096 records: ${sizes}`);
    assert.ok(journal.leftOver().length <= 8192);
    // a finish not yet durable keeps its file: the records in it are not dropped
    const file = journal.record([{ messageId: 1e9, id: 7 }]);
    for (let i = 1; i <= 10_000; i++) journal.settled(journal.record([{ messageId: i, id: i }]));
    assert.ok(journal.leftOver().some((r) => r.messageId === 1e9 && r.recipientId === 7), 'an unsettled record survives rotation');
    journal.settled(file);
  } finally {
    journal.close();
  }
});

// The group commit on a real SQLite file: one transaction per event-loop turn, a failing
// operation undone alone, durable operations settled only after the WAL fsync.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pbkdf2 } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Spool, SpoolClosedError } from '../../src/relay/spool/spool.ts';

test('operations of one turn share a commit; a failing one is rolled back alone', async (t) => {
  const spool = new Spool(mkdtempSync(join(tmpdir(), 'mailops-gc-')), { commitBatch: 500, commitInterval: 0, lanes: ['bulk'] });
  t.after(() => spool.close());
  const db = spool.db;
  db.exec('CREATE TABLE t (v INTEGER UNIQUE)');
  const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
  const commitsBefore = spool.commits.commits;
  const results = await Promise.allSettled([1, 2, 2, 3].map((v) => spool.commits.run(() => insert.run(v).changes)));
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
  assert.match(String((results[2] as PromiseRejectedResult).reason), /UNIQUE/);
  assert.equal(spool.commits.commits - commitsBefore, 1, 'one transaction for the whole turn');
  assert.deepEqual(db.prepare('SELECT v FROM t ORDER BY v').all().map((r) => r.v), [1, 2, 3]);
  assert.ok(spool.commits.syncTimes.count >= 1, 'the WAL was fsynced before the promises settled');
});

test('operations queued while an fsync is under way gather into one commit after it', async (t) => {
  const spool = new Spool(mkdtempSync(join(tmpdir(), 'mailops-gc-')), { commitBatch: 500, commitInterval: 0, lanes: ['bulk'] });
  t.after(() => spool.close());
  spool.db.exec('CREATE TABLE t (v INTEGER)');
  const insert = spool.db.prepare('INSERT INTO t (v) VALUES (?)');
  await spool.commits.drain(); // no fsync of the spool's own start still under way
  // keep libuv's thread pool busy, so that the first commit's fsync waits there
  const poolSize = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  const busy = Array.from({ length: poolSize }, () => new Promise((resolve) => pbkdf2('x', 'y', 400_000, 32, 'sha256', resolve)));
  const before = spool.commits.commits;
  const first = spool.commits.run(() => insert.run(0));
  const later: Promise<unknown>[] = [];
  for (let v = 1; v <= 3; v++) {
    await new Promise((resolve) => setImmediate(resolve)); // a new turn each
    later.push(spool.commits.run(() => insert.run(v)));
  }
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(spool.commits.commits - before, 1, 'only the first operation committed while its fsync waits');
  await Promise.all([first, ...later, ...busy]);
  assert.equal(spool.commits.commits - before, 2, 'the three later operations shared one commit');
  assert.equal(spool.db.prepare('SELECT count(*) AS n FROM t').get()!.n, 4);
});

test('a batch that would hold the loop long commits in slices, the loop served between them, and shares one fsync', async (t) => {
  const spool = new Spool(mkdtempSync(join(tmpdir(), 'mailops-gc-')), { commitBatch: 500, commitInterval: 0, lanes: ['bulk'] });
  t.after(() => spool.close());
  spool.db.exec('CREATE TABLE t (v INTEGER)');
  const insert = spool.db.prepare('INSERT INTO t (v) VALUES (?)');
  const slow = (v: number) => () => { // an operation that takes a millisecond of the loop, as a 40 KB insert can
    const until = performance.now() + 1;
    while (performance.now() < until);
    return insert.run(v);
  };
  const [commitsBefore, syncsBefore, timedBefore] = [spool.commits.commits, spool.commits.syncTimes.count, spool.commits.commitTimes.count];
  let settled = 0;
  const all = Array.from({ length: 40 }, (_, v) => spool.commits.run(slow(v)).then(() => settled++));
  // a timer due at once stands for a socket's data: it must run before the batch is done
  const servedAfter = await new Promise<number>((resolve) => setTimeout(() => resolve(spool.db.prepare('SELECT count(*) AS n FROM t').get()!.n as number), 0));
  await Promise.all(all);
  assert.equal(settled, 40);
  assert.ok(servedAfter > 0 && servedAfter < 40, `the loop was served between slices (rows committed when the timer ran: ${servedAfter})`);
  assert.ok(spool.commits.commits - commitsBefore >= 2, `several slices (${spool.commits.commits - commitsBefore} commits)`);
  assert.equal(spool.commits.syncTimes.count - syncsBefore, 1, 'one fsync covered every slice');
  assert.equal(spool.commits.commitTimes.count - timedBefore, spool.commits.commits - commitsBefore, 'each slice\'s hold of the loop is measured (mailops_spool_commit_seconds)');
});

test('inserted messages survive reopening; counts are rebuilt from the spool', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mailops-gc-'));
  const options = { commitBatch: 500, commitInterval: 0, lanes: ['transactional', 'bulk'] };
  let spool = new Spool(dir, options);
  const body = Buffer.from('From: a@b.test\r\n\r\nx\r\n');
  await Promise.all([1, 2, 3].map((i) => spool.insert({ lane: 'bulk', sender: 'a@b.test', recipients: [`r${i}@x.test`, `s${i}@y.test`], client: '127.0.0.1', receivedAt: Date.now(), body })));
  const claimed = await spool.claim('bulk', Date.now(), 2);
  assert.equal(claimed.length, 2);
  await spool.finish('bulk', [claimed[0]]);
  await spool.close();
  spool = new Spool(dir, options);
  // the still-claimed recipient is back to waiting, and counted as possibly in flight
  assert.equal(spool.recoveredActive, 1);
  assert.deepEqual(spool.counts.get('bulk'), { queued: 5, deferred: 0, active: 0 });
  assert.equal(spool.messages, 3);
  assert.equal(spool.readMessage(claimed[1].messageId)!.body.toString(), body.toString());
  await spool.close();
});

test('a delivered recipient\'s finish commits at once while an fsync waits, ahead of gathered inserts, and settles with the next fsync', async (t) => {
  // bulk below another lane: its inserts are not the urgent ones that also go ahead
  const spool = new Spool(mkdtempSync(join(tmpdir(), 'mailops-gc-')), { commitBatch: 500, commitInterval: 0, lanes: ['transactional', 'bulk'] });
  t.after(() => spool.close());
  const message = (i: number) => ({ lane: 'bulk', sender: 'a@b.test', recipients: [`r${i}@x.test`], client: '127.0.0.1', receivedAt: Date.now(), body: Buffer.from('x\r\n') });
  await spool.insert(message(1));
  const [claimed] = await spool.claim('bulk', Date.now(), 1);
  await spool.commits.drain(); // the claim's commit may have started an fsync: none under way now
  // keep libuv's thread pool busy, so that the next commit's fsync waits there
  const poolSize = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  const busy = Array.from({ length: poolSize }, () => new Promise((resolve) => pbkdf2('x', 'y', 400_000, 32, 'sha256', resolve)));
  const first = spool.insert(message(2));
  await new Promise((resolve) => setImmediate(resolve)); // committed; its fsync waits for the pool
  const gathered = spool.insert(message(3));
  let finished = false;
  const finish = spool.finish('bulk', [claimed], { delivered: true }).then(() => (finished = true));
  await new Promise((resolve) => setImmediate(resolve));
  const rows = (sql: string) => Number(spool.db.prepare(sql).get()!.n);
  assert.equal(rows(`SELECT count(*) AS n FROM recipients WHERE id = ${claimed.id}`), 0, 'the finish is committed (in the WAL) one turn after it was queued');
  assert.equal(rows('SELECT count(*) AS n FROM messages'), 1, 'the insert queued with it still gathers for the next fsync (message 1 went with its finish)');
  assert.equal(finished, false, 'the finish settles only once an fsync covers it');
  await Promise.all([first, gathered, finish, ...busy]);
  assert.equal(rows('SELECT count(*) AS n FROM messages'), 2);
  assert.deepEqual(spool.counts.get('bulk'), { queued: 2, deferred: 0, active: 0 });
});

test('a change offered after the spool closed is refused (SpoolClosedError), never run on the closed database', async () => {
  const spool = new Spool(mkdtempSync(join(tmpdir(), 'mailops-gc-')), { commitBatch: 500, commitInterval: 0, lanes: ['bulk'] });
  const id = await spool.insert({ lane: 'bulk', sender: 's@a.test', recipients: ['r@b.test'], client: '127.0.0.1', receivedAt: 1, body: Buffer.from('x\r\n') });
  const [claimed] = await spool.claim('bulk', Date.now(), 1);
  assert.equal(claimed.messageId, id);
  await spool.close();
  // a delivery's outcome arriving after the stop (its connection outlived the stop's wait)
  await assert.rejects(spool.finish('bulk', [claimed], { delivered: true }), SpoolClosedError);
  await new Promise((resolve) => setImmediate(resolve)); // no flush left to throw on the closed database
});

test('the WAL is not cut back when it restarts: its size stays at the high-water mark (a cut waits for the device inside a COMMIT)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mailops-gc-'));
  const spool = new Spool(dir, { commitBatch: 500, commitInterval: 0, lanes: ['bulk'] });
  const body = Buffer.alloc(1024 * 1024, 'x'); // 72 MB of bodies: past the old 64 MB limit
  const ids = await Promise.all(Array.from({ length: 72 }, () => spool.insert({ lane: 'bulk', sender: 's@a.test', recipients: ['r@b.test'], client: '127.0.0.1', receivedAt: 1, body })));
  await spool.finish('bulk', await spool.claim('bulk', Date.now(), ids.length));
  const grown = spool.walBytes;
  assert.ok(grown > 72 * 1024 * 1024, `WAL ${grown} bytes`);
  // once every frame is in the database file, the next commit starts the WAL from its beginning
  const checkpoint = new DatabaseSync(join(dir, 'spool.sqlite'));
  const restarts = () => { // the WAL header's checkpoint sequence, counting the log's restarts
    const header = Buffer.alloc(16);
    const fd = openSync(join(dir, 'spool.sqlite-wal'), 'r');
    readSync(fd, header, 0, 16, 0);
    closeSync(fd);
    return header.readUInt32BE(12);
  };
  const before = restarts();
  for (let i = 0; i < 250; i++) {
    // busy: the spool's own checkpointer is at it (log and checkpointed are then -1)
    const row = checkpoint.prepare('PRAGMA wal_checkpoint(PASSIVE)').get() as { busy: number; log: number; checkpointed: number };
    if (!row.busy && row.log === row.checkpointed) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  checkpoint.close();
  await spool.insert({ lane: 'bulk', sender: 's@a.test', recipients: ['r@b.test'], client: '127.0.0.1', receivedAt: 1, body: Buffer.from('x\r\n') });
  assert.ok(restarts() > before, 'the WAL restarted');
  assert.equal(spool.walBytes, grown);
  await spool.close();
  rmSync(dir, { recursive: true, force: true });
});

// deferredNow: the recipients whose latest answer from the sink was a 4xx (mailbox full, greylisted,
// rate limited at the end of data), counted over real SMTP and served by GET /api/v1/stats; an
// acceptance or a 5xx settles a recipient, reset forgets them all, and the set is capped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSink } from '../../src/sink/index.ts';
import { DeferredRecipients } from '../../src/sink/deferred.ts';
import { Stats } from '../../src/sink/stats.ts';
import { eventually, getJson, message, session } from './client.ts';

const deferredNow = async (httpPort: number): Promise<number> => (await getJson(httpPort, '/api/v1/stats')).deferredNow;

test('deferredNow: a full mailbox is deferred until a message to it is accepted; a 5xx settles, a 4xx at end of data defers, reset clears', async () => {
  // Three listeners on one sink, so that the same recipient can meet three answers: "full" answers
  // every recipient 452, "slow" takes one message a minute and answers the next 451 at the end of
  // data, accept-all takes everything (up to the sink's --max-size; larger gets 552 at end of data).
  const sink = await startSink({
    smtp: '127.0.0.1:0', http: '127.0.0.1:0', tls: false, maxSize: 2000,
    listeners: [{ profile: 'full', smtp: '127.0.0.1:0' }, { profile: 'slow', smtp: '127.0.0.1:0' }, { profile: 'accept-all', smtp: '127.0.0.1:0' }],
    profiles: { profiles: {
      full: { mailboxFull: { share: 1, reply: '452 4.2.2 <{recipient}>: Mailbox full' } },
      slow: { rate: { messages: 1, window: '60s', phase: 'dataEnd', reply: '451 4.7.1 Slow down' } },
    } },
  });
  try {
    const http = sink.httpPort!;
    const full = await session(sink.listenerPorts.full);
    await full.client.command('MAIL FROM:<news@shop.test>');
    for (const rcpt of ['Anna@Example.test', 'ben@example.test', 'anna@example.test']) {
      assert.equal((await full.client.command(`RCPT TO:<${rcpt}>`))?.code, 452, rcpt);
    }
    await full.client.quit();
    assert.equal(await deferredNow(http), 2, 'Anna and anna are one recipient');
    assert.match(await (await fetch(`http://127.0.0.1:${http}/metrics`)).text(), /^mailops_sink_deferred_recipients 2$/m);

    const accept = await session(sink.listenerPorts['accept-all']);
    // A 250 to RCPT alone does not settle: the message may still be refused at the end of data.
    await accept.client.command('MAIL FROM:<news@shop.test>');
    assert.equal((await accept.client.command('RCPT TO:<ANNA@example.test>'))?.code, 250);
    assert.equal(await deferredNow(http), 2);
    assert.equal((await accept.client.command('DATA'))?.code, 354);
    accept.client.write(`${message()}\r\n.\r\n`.replace(/\r?\n/g, '\r\n'));
    assert.equal((await accept.client.next())?.code, 250);
    assert.equal(await deferredNow(http), 1, 'anna accepted: only ben is deferred');
    // Refused for good (552 at the end of data, over --max-size): ben is settled too.
    assert.equal((await accept.client.send('news@shop.test', ['ben@example.test'], message({}, 'x'.repeat(3000)))).at(-1)?.code, 552);
    assert.equal(await deferredNow(http), 0);
    await accept.client.quit();

    // A 4xx at the end of data defers every recipient of the message.
    const slow = await session(sink.listenerPorts.slow);
    assert.equal((await slow.client.send('news@shop.test', ['carl@example.test'], message())).at(-1)?.code, 250);
    assert.equal((await slow.client.send('news@shop.test', ['dora@example.test', 'emil@example.test'], message())).at(-1)?.code, 451);
    await slow.client.quit();
    const stats = await getJson(http, '/api/v1/stats');
    assert.equal(stats.deferredNow, 2);
    assert.equal(stats.deferredUntracked, 0);
    assert.equal(stats.received, 2, 'every existing field is still there');

    assert.deepEqual(await getJson(http, '/api/v1/reset', 'POST'), { ok: true });
    assert.equal(await deferredNow(http), 0);
  } finally {
    await sink.close();
  }
});

test('deferredNow: a greylisted recipient stays deferred until the retry after the delay is accepted', async () => {
  const sink = await startSink({
    smtp: '127.0.0.1:0', http: false, tls: false, greylistDelayMs: 300, profiles: { profiles: { greylisting: { latency: null } } },
  });
  try {
    const { client } = await session(sink.smtpPort);
    assert.equal((await client.send('news@shop.test', ['anna@greylist-corp.test'], message())).at(-1)?.code, 450);
    assert.equal(sink.stats().deferredNow, 1);
    // Retry as a sending MTA would, until the triplet passes.
    await eventually(async () => ((await client.send('news@shop.test', ['anna@greylist-corp.test'], message())).at(-1)?.code === 250 ? true : undefined),
      10_000, 'the greylisted recipient to be accepted');
    assert.equal(sink.stats().deferredNow, 0);
    await client.quit();
  } finally {
    await sink.close();
  }
});

test('deferred recipients are a capped set: deferrals past the cap are counted as untracked, reset clears both', () => {
  const set = new DeferredRecipients(2);
  set.answered(['a@x.test', 'b@x.test'], 452);
  set.answered(['c@x.test', 'A@X.TEST'], 450);
  assert.equal(set.size, 2);
  assert.equal(set.untracked, 1, 'c did not fit; a was already deferred');
  set.answered(['a@x.test'], 550);
  set.answered(['c@x.test'], 421);
  assert.equal(set.size, 2, 'a settled by the 5xx, c fits now');

  const stats = new Stats({ maxDeferred: 1 });
  stats.reply('rcpt', 452, undefined, ['a@x.test']);
  stats.reply('rcpt', 452, undefined, ['b@x.test']);
  assert.equal(stats.snapshot().deferredNow, 1);
  assert.equal(stats.snapshot().deferredUntracked, 1);
  stats.reset();
  assert.equal(stats.snapshot().deferredNow, 0);
  assert.equal(stats.snapshot().deferredUntracked, 0);
});

// Before the mail is read: the greeting wait with its pregreet test, and DNSBL/DNSWL scoring with
// weights, a filter and a threshold, answered by a loopback DNS server; results cached per client
// address. Clients come from different loopback addresses (127.0.0.x) so that each has its own
// listings and cache entries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RawSmtp } from '../helpers/smtp-client.ts';
import { LOCAL, session, startMx } from './helpers.ts';

test('pregreet: a client that talks before the delayed greeting is refused; one that waits is greeted and known good from then on', async (t) => {
  const mx = await startMx({ inbound: { greeting: { delay: '1s', ttl: '1d' } } });
  t.after(() => mx.stop());
  const stats = mx.relay.inbound!.stats;

  // a bot: speaks at once, without waiting (no line end, so only the screen can notice)
  const bot = await RawSmtp.open(mx.port, '127.0.0.1', '127.0.0.3');
  t.after(() => bot.close());
  bot.send('EHLO bot.example');
  const botReply = await bot.reply();
  assert.match(botReply, /^554 5\.5\.1 Protocol error: \[127\.0\.0\.3\] talked before the greeting/);
  assert.doesNotMatch(botReply, /220/);
  assert.equal(stats.refused.pregreet, 1);
  const logged = mx.relay.events().find((e) => e.event === 'inbound-refused');
  assert.deepEqual([logged?.stage, logged?.reason, logged?.client], ['connect', 'pregreet', '127.0.0.3']);

  // a real MTA waits for the 220
  const mta = await RawSmtp.open(mx.port, '127.0.0.1', '127.0.0.4');
  t.after(() => mta.close());
  assert.match(await mta.reply(), /^220 /);
  assert.equal(stats.greeted.waited, 1);
  assert.match(await mta.command('EHLO mta.sender.test'), /^250/);
  mta.close();
  // its next connection is greeted without the wait; the bot is tested again (a failure is not remembered as good)
  const again = await session(mx.port, '127.0.0.4');
  t.after(() => again.close());
  assert.equal(stats.greeted.known, 1);
  const botAgain = await RawSmtp.open(mx.port, '127.0.0.1', '127.0.0.3');
  t.after(() => botAgain.close());
  botAgain.send('HELO');
  assert.match(await botAgain.reply(), /^554 5\.5\.1 /);
  assert.equal(stats.refused.pregreet, 2);
});

test('DNSBL and DNSWL: weighted sites answered together, threshold 2, filtered answers, allowlisted clients skip greylisting, scores cached per address', async (t) => {
  const listed = (...addresses: string[]) => ({ A: addresses });
  const zone = {
    // 127.0.0.2: zen (2) → 2, refused
    '2.0.0.127.zen.test': listed('127.0.0.2'),
    // 127.0.0.3: spamcop-like list only (1) → 1, admitted (and greylisted: not vouched for)
    '3.0.0.127.bl.test': listed('127.0.0.2'),
    // 127.0.0.5: zen (2) and bl (1) but on the allowlist (-1) → 2, refused; 127.0.0.8: zen (2) + allowlist (-1) → 1, admitted
    '5.0.0.127.zen.test': listed('127.0.0.4'), '5.0.0.127.bl.test': listed('127.0.0.2'), '5.0.0.127.wl.test': listed('127.0.10.2'),
    '8.0.0.127.zen.test': listed('127.0.0.3'), '8.0.0.127.wl.test': listed('127.0.10.2'),
    // 127.0.0.6: allowlist only (-1) → vouched: greeted at once, no greylisting
    '6.0.0.127.wl.test': listed('127.0.10.2'),
    // 127.0.0.7: zen answers outside its filter (127.0.0.12) and bl refuses the query (127.255.255.254): neither counts
    '7.0.0.127.zen.test': listed('127.0.0.12'), '7.0.0.127.bl.test': listed('127.255.255.254'),
  };
  const mx = await startMx({
    zone,
    inbound: {
      dnsbl: { sites: ['zen.test=127.0.0.[2..11]*2', 'bl.test*1', 'wl.test*-1'], threshold: 2 },
      greylist: { enabled: true, delay: '300s' },
    },
  });
  t.after(() => mx.stop());
  const stats = mx.relay.inbound!.stats;

  for (const blocked of ['127.0.0.2', '127.0.0.5']) {
    const client = await RawSmtp.open(mx.port, '127.0.0.1', blocked);
    t.after(() => client.close());
    assert.match(await client.reply(), new RegExp(`^554 5\\.7\\.1 Service unavailable; client \\[${blocked.replace(/\./g, '\\.')}\\] blocked using zen\\.test=127\\.0\\.0\\.\\[2\\.\\.11\\]\\*2.* \\(score 2, threshold 2\\)`));
  }
  assert.equal(stats.refused.dnsbl, 2);
  const refusal = mx.relay.events().find((e) => e.event === 'inbound-refused' && e.client === '127.0.0.5');
  assert.deepEqual(refusal?.listedBy, ['zen.test=127.0.0.[2..11]*2', 'bl.test*1', 'wl.test*-1']);

  const rcpt = async (from: string) => {
    const client = await session(mx.port, from);
    t.after(() => client.close());
    await client.command('MAIL FROM:<someone@sender.test>');
    return client.command(`RCPT TO:<alice@${LOCAL}>`);
  };
  assert.match(await rcpt('127.0.0.3'), /^450 4\.2\.0 .*Greylisted/);
  assert.match(await rcpt('127.0.0.8'), /^450 4\.2\.0 /);
  assert.match(await rcpt('127.0.0.7'), /^450 4\.2\.0 /);
  // the allowlisted client is vouched for: straight through greylisting
  assert.match(await rcpt('127.0.0.6'), /^250 /);
  assert.equal(stats.greeted.vouched, 1);

  // a good MTA pays its lookups once: its next sessions ask the DNS nothing
  const queries = mx.dns.queries;
  assert.match(await rcpt('127.0.0.6'), /^250 /);
  assert.match(await rcpt('127.0.0.3'), /^450 /);
  assert.equal(mx.dns.queries, queries);
});

// Each provider behaviour against a real client: greylisting, rate throttling with the provider's
// text, connection caps, per-connection message caps, unknown users, mailbox full, TLS required,
// refusal at connect and simulated latency.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { startSink, type Sink, type SinkOptions } from '../../src/sink/index.ts';
import { RawClient, eventually, message, session } from './client.ts';

/** Profiles without simulated latency, so that tests run fast; `extra` is merged per profile. */
function fast(extra: Record<string, Record<string, unknown>> = {}): Record<string, unknown> {
  const names = ['corporate', 'google', 'outlook', 'yahoo', 'united-internet', 'telekom', 'greylisting'];
  return { profiles: Object.fromEntries(names.map((n) => [n, { latency: null, ...extra[n] }])) };
}

async function withSink(options: SinkOptions, body: (sink: Sink) => Promise<void>): Promise<void> {
  const sink = await startSink({ smtp: '127.0.0.1:0', http: false, profiles: fast(), ...options });
  try {
    await body(sink);
  } finally {
    await sink.close();
  }
}

test('greylisting: 450 on the first attempt, 250 once the delay has passed, per triplet', () => withSink({ greylistDelayMs: 1000 }, async (sink) => {
  const { client } = await session(sink.smtpPort);
  await client.command('MAIL FROM:<news@shop.test>');
  const first = await client.command('RCPT TO:<anna@greylist-corp.test>');
  const firstAt = Date.now();
  assert.equal(first?.code, 450);
  assert.match(first!.text, /^450 4\.2\.0 <anna@greylist-corp\.test>: Recipient address rejected: Greylisted/);
  // Retry as a sending MTA would, until accepted (bounded); it must not pass before the delay.
  const accepted = await eventually(async () => {
    const reply = await client.command('RCPT TO:<anna@greylist-corp.test>');
    return reply?.code === 250 ? Date.now() : (assert.equal(reply?.code, 450), undefined);
  }, 10_000, 'the greylisted recipient to be accepted');
  assert.ok(accepted - firstAt >= 1000 - 50, `accepted after ${accepted - firstAt} ms, before the 1 s delay`);
  // Another recipient is another triplet: greylisted afresh. The passed one now passes at once.
  assert.equal((await client.command('RCPT TO:<ben@greylist-corp.test>'))?.code, 450);
  assert.equal((await client.command('RCPT TO:<anna@greylist-corp.test>'))?.code, 250);
  assert.equal((await client.command('DATA'))?.code, 354);
  client.write('Subject: x\r\n\r\nbody\r\n.\r\n');
  assert.equal((await client.next())?.code, 250);
  await client.quit();
  assert.ok(sink.stats().repliesByPhase.rcpt['450'] >= 2);
  // reset(true) forgets the triplets: the passed recipient is greylisted again.
  sink.reset(true);
  const again = await session(sink.smtpPort);
  await again.client.command('MAIL FROM:<news@shop.test>');
  assert.equal((await again.client.command('RCPT TO:<anna@greylist-corp.test>'))?.code, 450);
  await again.client.quit();
}));

test('rate throttling: Gmail answers 421-4.7.28 with its text after N messages and closes', () => withSink({ profiles: fast({ google: { rate: { messages: 3, window: '60s' } } }) }, async (sink) => {
  const { client } = await session(sink.smtpPort);
  for (let i = 0; i < 3; i++) {
    const replies = await client.send('news@shop.test', [`user${i}@gmail.com`], message());
    assert.equal(replies.at(-1)?.code, 250, `message ${i + 1} of 3 within the limit`);
  }
  await client.command('MAIL FROM:<news@shop.test>');
  const throttled = await client.command('RCPT TO:<user4@gmail.com>');
  assert.equal(throttled?.code, 421);
  assert.match(throttled!.text, /^421-4\.7\.28 \[127\.0\.0\.1\] Our system has detected an unusual rate of unsolicited mail\r\n421-4\.7\.28 .*\r\n421 4\.7\.28 .*rate limited\.\r\n$/);
  await client.closed;
  // The window is per client and provider: other providers still accept.
  const other = await session(sink.smtpPort);
  assert.equal((await other.client.send('news@shop.test', ['a@web-shop.test'], message())).at(-1)?.code, 250);
  await other.client.quit();
  assert.equal(sink.stats().replies['421'], 1);
}));

test('rate throttling at MAIL FROM: Yahoo TSS04 on a connection bound to Yahoo', () => withSink({ profile: 'yahoo', profiles: fast({ yahoo: { rate: { messages: 2, window: '1h' } } }) }, async (sink) => {
  const { client } = await session(sink.smtpPort);
  for (let i = 0; i < 2; i++) assert.equal((await client.send('news@shop.test', [`u${i}@yahoo.com`], message())).at(-1)?.code, 250);
  const reply = await client.command('MAIL FROM:<news@shop.test>');
  assert.match(reply!.text, /^421 4\.7\.0 \[TSS04\] Messages from 127\.0\.0\.1 temporarily deferred due to unexpected volume or user complaints/);
  await client.closed;
}));

test('connection cap: the 6th concurrent Outlook connection gets 451 4.7.652 (S3115)', () => withSink({}, async (sink) => {
  const open: RawClient[] = [];
  for (let i = 0; i < 5; i++) {
    const { client } = await session(sink.smtpPort);
    await client.command('MAIL FROM:<news@shop.test>');
    assert.equal((await client.command(`RCPT TO:<u${i}@outlook.com>`))?.code, 250);
    open.push(client);
  }
  const { client: sixth } = await session(sink.smtpPort);
  await sixth.command('MAIL FROM:<news@shop.test>');
  const refused = await sixth.command('RCPT TO:<u6@hotmail.de>');
  assert.match(refused!.text, /^451 4\.7\.652 The mail server \[127\.0\.0\.1\] has exceeded the maximum number of connections\. \(S3115\)/);
  await sixth.closed;
  // Live connections count: once one closes, a new one gets through.
  await open.pop()!.quit();
  await eventually(() => (sink.stats().connections.open === 4 ? true : undefined), 5000, 'the closed connection to be counted');
  const { client: again } = await session(sink.smtpPort);
  await again.command('MAIL FROM:<news@shop.test>');
  assert.equal((await again.command('RCPT TO:<u7@outlook.com>'))?.code, 250);
  for (const c of [...open, again]) await c.quit();
}));

test('connection cap on a profile listener: GMX refuses the 5th connection at connect with "421 Too many connections"', () =>
  withSink({ listeners: [{ profile: 'united-internet', smtp: '127.0.0.1:0' }] }, async (sink) => {
    const port = sink.listenerPorts['united-internet'];
    const open: RawClient[] = [];
    for (let i = 0; i < 4; i++) {
      const { client, greeting } = await session(port);
      assert.equal(greeting?.code, 220);
      open.push(client);
    }
    const fifth = await RawClient.open(port);
    assert.equal((await fifth.next())?.text, '421 Too many connections\r\n');
    await fifth.closed;
    for (const c of open) await c.quit();
  }));

test('messages per connection: Yahoo closes silently after 20, Gmail answers 421 after its limit', () => withSink({}, async (sink) => {
  const { client } = await session(sink.smtpPort);
  for (let i = 0; i < 20; i++) assert.equal((await client.send('n@shop.test', [`u${i}@yahoo.de`], message())).at(-1)?.code, 250);
  client.write('MAIL FROM:<n@shop.test>\r\n');
  assert.equal(await client.next(), undefined, 'no reply: the connection just closes');
  const gmail = await startSink({ smtp: '127.0.0.1:0', http: false, profiles: fast({ google: { maxMessagesPerConnection: { limit: 2 } } }) });
  try {
    const { client: g } = await session(gmail.smtpPort);
    for (let i = 0; i < 2; i++) assert.equal((await g.send('n@shop.test', [`u${i}@gmail.com`], message())).at(-1)?.code, 250);
    assert.match((await g.command('MAIL FROM:<n@shop.test>'))!.text, /^421 4\.7\.0 Try again later, closing connection\./);
    await g.closed;
  } finally {
    await gmail.close();
  }
}));

test('unknown users: 550 5.1.1 for local parts starting "unknown" everywhere but accept-all, and for a seeded share', async () => {
  await withSink({}, async (sink) => {
    const { client } = await session(sink.smtpPort);
    await client.command('MAIL FROM:<n@shop.test>');
    for (const rcpt of ['unknown@gmail.com', 'unknown.42@acme.test', 'Unknown-x@t-online.de', 'unknown1@yahoo.com', 'unknown@outlook.com']) {
      assert.match((await client.command(`RCPT TO:<${rcpt}>`))!.text, /^5\d\d[ -]5\.\d\.\d/, rcpt);
    }
    assert.match((await client.command('RCPT TO:<unknown@gmail.com>'))!.text, /^550-5\.1\.1 The email account that you tried to reach does not exist/);
    assert.match((await client.command('RCPT TO:<unknown@acme.test>'))!.text, /^550 5\.1\.1 <unknown@acme\.test>: Recipient address rejected: User unknown/);
    assert.equal((await client.command('RCPT TO:<known@acme.test>'))?.code, 250);
    await client.quit();
  });
  await withSink({ profile: 'accept-all' }, async (sink) => {
    const { client } = await session(sink.smtpPort);
    await client.command('MAIL FROM:<n@shop.test>');
    assert.equal((await client.command('RCPT TO:<unknown@gmail.com>'))?.code, 250);
    await client.quit();
  });
  // share: 0.5 refuses about half of the addresses.
  await withSink({ profiles: fast({ corporate: { unknownUsers: { share: 0.5 } } }) }, async (sink) => {
    const { client } = await session(sink.smtpPort);
    await client.command('MAIL FROM:<n@shop.test>');
    let refused = 0;
    for (let i = 0; i < 200; i++) if ((await client.command(`RCPT TO:<user${i}@acme.test>`))?.code === 550) refused++;
    assert.ok(refused > 60 && refused < 140, `${refused} of 200 refused with share 0.5`);
    await client.quit();
  });
});

test('mailbox full: 452 4.2.2 for the configured share', () => withSink({ profiles: fast({ telekom: { mailboxFull: { share: 1 } } }) }, async (sink) => {
  const { client } = await session(sink.smtpPort);
  await client.command('MAIL FROM:<n@shop.test>');
  assert.match((await client.command('RCPT TO:<anna@t-online.de>'))!.text, /^452 4\.2\.2 <anna@t-online\.de>: mailbox full/);
  await client.quit();
}));

test('TLS required: GMX refuses recipients before STARTTLS with 530, accepts after', () => withSink({}, async (sink) => {
  const send = async (tls: { ignoreTLS?: boolean; requireTLS?: boolean }) => {
    const connection = new SMTPConnection({ port: sink.smtpPort, host: '127.0.0.1', tls: { rejectUnauthorized: false }, ...tls });
    await new Promise<void>((resolve, reject) => {
      connection.once('error', reject);
      connection.connect(() => resolve());
    });
    try {
      return await new Promise<any>((resolve) => {
        connection.send({ from: 'n@shop.test', to: ['anna@web.de'] }, 'Subject: x\r\n\r\nbody\r\n', (err, info) => resolve(err ?? info));
      });
    } finally {
      connection.close();
    }
  };
  const plain = await send({ ignoreTLS: true });
  assert.match(String(plain.response ?? plain.message), /530 5\.7\.0 Must issue a STARTTLS command first/);
  const secure = await send({ requireTLS: true });
  assert.deepEqual(secure.accepted, ['anna@web.de']);
}));

test('refusal at connect: T-Online answers 554 (NOWL) to an address that is not allow-listed', () =>
  withSink({ listeners: [{ profile: 'telekom', smtp: '127.0.0.1:0' }] }, async (sink) => {
    const port = sink.listenerPorts.telekom;
    const stranger = await RawClient.open(port, { localAddress: '127.0.0.9' });
    assert.match((await stranger.next())!.text, /^554 IP=127\.0\.0\.9 - None\/bad reputation \(NOWL\)/);
    await stranger.closed;
    // The lab's egress range 127.0.0.0/29 is allow-listed (a relay's lanes send from 127.0.0.2, .3).
    for (const localAddress of ['127.0.0.1', '127.0.0.2']) {
      const known = await RawClient.open(port, { localAddress });
      assert.equal((await known.next())?.code, 220, localAddress);
      await known.quit();
    }
    // On the shared port the first t-online.de recipient binds the connection and gets the refusal.
    const { client } = await session(sink.smtpPort, { localAddress: '127.0.0.9' });
    await client.command('MAIL FROM:<n@shop.test>');
    assert.match((await client.command('RCPT TO:<anna@t-online.de>'))!.text, /^554 IP=127\.0\.0\.9 /);
    await client.closed;
    assert.equal(sink.stats().repliesByPhase.connect['554'], 1);
  }));

test('latency: each reply waits the profile\'s delay, and pipelined commands keep their order', () =>
  withSink({ profiles: fast({ corporate: { latency: { rcpt: '300ms', mail: '100ms' } } }) }, async (sink) => {
    const { client } = await session(sink.smtpPort);
    const started = Date.now();
    // The first MAIL is answered at once: on the shared port the first recipient decides the
    // provider. From then on the connection is corporate's, so the second MAIL waits too.
    client.write('MAIL FROM:<n@shop.test>\r\nRCPT TO:<a@acme.test>\r\nRCPT TO:<b@acme.test>\r\nRSET\r\nMAIL FROM:<n@shop.test>\r\n');
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push((await client.next())!.code);
    const took = Date.now() - started;
    assert.deepEqual(codes, [250, 250, 250, 250, 250]);
    assert.ok(took >= 690, `2 × RCPT 300 ms + MAIL 100 ms took only ${took} ms`);
    await client.quit();
  }));

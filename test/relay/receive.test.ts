// The SMTP side of the relay: capabilities, relay access, limits, smuggling defence, lanes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { RawSmtp } from '../helpers/smtp-client.ts';
import { startTestRelay } from '../helpers/relay.ts';
import { startReceiver } from '../helpers/receiver.ts';

const MESSAGE = 'From: a@sender.test\r\nTo: b@dest.test\r\nSubject: hi\r\n\r\nhello\r\n';

async function transaction(client: RawSmtp, from: string, to: string[], data: string) {
  const replies = [await client.command(`MAIL FROM:<${from}>`)];
  for (const rcpt of to) replies.push(await client.command(`RCPT TO:<${rcpt}>`));
  replies.push(await client.command('DATA'));
  client.send(data + '.\r\n');
  replies.push(await client.reply());
  return replies;
}

test('EHLO offers the required extensions; AUTH only after STARTTLS', async (t) => {
  const relay = await startTestRelay('smtp:\n  auth:\n    users: [{ username: app, password: s3cret }]\n');
  t.after(() => relay.stop());
  const client = await RawSmtp.open(relay.smtpPort);
  t.after(() => client.close());
  assert.match(await client.reply(), /^220 /);
  const ehlo = await client.command('EHLO client.test');
  for (const ext of ['PIPELINING', 'SIZE 26214400', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'STARTTLS']) {
    assert.match(ehlo, new RegExp(`^250[- ]${ext}$`, 'm'), ext);
  }
  assert.doesNotMatch(ehlo, /AUTH/);
  assert.match(await client.command('AUTH PLAIN AGFwcABzM2NyZXQ='), /^5\d\d /);

  // after STARTTLS the same credentials authenticate, and the relay then relays for that user
  const conn = new SMTPConnection({ port: relay.smtpPort, host: '127.0.0.1', requireTLS: true, tls: { rejectUnauthorized: false } });
  await new Promise<void>((resolve, reject) => { conn.once('error', reject); conn.connect(() => resolve()); });
  t.after(() => conn.close());
  assert.equal(conn.secure, true);
  await new Promise<void>((resolve, reject) => conn.login({ user: 'app', pass: 's3cret' }, (err) => (err ? reject(err) : resolve())));
});

test('relaying is refused outside relayNetworks, whatever the address; allowed after AUTH', async (t) => {
  const relay = await startTestRelay('smtp:\n  relayNetworks: ["192.0.2.0/24"]\n  auth:\n    users: [{ username: app, password: s3cret }]\n');
  t.after(() => relay.stop());
  const client = await RawSmtp.open(relay.smtpPort);
  t.after(() => client.close());
  await client.reply();
  await client.command('EHLO client.test');
  assert.match(await client.command('MAIL FROM:<a@sender.test>'), /^250 /);
  for (const rcpt of ['b@dest.test', 'b%dest.test@localhost', '"b@dest.test"@localhost', '@relay.test:b@dest.test', 'postmaster']) {
    assert.match(await client.command(`RCPT TO:<${rcpt}>`), /^5\d\d /, rcpt);
  }
  assert.match(await client.command('RCPT TO:<b@dest.test>'), /^550 5\.7\.1 Relaying denied/);

  const receiver = await startReceiver();
  t.after(() => receiver.close());
  const conn = new SMTPConnection({ port: relay.smtpPort, host: '127.0.0.1', requireTLS: true, tls: { rejectUnauthorized: false } });
  await new Promise<void>((resolve, reject) => { conn.once('error', reject); conn.connect(() => resolve()); });
  t.after(() => conn.close());
  await new Promise<void>((resolve, reject) => conn.login({ user: 'app', pass: 's3cret' }, (err) => (err ? reject(err) : resolve())));
  const info = await new Promise<{ response: string }>((resolve, reject) =>
    conn.send({ from: 'a@sender.test', to: ['b@dest.test'] }, MESSAGE, (err, i) => (err ? reject(err) : resolve(i!))));
  assert.match(info.response, /^250 2\.0\.0 Ok: queued as [0-9A-F]{8}$/);
});

test('routing tricks are refused even from a relay network', async (t) => {
  const relay = await startTestRelay();
  t.after(() => relay.stop());
  const client = await RawSmtp.open(relay.smtpPort);
  t.after(() => client.close());
  await client.reply();
  await client.command('EHLO client.test');
  await client.command('MAIL FROM:<a@sender.test>');
  for (const rcpt of ['b%dest.test@other.test', '"b@dest.test"@other.test', 'b!dest.test@other.test', 'b@[127.0.0.1]', 'b@localhost']) {
    assert.match(await client.command(`RCPT TO:<${rcpt}>`), /^5\d\d /, rcpt);
  }
  assert.match(await client.command('RCPT TO:<b@dest.test>'), /^250 /);
});

test('over-size messages get 552 5.3.4; bare LF and bare CR get a 5xx; nothing is stored', async (t) => {
  const relay = await startTestRelay('smtp:\n  maxMessageSize: 2KB\n', { smarthost: '127.0.0.1:9' });
  t.after(() => relay.stop());
  const client = await RawSmtp.open(relay.smtpPort);
  t.after(() => client.close());
  await client.reply();
  await client.command('EHLO client.test');
  const big = MESSAGE + 'x'.repeat(70).concat('\r\n').repeat(40);
  assert.match((await transaction(client, 'a@sender.test', ['b@dest.test'], big)).at(-1)!, /^552 5\.3\.4 /);
  const bareLf = 'From: a@sender.test\r\nSubject: smuggle\r\n\r\nline one\n.\nMAIL FROM:<evil@x.test>\r\n';
  assert.match((await transaction(client, 'a@sender.test', ['b@dest.test'], bareLf)).at(-1)!, /^550 5\.6\.11 Bare LF/);
  const bareCr = 'From: a@sender.test\r\nSubject: smuggle\r\n\r\nline one\r.\rmore\r\n';
  assert.match((await transaction(client, 'a@sender.test', ['b@dest.test'], bareCr)).at(-1)!, /^550 5\.6\.11 Bare CR/);
  // the session is still usable and a clean message is accepted
  assert.match((await transaction(client, 'a@sender.test', ['b@dest.test'], MESSAGE)).at(-1)!, /^250 /);
  assert.equal(relay.spool.messages, 1);
});

test('too many recipients get 452 4.5.3; too many connections from one address get 421', async (t) => {
  const relay = await startTestRelay('smtp:\n  maxRecipients: 2\n  maxConnectionsPerIp: 2\n', { smarthost: '127.0.0.1:9' });
  t.after(() => relay.stop());
  const clients = await Promise.all([1, 2, 3].map(() => RawSmtp.open(relay.smtpPort)));
  t.after(() => clients.forEach((c) => c.close()));
  const greetings = await Promise.all(clients.map((c) => c.reply()));
  assert.equal(greetings.filter((g) => g.startsWith('220 ')).length, 2);
  assert.equal(greetings.filter((g) => /^421 4\.7\.0 Too many connections/.test(g)).length, 1);
  const client = clients[greetings.findIndex((g) => g.startsWith('220'))];
  await client.command('EHLO client.test');
  await client.command('MAIL FROM:<a@sender.test>');
  assert.match(await client.command('RCPT TO:<b1@dest.test>'), /^250 /);
  assert.match(await client.command('RCPT TO:<b2@dest.test>'), /^250 /);
  assert.match(await client.command('RCPT TO:<b3@dest.test>'), /^452 4\.5\.3 /);
});

test('pipelined submission: replies in order, tag header picks the lane, unknown lane is 550 5.7.0', async (t) => {
  const relay = await startTestRelay('', { smarthost: '127.0.0.1:9' });
  t.after(() => relay.stop());
  const client = await RawSmtp.open(relay.smtpPort);
  t.after(() => client.close());
  await client.reply();
  await client.command('EHLO client.test');
  const tagged = (lane: string) => `X-Mailops-Lane: ${lane}\r\n${MESSAGE}`;
  client.send('MAIL FROM:<a@sender.test>\r\nRCPT TO:<b@dest.test>\r\nDATA\r\n');
  assert.match(await client.reply(), /^250 /);
  assert.match(await client.reply(), /^250 /);
  assert.match(await client.reply(), /^354 /);
  client.send(`${tagged('transactional')}.\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<c@dest.test>\r\nDATA\r\n`);
  assert.match(await client.reply(), /^250 2\.0\.0 Ok: queued as /);
  assert.match(await client.reply(), /^250 /);
  assert.match(await client.reply(), /^250 /);
  assert.match(await client.reply(), /^354 /);
  client.send(`${tagged('newsletter')}.\r\n`);
  assert.match(await client.reply(), /^550 5\.7\.0 Unknown lane "newsletter" in X-Mailops-Lane; valid lanes: transactional, member, bulk$/);
  assert.equal(relay.spool.counts.get('transactional')!.queued + relay.spool.counts.get('transactional')!.deferred + relay.spool.counts.get('transactional')!.active, 1);
});

// The sink's SMTP engine over real sockets: the commands, pipelining, DATA end-marker detection
// across arbitrary chunk boundaries, dot-stuffing, size limits and STARTTLS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { startSink, type Sink } from '../../src/sink/index.ts';
import { RawClient, session, message } from './client.ts';

async function withSink(options: Parameters<typeof startSink>[0], body: (sink: Sink) => Promise<void>): Promise<void> {
  const sink = await startSink({ smtp: '127.0.0.1:0', http: false, ...options });
  try {
    await body(sink);
  } finally {
    await sink.close();
  }
}

test('accept-all: EHLO advertises the extensions, a message is accepted and counted', () => withSink({ profile: 'accept-all' }, async (sink) => {
  const { client, greeting, ehlo } = await session(sink.smtpPort);
  assert.equal(greeting?.code, 220);
  for (const ext of ['PIPELINING', 'SIZE', '8BITMIME', 'ENHANCEDSTATUSCODES', 'STARTTLS']) assert.match(ehlo!.text, new RegExp(`250[ -]${ext}`));
  const replies = await client.send('a@example.org', ['b@gmail.com', 'c@acme.test'], message());
  assert.deepEqual(replies.map((r) => r.code), [250, 250, 250, 354, 250]);
  assert.match(replies[4].text, /^250 2\.0\.0 Ok: queued as/);
  await client.quit();
  const s = sink.stats();
  assert.equal(s.received, 1);
  assert.deepEqual(s.byDomain, { 'gmail.com': 1, 'acme.test': 1 });
  assert.deepEqual(s.byProfile, { 'accept-all': 2 });
  assert.equal(s.repliesByPhase.rcpt['250'], 2);
  assert.equal(s.connections.total, 1);
}));

test('pipelined commands are answered in order, in one go', () => withSink({ profile: 'accept-all' }, async (sink) => {
  const client = await RawClient.open(sink.smtpPort);
  await client.next();
  const body = 'Subject: x\r\n\r\nbody\r\n.\r\n';
  client.write(`EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\n${body}MAIL FROM:<a@x.test>\r\nRCPT TO:<d@y.test>\r\nDATA\r\n${body}QUIT\r\n`);
  const codes: number[] = [];
  for (let i = 0; i < 11; i++) codes.push((await client.next())!.code);
  assert.deepEqual(codes, [250, 250, 250, 250, 354, 250, 250, 250, 354, 250, 221]);
  await client.closed;
  assert.equal(sink.stats().received, 2);
}));

test('the end of DATA is found when it is split across packets, and dot-stuffed lines do not end it', () => withSink({ profile: 'accept-all' }, async (sink) => {
  const client = await RawClient.open(sink.smtpPort);
  await client.next();
  await client.command('EHLO c');
  await client.command('MAIL FROM:<a@x.test>');
  await client.command('RCPT TO:<b@y.test>');
  assert.equal((await client.command('DATA'))?.code, 354);
  const data = 'Subject: split\r\n\r\nline\r\n..stuffed\r\n.\r\n';
  // One byte per write, with Nagle off, so the marker arrives in pieces.
  client.socket.setNoDelay(true);
  for (const ch of data) {
    client.write(ch);
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.equal((await client.next())?.code, 250);
  // An empty message: the marker right after DATA.
  await client.command('MAIL FROM:<a@x.test>');
  await client.command('RCPT TO:<b@y.test>');
  await client.command('DATA');
  client.write('.\r\n');
  assert.equal((await client.next())?.code, 250);
  await client.quit();
  const s = sink.stats();
  assert.equal(s.received, 2);
  assert.equal(s.bytes, data.length - 3, 'bytes count the data up to the final CRLF, as sent');
}));

test('command order and syntax errors get 5xx replies naming the problem', () => withSink({ profile: 'accept-all' }, async (sink) => {
  const client = await RawClient.open(sink.smtpPort);
  await client.next();
  assert.match((await client.command('MAIL FROM:<a@x.test>'))!.text, /^503 5\.5\.1 .*HELO\/EHLO first/);
  await client.command('EHLO c');
  assert.match((await client.command('RCPT TO:<b@y.test>'))!.text, /^503 5\.5\.1 .*need MAIL/);
  assert.match((await client.command('MAIL FROM:a@x.test'))!.text, /^501 5\.5\.4/);
  await client.command('MAIL FROM:<a@x.test>');
  assert.match((await client.command('RCPT TO:<nobody>'))!.text, /^501 5\.1\.3/);
  assert.match((await client.command('DATA'))!.text, /^554 5\.5\.1 .*no valid recipients/);
  assert.match((await client.command('BDAT 10 LAST'))!.text, /^502 5\.5\.2/);
  await client.quit();
}));

test('SIZE: a declared or actual size over the limit gets 552', () => withSink({ profile: 'accept-all', maxSize: 1000 }, async (sink) => {
  const { client } = await session(sink.smtpPort);
  assert.match((await client.command('MAIL FROM:<a@x.test> SIZE=5000'))!.text, /^552 5\.3\.4/);
  const replies = await client.send('a@x.test', ['b@y.test'], message({}, 'x'.repeat(2000)));
  assert.equal(replies.at(-1)!.code, 552);
  await client.quit();
  assert.equal(sink.stats().received, 0);
}));

test('STARTTLS upgrades the connection; mail sent over TLS is accepted', () => withSink({ profile: 'accept-all' }, async (sink) => {
  const connection = new SMTPConnection({ port: sink.smtpPort, host: '127.0.0.1', requireTLS: true, tls: { rejectUnauthorized: false } });
  await new Promise<void>((resolve, reject) => {
    connection.once('error', reject);
    connection.connect(() => resolve());
  });
  const info = await new Promise<any>((resolve, reject) => {
    connection.send({ from: 'a@x.test', to: ['b@gmx.net'] }, 'Subject: tls\r\n\r\nover TLS\r\n', (err, result) => (err ? reject(err) : resolve(result)));
  });
  assert.equal(connection.secure, true);
  assert.deepEqual(info.accepted, ['b@gmx.net']);
  connection.quit();
  assert.equal(sink.stats().received, 1);
}));

test('idle connections get 421 4.4.2 and are closed; a flood of bad commands ends the session', () => withSink({ profile: 'accept-all', idleMs: 300 }, async (sink) => {
  const { client } = await session(sink.smtpPort);
  assert.match((await client.next(5000))!.text, /^421 4\.4\.2 Idle timeout/);
  await client.closed;
  const flood = await RawClient.open(sink.smtpPort);
  await flood.next();
  flood.write(`${'BOGUS\r\n'.repeat(21)}`);
  const codes = [];
  for (let i = 0; i < 21; i++) codes.push((await flood.next())?.code);
  assert.deepEqual(codes, [...Array(20).fill(502), 421]);
  await flood.closed;
  const long = await RawClient.open(sink.smtpPort);
  await long.next();
  assert.match((await long.command(`EHLO ${'x'.repeat(5000)}`))!.text, /^500 5\.5\.2 Error: line too long/);
  await long.quit();
}));

// MAIL FROM parameters as real clients send them: a parameter repeated with the same value is
// taken (Python's smtplib doubles SMTPUTF8), one repeated with another value is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { RawSmtp } from '../helpers/smtp-client.ts';
import { startTestRelay } from '../helpers/relay.ts';

const PYTHON = '/usr/bin/python3';
const MESSAGE = 'From: =?utf-8?q?J=C3=BCrgen?= <j@sender.test>\r\nTo: b@dest.test\r\nSubject: hi\r\n\r\nhello\r\n';

test('a parameter repeated with the same value is taken; with another value it is 501 naming the parameter', async (t) => {
  const relay = await startTestRelay('', { smarthost: '127.0.0.1:9' });
  t.after(() => relay.stop());
  const client = await RawSmtp.open(relay.smtpPort);
  t.after(() => client.close());
  await client.reply();
  await client.command('EHLO client.test');
  assert.match(await client.command('MAIL FROM:<jürgen@sender.test> SMTPUTF8 SMTPUTF8 BODY=8BITMIME'), /^250 /);
  assert.match(await client.command('RCPT TO:<b@dest.test>'), /^250 /);
  assert.match(await client.command('DATA'), /^354 /);
  client.send(`${MESSAGE}.\r\n`);
  assert.match(await client.reply(), /^250 2\.0\.0 Ok: queued as /);
  // the same keyword in another case is the same parameter
  assert.match(await client.command('MAIL FROM:<a@sender.test> smtputf8 SMTPUTF8 BODY=8BITMIME BODY=8BITMIME'), /^250 /);
  assert.match(await client.command('RSET'), /^250 /);
  assert.match(await client.command('MAIL FROM:<a@sender.test> BODY=7BIT BODY=8BITMIME'), /^501 .*\bBODY\b/);
  assert.match(await client.command('MAIL FROM:<a@sender.test> SIZE=10 SIZE=20'), /^501 .*\bSIZE\b/);
  assert.equal(relay.spool.messages, 1);
});

test('Python smtplib send_message(mail_options=[\'SMTPUTF8\']) with a UTF-8 sender is accepted', { skip: !existsSync(PYTHON) && `no ${PYTHON}` }, async (t) => {
  const relay = await startTestRelay('', { smarthost: '127.0.0.1:9' });
  t.after(() => relay.stop());
  const script = `
import smtplib, sys
from email.message import EmailMessage
m = EmailMessage()
m['From'] = 'jürgen@sender.test'
m['To'] = 'b@dest.test'
m['Subject'] = 'grüße'
m.set_content('hallo')
with smtplib.SMTP('127.0.0.1', int(sys.argv[1])) as s:
    s.set_debuglevel(1)
    s.send_message(m, mail_options=['SMTPUTF8'])
`;
  const run = promisify(execFile);
  const { stderr } = await run(PYTHON, ['-c', script, String(relay.smtpPort)], { env: { ...process.env, PYTHONIOENCODING: 'utf-8' } });
  // what makes the case: smtplib really sends the parameter twice
  assert.match(stderr, /mail FROM:<jürgen@sender\.test>.* SMTPUTF8 SMTPUTF8 /i);
  const received = relay.events().find((e) => e.event === 'received');
  assert.equal(received?.from, 'jürgen@sender.test');
  assert.equal(relay.spool.messages, 1);
});

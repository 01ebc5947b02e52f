// Bounces: DSNs (RFC 3464) for a 550 and for an expiry, parsed back; none for the null sender;
// hard bounces suppressed and later mail failing at once; reply classification.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyReply } from '../../src/relay/bounce/classify.ts';
import { runCli } from '../helpers/cli.ts';
import { RawSmtp } from '../helpers/smtp-client.ts';
import { startTestRelay } from '../helpers/relay.ts';
import { FAST, startReceiver, submit, until, type Arrival } from './helpers.ts';

interface Part { headers: string; body: string }

/** The parts of a multipart message, split on the boundary of its top-level Content-Type. */
function parseMultipart(raw: string): { type: string; parts: Part[] } {
  const headerEnd = raw.indexOf('\r\n\r\n');
  const top = raw.slice(0, headerEnd).replace(/\r\n[ \t]+/g, ' ');
  const type = /^Content-Type: (.*)$/im.exec(top)![1];
  const boundary = /boundary="?([^";]+)"?/.exec(type)![1];
  const sections = raw.slice(headerEnd + 4).split(`--${boundary}`);
  assert.match(sections.at(-1)!, /^--/, 'closing boundary');
  const parts = sections.slice(1, -1).map((section) => {
    const s = section.replace(/^\r\n/, '');
    const end = s.indexOf('\r\n\r\n');
    return { headers: s.slice(0, end), body: s.slice(end + 4) };
  });
  return { type, parts };
}

function dsnFields(arrival: Arrival) {
  const { type, parts } = parseMultipart(arrival.body.toString('latin1'));
  assert.match(type, /^multipart\/report; report-type=delivery-status;/);
  assert.deepEqual(parts.map((p) => /Content-Type: ([^;\r\n]+)/.exec(p.headers)![1]), ['text/plain', 'message/delivery-status', 'text/rfc822-headers']);
  const [perMessage, ...perRecipient] = parts[1].body.trim().split(/\r\n\r\n/);
  const fields = (block: string) => Object.fromEntries(block.split('\r\n').map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim()]));
  return { human: parts[0].body, perMessage: fields(perMessage), recipients: perRecipient.map(fields), original: parts[2].body };
}

test('a 550 5.1.1 gives a DSN to the sender, suppresses the address, and later mail to it fails at once', async (t) => {
  const receiver = await startReceiver({ rcpt: (a) => (a.startsWith('unknown@') ? [550, '5.1.1 <unknown@dest.test>: user unknown'] : undefined) });
  const relay = await startTestRelay(`${FAST}http: { token: secret }\n`, { smarthost: receiver.address });
  t.after(async () => { await relay.stop(); await receiver.close(); });
  await submit(relay.smtpPort, { from: 'news@sender.test', to: ['unknown@dest.test', 'ok@dest.test'], subject: 'Weekly 42', text: 'hi' });
  const dsn = await until('DSN', () => receiver.delivered.find((m) => m.to[0] === 'news@sender.test'));
  assert.equal(dsn.from, '', 'DSN has the null envelope sender');
  assert.match(dsn.body.toString(), /^From: Mail Delivery System <MAILER-DAEMON@/m);
  assert.match(dsn.body.toString(), /^Auto-Submitted: auto-replied/m);
  const d = dsnFields(dsn);
  assert.match(d.perMessage['Reporting-MTA'], /^dns; /);
  assert.equal(d.recipients.length, 1);
  assert.equal(d.recipients[0]['Final-Recipient'], 'rfc822; unknown@dest.test');
  assert.equal(d.recipients[0].Action, 'failed');
  assert.equal(d.recipients[0].Status, '5.1.1');
  assert.match(d.recipients[0]['Diagnostic-Code'], /^smtp; 550 5\.1\.1 .*user unknown/);
  assert.equal(d.recipients[0]['X-Mailops-Bounce-Class'], 'bad-mailbox');
  assert.match(d.original, /^Subject: Weekly 42\r$/m);
  const failed = relay.events().find((e) => e.event === 'failed')!;
  assert.equal(failed.class, 'bad-mailbox');
  assert.ok(relay.events().some((e) => e.event === 'dsn' && e.to === 'news@sender.test'));
  await until('suppression', () => relay.events().some((e) => e.event === 'suppressed'));

  // the list shows addresses: with http.token set, it needs the token
  const refused = await runCli(['suppress', 'list', '--node', relay.httpUrl, '--json'], { env: { MAILOPS_TOKEN: '' } });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /HTTP 401: missing or wrong bearer token/);
  const list = await runCli(['suppress', 'list', '--node', relay.httpUrl, '--token', 'secret', '--json']);
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(JSON.parse(list.stdout).entries.map((e: { address: string }) => e.address), ['unknown@dest.test']);
  const attemptsBefore = receiver.attempts.length;
  const rcptCalls = receiver.sessions.length;
  await submit(relay.smtpPort, { from: 'news@sender.test', to: 'Unknown@dest.test', subject: 'again', text: 'hi' });
  const again = await until('suppressed failure', () => relay.events().find((e) => e.event === 'failed' && e.suppressed));
  assert.match(String(again.reply), /^550 5\.1\.1 <Unknown@dest\.test> is on the suppression list/);
  assert.equal(receiver.attempts.length, attemptsBefore);
  assert.equal(receiver.sessions.length, rcptCalls, 'no connection was made for it');
  const metrics = await (await fetch(`${relay.httpUrl}/metrics`)).text();
  assert.match(metrics, /mailops_failures_total\{lane="member",outcome="failed",class="bad-mailbox"\} 2/);
  assert.match(metrics, /mailops_suppressed_addresses 1/);

  // remove, and the address is tried again
  const removed = await runCli(['suppress', 'remove', 'unknown@dest.test', '--node', relay.httpUrl, '--token', 'secret']);
  assert.equal(removed.code, 0, removed.stderr);
  const added = await runCli(['suppress', 'add', 'gone@dest.test', '--reason', 'asked', '--node', relay.httpUrl, '--token', 'secret']);
  assert.equal(added.code, 0, added.stderr);
  const now = JSON.parse((await runCli(['suppress', 'list', '--node', relay.httpUrl, '--token', 'secret', '--json'])).stdout);
  assert.deepEqual(now.entries.map((e: { address: string; reason: string }) => [e.address, e.reason]), [['gone@dest.test', 'asked']]);
});

test('an expired message gives a DSN with the last reply and its class', async (t) => {
  const receiver = await startReceiver({ rcpt: (a) => (a.startsWith('full@') ? [452, '4.2.2 mailbox full'] : undefined) });
  const relay = await startTestRelay(`lanes:\n  member: { retry: { initial: 100ms, max: 200ms }, lifetime: 600ms }\ndelivery: { idleTimeout: 200ms }\n`, { smarthost: receiver.address });
  t.after(async () => { await relay.stop(); await receiver.close(); });
  await submit(relay.smtpPort, { from: 'app@sender.test', to: 'full@dest.test', subject: 'Reminder', text: 'hi' });
  const dsn = await until('DSN', () => receiver.delivered.find((m) => m.to[0] === 'app@sender.test'));
  const d = dsnFields(dsn);
  assert.equal(d.recipients[0]['Final-Recipient'], 'rfc822; full@dest.test');
  assert.equal(d.recipients[0].Action, 'failed');
  assert.equal(d.recipients[0].Status, '4.2.2');
  assert.equal(d.recipients[0]['X-Mailops-Bounce-Class'], 'mailbox-full');
  assert.match(d.human, /could not be delivered in the time allowed/);
  const expired = relay.events().find((e) => e.event === 'expired')!;
  assert.equal(expired.class, 'mailbox-full');
  assert.ok(relay.events().some((e) => e.event === 'deferred' && e.class === 'mailbox-full'));
});

test('no DSN for mail from the null sender (a failing DSN is never bounced)', async (t) => {
  const receiver = await startReceiver({ rcpt: () => [550, '5.1.1 user unknown'] });
  const relay = await startTestRelay(FAST, { smarthost: receiver.address });
  t.after(async () => { await relay.stop(); await receiver.close(); });
  const client = await RawSmtp.open(relay.smtpPort);
  t.after(() => client.close());
  await client.reply();
  for (const line of ['EHLO t', 'MAIL FROM:<>', 'RCPT TO:<x@dest.test>', 'DATA']) {
    client.send(`${line}\r\n`);
    await client.reply();
  }
  client.send('From: MAILER-DAEMON@elsewhere.test\r\nSubject: a bounce\r\n\r\nbody\r\n.\r\n');
  assert.match(await client.reply(), /^250 /);
  await until('failure', () => relay.events().some((e) => e.event === 'failed'));
  await until('spool to empty', () => relay.spool.messages === 0);
  assert.equal(relay.events().filter((e) => e.event === 'received').length, 1, 'nothing else was queued');
  assert.equal(relay.events().filter((e) => e.event === 'dsn').length, 0);
});

test('reply classification: enhanced code first, then provider texts', () => {
  const cases: [string, string][] = [
    ['550 5.1.1 <a@b> user unknown', 'bad-mailbox'],
    ['550 User unknown in virtual mailbox table', 'bad-mailbox'],
    ['452 4.2.2 mailbox full', 'mailbox-full'],
    ['552 Quota exceeded', 'mailbox-full'],
    ['421 4.7.0 [TSS04] Messages from 1.2.3.4 temporarily deferred due to unexpected volume or user complaints', 'throttled'],
    ['421-4.7.28 Our system has detected an unusual rate of unsolicited mail', 'throttled'],
    ['451 4.7.650 The mail server has been temporarily rate limited due to IP reputation (S775)', 'throttled'],
    ['421 Too many connections', 'throttled'],
    ['550-5.7.26 Unauthenticated email from x is not accepted due to DMARC policy', 'policy-block'],
    ['554 IP=1.2.3.4 - None/bad reputation (NOWL)', 'policy-block'],
    ['451 4.4.3 MX lookup for x.test failed (ESERVFAIL)', 'dns-failure'],
    ['550 5.1.2 Domain nowhere.test not found', 'dns-failure'],
    ['556 5.1.10 x.test does not accept mail (null MX)', 'dns-failure'],
    ['451 4.4.1 Connection failed: mx[1.2.3.4]:25: ETIMEDOUT: Connection timeout', 'timeout'],
    ['ETLS: Error initiating TLS', 'tls-failure'],
    ['530 5.7.10 Encryption needed', 'tls-failure'],
    ['554 5.0.0 something else', 'other'],
  ];
  for (const [reply, cls] of cases) assert.equal(classifyReply(reply), cls, reply);
});

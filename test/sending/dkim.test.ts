// DKIM signing at the intake: RSA + Ed25519 dual signatures verified by mailauth and by
// python3-dkim, nearest-parent key lookup, From over-signed, signed once (retries send the same
// bytes), RFC 5322 fix-ups and the Received field, and bad keys stopping the start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dkimBody } from 'mailauth/lib/dkim/body/index.js';
import { ConfigError } from '../../src/config/errors.ts';
import { relaxedBodyHash } from '../../src/relay/sign/dkim.ts';
import { runCli } from '../helpers/cli.ts';
import { RawSmtp } from '../helpers/smtp-client.ts';
import { startTestRelay } from '../helpers/relay.ts';
import { FAST, makeKey, mailauthVerify, pythonVerify, startReceiver, submit, until } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'mailops-dkim-'));
const rsa = makeKey(dir, 'rsa', 'rsa');
const ed = makeKey(dir, 'ed', 'ed25519');
const records = { 'r2026._domainkey.signed.test': rsa.record, 'e2026._domainkey.signed.test': ed.record };
const DKIM = `dkim:
  - { domain: signed.test, selector: r2026, privateKey: ${rsa.file} }
  - { domain: signed.test, selector: e2026, privateKey: ${ed.file}, algorithm: ed25519-sha256 }
`;

test('relaxed body hash: the as-is fast path and the folding path both agree with mailauth', () => {
  const bodies = [
    '', '\r\n', '\r\n\r\n', 'line\r\n', 'line', 'line\r\n\r\n\r\n', 'a\r\n\r\nb\r\n', 'lone\rCR\r\n', 'ends in CR\r',
    'two  spaces\r\n', 'tab\there\r\n', 'trailing \r\n', 'trailing', 'end space ', 'bare\nLF\r\n', ' \r\n\r\n', 'x\r\n \r\n',
    'Ünïcödé text\r\n', 'a'.repeat(5000) + '\r\n.dot\r\n',
  ];
  for (const text of bodies) {
    const body = Buffer.from(text);
    const reference = dkimBody('relaxed', 'sha256', false);
    reference.update(body);
    assert.equal(relaxedBodyHash(body), reference.digest('base64'), JSON.stringify(text.slice(0, 40)));
  }
});

function headerBlock(body: Buffer): string {
  return body.toString('latin1', 0, body.indexOf('\r\n\r\n') + 2);
}

test('dual RSA + Ed25519 signatures from the nearest parent domain verify with mailauth and python3-dkim; From over-signed; Received shows TLS', async (t) => {
  const receiver = await startReceiver();
  const relay = await startTestRelay(FAST + DKIM, { smarthost: receiver.address });
  t.after(async () => { await relay.stop(); await receiver.close(); });
  await submit(relay.smtpPort, {
    from: 'News <news@mail.signed.test>', to: 'b@dest.test', cc: 'c@dest.test', subject: 'Grüße', text: 'hello\n'.repeat(50),
    replyTo: 'reply@signed.test', headers: { 'List-Unsubscribe': '<https://signed.test/u>', 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click', 'Feedback-ID': 'c1:signed' },
  }, true);
  await until('delivery', () => receiver.delivered.length === 1);
  const body = receiver.delivered[0].body;
  const headers = headerBlock(body);
  const sigs = headers.match(/^DKIM-Signature:.*(\r\n[ \t].*)*/gm)!;
  assert.equal(sigs.length, 2);
  for (const sig of sigs) {
    const h = /h=([^;]+)/.exec(sig.replace(/\r\n[ \t]/g, ''))![1].split(':').map((s) => s.trim().toLowerCase());
    assert.equal(h.filter((x) => x === 'from').length, 2, 'From over-signed');
    for (const name of ['to', 'cc', 'subject', 'date', 'message-id', 'mime-version', 'content-type', 'reply-to', 'list-unsubscribe', 'list-unsubscribe-post', 'feedback-id']) {
      assert.ok(h.includes(name), `h= has ${name}: ${h.join(':')}`);
    }
    assert.match(sig, /c=relaxed\/relaxed/);
    assert.match(sig, /d=signed\.test/);
  }
  const verdicts = await mailauthVerify(body, records);
  assert.deepEqual(verdicts.map((v) => [v.selector, v.result]).sort(), [['e2026', 'pass'], ['r2026', 'pass']]);
  assert.deepEqual(await pythonVerify(body, records), [true, true]);
  assert.match(headers, /^Received: from .*\r\n\tby .* \(mailops\) with ESMTPS \(using TLSv1\.[23] with cipher [A-Z0-9_-]+\)/m);
});

test('signed once at acceptance: a retry after a 451 at end of DATA sends the same bytes', async (t) => {
  let first = true;
  const receiver = await startReceiver({ data: () => (first ? ((first = false), [451, '4.3.0 try again']) : undefined) });
  const relay = await startTestRelay(FAST + DKIM, { smarthost: receiver.address });
  t.after(async () => { await relay.stop(); await receiver.close(); });
  await submit(relay.smtpPort, { from: 'a@signed.test', to: 'b@dest.test', subject: 'retry', text: 'same bytes' });
  await until('second attempt', () => receiver.delivered.length === 1);
  assert.equal(receiver.attempts.length, 2);
  assert.ok(receiver.attempts[0].body.equals(receiver.attempts[1].body), 'both attempts carry identical bytes');
  assert.equal((await mailauthVerify(receiver.delivered[0].body, records)).every((v) => v.result === 'pass'), true);
  assert.ok(relay.events().some((e) => e.event === 'deferred'));
});

test('fix-ups: Message-ID and Date added when missing; other domains unsigned; no From is 550 5.6.0', async (t) => {
  const receiver = await startReceiver();
  const relay = await startTestRelay(FAST + DKIM, { smarthost: receiver.address });
  t.after(async () => { await relay.stop(); await receiver.close(); });
  const client = await RawSmtp.open(relay.smtpPort);
  t.after(() => client.close());
  await client.reply();
  const send = async (data: string) => {
    client.send('EHLO test.client\r\n');
    await client.reply();
    client.send('MAIL FROM:<a@other.test>\r\n');
    await client.reply();
    client.send('RCPT TO:<b@dest.test>\r\n');
    await client.reply();
    client.send('DATA\r\n');
    await client.reply();
    client.send(`${data}.\r\n`);
    return client.reply();
  };
  assert.match(await send('Subject: no from\r\n\r\nbody\r\n'), /^550 5\.6\.0 .*From/);
  assert.match(await send('From: a@other.test\r\nSubject: bare\r\n\r\nbody\r\n'), /^250 /);
  await until('delivery', () => receiver.delivered.length === 1);
  const headers = headerBlock(receiver.delivered[0].body);
  assert.match(headers, /^Message-ID: <[0-9a-z]+\.[0-9a-z]+\.[0-9a-f]{12}@[^>]+>\r$/m);
  assert.match(headers, /^Date: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000\r$/m);
  assert.match(headers, /^Received: from test\.client \(\[127\.0\.0\.1\]\)\r\n\tby .* with ESMTP\r\n\tfor <b@dest\.test>;/m);
  assert.doesNotMatch(headers, /DKIM-Signature/i);
});

test('a bad key stops the start with an error naming the dkim entry (exit 2 from the CLI)', async () => {
  const wrongType = `dkim:\n  - { domain: signed.test, selector: x, privateKey: ${ed.file}, algorithm: rsa-sha256 }\n`;
  await assert.rejects(startTestRelay(wrongType), (err: Error) => err instanceof ConfigError && /dkim\[0\]\.privateKey: .* is a ed25519 key, but algorithm is rsa-sha256/.test(err.message));
  const missing = `dkim:\n  - { domain: signed.test, selector: x, privateKey: ${join(dir, 'nope.pem')} }\n`;
  await assert.rejects(startTestRelay(missing), /dkim\[0\]\.privateKey: cannot read/);
  const garbage = join(dir, 'garbage.pem');
  writeFileSync(garbage, 'not a key');
  const config = join(dir, 'bad.yaml');
  writeFileSync(config, `smtp: { listen: "127.0.0.1:0" }\nhttp: { listen: "127.0.0.1:0" }\nspool: { dir: "${join(dir, 'spool-bad')}" }\ndkim:\n  - { domain: a.test, selector: s, privateKey: ${rsa.file} }\n  - { domain: b.test, selector: s, privateKey: ${garbage} }\n`);
  const result = await runCli(['relay', 'start', '--config', config]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /dkim\[1\]\.privateKey: .*garbage\.pem" is not a PEM private key/);
});

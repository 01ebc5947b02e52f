// `mailops dkim keygen`: the key file (0600), the record split into 255-byte strings, the JSON
// shape, and a signature made with the new key verifying against the printed record.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.ts';
import { dkimSignatures } from '../../src/relay/sign/dkim.ts';
import { mailauthVerify, pythonVerify } from './helpers.ts';

const message = Buffer.from('From: a@keys.test\r\nTo: b@dest.test\r\nSubject: keygen\r\n\r\nbody\r\n');

async function signWith(path: string, selector: string, algorithm: 'rsa-sha256' | 'ed25519-sha256'): Promise<Buffer> {
  const key = createPrivateKey(readFileSync(path));
  const sigs = await dkimSignatures(message, message.indexOf('\r\n\r\n') + 4, [{ domain: 'keys.test', selector, algorithm, key }]);
  return Buffer.concat([Buffer.from(sigs), message]);
}

test('rsa keygen: zone record in 255-byte strings, key 0600, the record verifies a signature made with the key', async () => {
  const out = mkdtempSync(join(tmpdir(), 'mailops-keygen-'));
  const result = await runCli(['dkim', 'keygen', '--domain', 'keys.test', '--selector', 'k1', '--out', out]);
  assert.equal(result.code, 0, result.stderr);
  const path = join(out, 'k1._domainkey.keys.test.pem');
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const strings = [...result.stdout.matchAll(/"([^"]*)"/g)].map((m) => m[1]);
  assert.ok(strings.length >= 2, 'a 2048-bit record needs more than one string');
  assert.ok(strings.every((s) => s.length <= 255));
  assert.match(result.stdout, /^k1\._domainkey\.keys\.test\. IN TXT \(/m);
  const record = strings.join('');
  assert.match(record, /^v=DKIM1; k=rsa; p=[A-Za-z0-9+/=]+$/);
  const signed = await signWith(path, 'k1', 'rsa-sha256');
  assert.deepEqual((await mailauthVerify(signed, { 'k1._domainkey.keys.test': record })).map((v) => v.result), ['pass']);
  assert.deepEqual(await pythonVerify(signed, { 'k1._domainkey.keys.test': record }), [true]);
  // a different record does not verify it: the check can fail
  const other = await runCli(['dkim', 'keygen', '--domain', 'keys.test', '--selector', 'k2', '--out', out, '--json']);
  assert.deepEqual((await mailauthVerify(signed, { 'k1._domainkey.keys.test': JSON.parse(other.stdout).value })).map((v) => v.result), ['fail']);
  // no overwrite without --force
  const again = await runCli(['dkim', 'keygen', '--domain', 'keys.test', '--selector', 'k1', '--out', out]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /exists; use --force/);
});

test('ed25519 keygen --json: name, value, privateKeyPath', async () => {
  const out = mkdtempSync(join(tmpdir(), 'mailops-keygen-'));
  const result = await runCli(['dkim', 'keygen', '--domain', 'keys.test', '--selector', 'ed1', '--type', 'ed25519', '--out', out, '--json']);
  assert.equal(result.code, 0, result.stderr);
  const json = JSON.parse(result.stdout);
  assert.deepEqual(Object.keys(json).sort(), ['name', 'privateKeyPath', 'value']);
  assert.equal(json.name, 'ed1._domainkey.keys.test');
  assert.match(json.value, /^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/);
  const signed = await signWith(json.privateKeyPath, 'ed1', 'ed25519-sha256');
  assert.deepEqual((await mailauthVerify(signed, { [json.name]: json.value })).map((v) => v.result), ['pass']);
  assert.deepEqual(await pythonVerify(signed, { [json.name]: json.value }), [true]);
  const bad = await runCli(['dkim', 'keygen', '--domain', 'keys.test', '--selector', 's', '--type', 'dsa']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--type: expected rsa or ed25519/);
});

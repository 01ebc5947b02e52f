// Sampled DKIM verification of arriving mail: keys from a key map file or from a DNS server on
// loopback; signed, tampered and unsigned messages are counted as pass, neutral/fail and none.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { startSink, type SinkOptions } from '../../src/sink/index.ts';
import { startDnsServer } from '../helpers/dns-server.ts';
import { eventually, session } from './client.ts';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const keyRecord = `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`;

async function signed(body: string): Promise<string> {
  const raw = `From: news@shop.test\r\nTo: anna@acme.test\r\nSubject: DKIM\r\nDate: ${new Date().toUTCString()}\r\n\r\n${body}\r\n`;
  // mailauth's runtime takes signatureData (a list of signers); its typings describe one signer.
  const options = { signatureData: [{ signingDomain: 'shop.test', selector: 's1', privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string }] };
  const result = await dkimSign(raw, options as unknown as Parameters<typeof dkimSign>[1]);
  return result.signatures + raw;
}

async function deliverAndCount(options: SinkOptions): Promise<Record<string, number>> {
  const sink = await startSink({ smtp: '127.0.0.1:0', http: false, profile: 'accept-all', ...options });
  try {
    const good = await signed('Hello, this body is signed.\r\n.leading dot line');
    const tampered = (await signed('Original body.')).replace('Original body.', 'Changed body.');
    const unsigned = 'From: news@shop.test\r\nSubject: plain\r\n\r\nno signature\r\n';
    const { client } = await session(sink.smtpPort);
    for (const m of [good, tampered, unsigned]) {
      assert.equal((await client.send('news@shop.test', ['anna@acme.test'], m)).at(-1)?.code, 250);
    }
    await client.quit();
    return await eventually(() => {
      const d = sink.stats().dkim;
      return d.pass + d.fail + d.none + d.neutral + d.temperror + d.permerror === 3 ? d : undefined;
    }, 10_000, 'three DKIM verdicts');
  } finally {
    await sink.close();
  }
}

test('DKIM with a key map file: pass, neutral (body changed), none (unsigned)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sink-dkim-'));
  try {
    const keys = join(dir, 'keys.yaml');
    writeFileSync(keys, `s1._domainkey.shop.test: "${keyRecord}"\n`);
    const d = await deliverAndCount({ dkim: { sample: 1, keys } });
    assert.equal(d.sampled, 3);
    assert.equal(d.pass, 1);
    // mailauth reports a body hash mismatch as neutral ("body hash did not verify").
    assert.equal(d.fail + d.neutral, 1);
    assert.equal(d.none, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('DKIM with keys from a DNS server; sample 0 verifies nothing', async () => {
  const dns = await startDnsServer({ 's1._domainkey.shop.test': { TXT: [keyRecord] } });
  try {
    const d = await deliverAndCount({ dkim: { sample: 1, dns: { host: dns.host, port: dns.port } } });
    assert.equal(d.pass, 1);
    assert.equal(d.fail + d.neutral, 1);
    assert.ok(dns.queries >= 1);
  } finally {
    await dns.close();
  }
  const sink = await startSink({ smtp: '127.0.0.1:0', http: false, profile: 'accept-all', dkim: { sample: 0, keys: '/nonexistent' } });
  try {
    const { client } = await session(sink.smtpPort);
    await client.send('news@shop.test', ['anna@acme.test'], await signed('x'));
    await client.quit();
    assert.equal(sink.stats().dkim.sampled, 0);
  } finally {
    await sink.close();
  }
});

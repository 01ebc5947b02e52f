// The small parsers the checks rely on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { genericReason, reverseName } from '../../src/audit/ip.ts';
import { validateDmarc } from '../../src/audit/dmarc.ts';
import { keyBits } from '../../src/audit/dkim-keys.ts';
import { parseDnsServer } from '../../src/audit/resolver.ts';
import { addresses, parseHeaders, splitMessage, textParts } from '../../src/audit/mime.ts';
import { buildReport, result } from '../../src/audit/report.ts';
import { renderReport } from '../../src/audit/render.ts';
import { keys } from './fixtures/zones.ts';

test('generic PTR names', () => {
  assert.equal(genericReason('mta1.clean.example', '192.0.2.1'), undefined);
  assert.equal(genericReason('mail.example.com', '192.0.2.1'), undefined);
  assert.match(genericReason('203-0-113-9.dyn.isp.example', '203.0.113.9')!, /IP address/);
  assert.match(genericReason('9.113.0.203.static.isp.example', '203.0.113.9')!, /IP address/);
  assert.match(genericReason('cpe-abc.dynamic.isp.example', '198.51.100.1')!, /"(cpe|dynamic)"/);
  assert.match(genericReason('dsl-pool7.isp.example', '198.51.100.1')!, /"dsl"/);
  assert.match(genericReason('ec2-203-0-113-9.compute-1.amazonaws.com', '203.0.113.9')!, /IP address/);
  assert.match(genericReason('host-cb007109.isp.example', '203.0.113.9')!, /hex/);
});

test('reverse names', () => {
  assert.equal(reverseName('192.0.2.1'), '1.2.0.192.in-addr.arpa');
  assert.equal(reverseName('2001:db8::1'), `1.${'0.'.repeat(23)}8.b.d.0.1.0.0.2.ip6.arpa`);
});

test('DMARC record syntax', () => {
  assert.deepEqual(validateDmarc('v=DMARC1; p=reject; rua=mailto:a@b.example,mailto:c@d.example!10m').errors, []);
  assert.match(validateDmarc('p=reject; v=DMARC1').errors.join(), /first tag/);
  assert.match(validateDmarc('v=DMARC1; p=reject; pct=150').errors.join(), /pct=150/);
  assert.match(validateDmarc('v=DMARC1; p=reject; ruf=a@b.example').errors.join(), /ruf=/);
  assert.deepEqual(validateDmarc('v=DMARC1; p=none; foo=bar').ignored, ['foo']);
});

test('DKIM key sizes from p=', () => {
  assert.deepEqual(keyBits(keys.weak.p, 'rsa'), { bits: 1024, type: 'rsa' });
  assert.deepEqual(keyBits(keys.main.p, 'rsa'), { bits: 2048, type: 'rsa' });
  assert.ok('error' in keyBits('bm90IGEga2V5', 'rsa'));
});

test('--dns values', () => {
  assert.equal(parseDnsServer('127.0.0.1'), '127.0.0.1:53');
  assert.equal(parseDnsServer('127.0.0.1:5353'), '127.0.0.1:5353');
  assert.equal(parseDnsServer('[::1]:5353'), '[::1]:5353');
  assert.equal(parseDnsServer('::1'), '[::1]:53');
  assert.throws(() => parseDnsServer('dns.example:53'), /--dns/);
  assert.throws(() => parseDnsServer('127.0.0.1:70000'), /--dns/);
});

test('headers, address lists and text parts', () => {
  const raw = Buffer.from('From: "Doe, John" <j@x.example>, k@y.example (Kay)\r\nSubject: a\r\n b\r\nContent-Type: multipart/alternative; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--zz--\r\n');
  const { header, body } = splitMessage(raw);
  const fields = parseHeaders(header);
  assert.deepEqual(fields.map((f) => f.name), ['from', 'subject', 'content-type']);
  assert.equal(fields[1].value, 'a b');
  assert.deepEqual(addresses(fields[0].value), ['j@x.example', 'k@y.example']);
  assert.deepEqual(textParts(fields, body), [{ type: 'text/plain', text: 'hello' }]);
});

test('the report renders within 80 columns', () => {
  const report = buildReport('example.com', [result('spf-present', 'fail', `example.com: ${'a very long finding '.repeat(20)}`), result('ip-dnsbl', 'skip', 'no zone')], 'all');
  const text = renderReport(report, 'mailops audit domain', 80);
  assert.deepEqual(text.split('\n').filter((l) => l.length > 80), []);
  assert.match(text, /FAIL {2}spf-present/);
  assert.equal(report.verdicts.csa, 'fail');
});

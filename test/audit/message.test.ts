// `audit message`: the good newsletter signed with the test key, and broken variants.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsServer } from '../helpers/dns-server.ts';
import { fixtureZone } from './fixtures/zones.ts';
import { GOOD_HEADERS, fixture, sign } from './fixtures/sign.ts';
import { createResolver } from '../../src/audit/resolver.ts';
import { auditMessage } from '../../src/audit/message.ts';
import type { AuditReport, CheckResult } from '../../src/audit/types.ts';

const server = await startDnsServer(fixtureZone());
after(() => server.close());

function audit(message: Buffer, options: { ip?: string | null } = {}): Promise<AuditReport> {
  const ip = options.ip === null ? undefined : options.ip ?? '192.0.2.1';
  return auditMessage({ dns: createResolver({ servers: [server.address] }), message, ip, helo: 'mta1.clean.example' });
}

function only(report: AuditReport, id: string): CheckResult {
  const found = report.results.filter((r) => r.id === id);
  assert.equal(found.length, 1, `expected one ${id}, got ${JSON.stringify(found)}`);
  return found[0];
}

test('the good newsletter passes every profile', async () => {
  const report = await audit(await sign(fixture('good-newsletter.eml')));
  assert.deepEqual(report.results.filter((r) => !['pass', 'info'].includes(r.status)), []);
  assert.deepEqual(report.verdicts, { csa: 'pass', gmail: 'pass', yahoo: 'pass', microsoft: 'pass' });
  assert.equal(report.domain, 'clean.example');
  for (const id of ['dkim-verify', 'dkim-headers', 'dmarc-aligned', 'unsub-header', 'unsub-post', 'unsub-body', 'msg-format', 'tls-outbound', 'fbl', 'csa-header']) {
    assert.equal(only(report, id).status, 'pass', id);
  }
});

test('an unsigned message fails dkim-verify; DMARC still passes through aligned SPF', async () => {
  const report = await audit(fixture('good-newsletter.eml'));
  assert.equal(only(report, 'dkim-verify').status, 'fail');
  assert.equal(only(report, 'dkim-headers').status, 'skip');
  assert.equal(only(report, 'dmarc-aligned').status, 'pass');
  assert.equal(report.verdicts.csa, 'fail');
});

test('without --ip SPF is skipped, and an unsigned message then fails DMARC', async () => {
  const report = await audit(fixture('good-newsletter.eml'), { ip: null });
  assert.equal(only(report, 'spf-pass-ips').status, 'skip');
  assert.equal(only(report, 'dmarc-aligned').status, 'fail');
  assert.match(only(report, 'dmarc-aligned').summary, /SPF not evaluated without --ip/);
});

test('a body changed after signing fails verification', async () => {
  const signed = await sign(fixture('good-newsletter.eml'));
  const tampered = Buffer.from(signed.toString('latin1').replace('three short stories', 'four short stories'), 'latin1');
  assert.equal(only(await audit(tampered), 'dkim-verify').status, 'fail');
});

test('List-Unsubscribe not covered by h=', async () => {
  const report = await audit(await sign(fixture('good-newsletter.eml'), { headerList: GOOD_HEADERS.replace('List-Unsubscribe:', '') }));
  const r = only(report, 'dkim-headers');
  assert.equal(r.status, 'fail');
  assert.match(r.summary, /does not cover list-unsubscribe\b/);
});

test("mailauth's default header list leaves List-Unsubscribe-Post unsigned", async () => {
  const report = await audit(await sign(fixture('good-newsletter.eml'), { headerList: 'From:To:Subject:Date:Message-ID:List-Unsubscribe' }));
  assert.match(only(report, 'dkim-headers').summary, /does not cover list-unsubscribe-post/);
  assert.equal(only(report, 'fbl').status, 'info');
});

test('l= body length tag and rsa-sha1', async () => {
  const ltag = await audit(await sign(fixture('good-newsletter.eml'), { maxBodyLength: 100 }));
  assert.equal(only(ltag, 'dkim-ltag').status, 'warn');
  const sha1 = await audit(await sign(fixture('good-newsletter.eml'), { algorithm: 'rsa-sha1' }));
  assert.equal(only(sha1, 'dkim-sha1').status, 'fail');
});

test('no List-Unsubscribe-Post, mailto-only List-Unsubscribe, no visible link', async () => {
  assert.equal(only(await audit(await sign(fixture('no-unsub-post.eml'))), 'unsub-post').status, 'fail');
  const mailto = only(await audit(await sign(fixture('mailto-only.eml'))), 'unsub-header');
  assert.equal(mailto.status, 'fail');
  assert.match(mailto.summary, /no HTTPS URI/);
  assert.equal(only(await audit(await sign(fixture('no-body-link.eml'))), 'unsub-body').status, 'warn');
});

test('two From headers and a missing Message-ID break the format', async () => {
  const twoFrom = await audit(await sign(fixture('two-from.eml')));
  assert.equal(only(twoFrom, 'msg-format').status, 'fail');
  assert.match(only(twoFrom, 'msg-format').summary, /from x2/);
  assert.equal(twoFrom.verdicts.gmail, 'fail');
  const noId = only(await audit(await sign(fixture('no-message-id.eml'))), 'msg-format');
  assert.equal(noId.status, 'fail');
  assert.match(noId.summary, /no Message-ID/);
});

test('a Received header without TLS', async () => {
  assert.equal(only(await audit(await sign(fixture('no-tls.eml'))), 'tls-outbound').status, 'fail');
});

// `audit domain` against a real DNS server on loopback serving the fixture zones.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsServer } from '../helpers/dns-server.ts';
import { CLEAN_IPS, CLEAN_SELECTORS, IP, SERVFAIL, fixtureZone } from './fixtures/zones.ts';
import { createResolver, DnsUnreachable } from '../../src/audit/resolver.ts';
import { auditDomain } from '../../src/audit/domain.ts';
import type { DomainAuditOptions } from '../../src/audit/domain.ts';
import type { AuditReport, CheckResult } from '../../src/audit/types.ts';

const server = await startDnsServer(fixtureZone(), { servfail: SERVFAIL, delayMs: { 'slow._domainkey.keys.example': 5000 } });
after(() => server.close());

function audit(domain: string, options: Partial<DomainAuditOptions> = {}): Promise<AuditReport> {
  const dns = options.dns ?? createResolver({ servers: [server.address] });
  return auditDomain({ dns, domain, dnsbl: ['bl.test'], ...options });
}

function only(report: AuditReport, id: string, subject?: string): CheckResult {
  const found = report.results.filter((r) => r.id === id && (!subject || r.summary.startsWith(subject)));
  assert.equal(found.length, 1, `expected one ${id}${subject ? ` for ${subject}` : ''}, got ${JSON.stringify(found)}`);
  return found[0];
}

const full = { selectors: CLEAN_SELECTORS, ips: CLEAN_IPS, helo: 'mta1.clean.example' };

test('a clean domain passes everything, each name asked once', async () => {
  const dns = createResolver({ servers: [server.address] });
  const before = server.queries;
  const report = await audit('clean.example', { ...full, dns });
  const bad = report.results.filter((r) => !['pass', 'info'].includes(r.status));
  assert.deepEqual(bad, []);
  assert.deepEqual(report.verdicts, { csa: 'pass', gmail: 'pass', yahoo: 'pass', microsoft: 'pass' });
  assert.equal(report.results.filter((r) => r.id === 'dkim-key').length, 3);
  assert.equal(report.results.filter((r) => r.id === 'ip-fcrdns' && r.status === 'pass').length, 4);
  assert.equal(server.queries - before, dns.queries, 'the server saw each distinct question once');
  assert.match(only(report, 'spf-present').summary, /"v=spf1 ip4:192\.0\.2\.0\/29 include:_spf\.clean\.example -all"/);
});

test('missing inputs are skipped, never passed, and make the verdict incomplete', async () => {
  const report = await audit('clean.example', { dnsbl: [] });
  for (const id of ['dkim-key', 'spf-pass-ips', 'ip-ptr', 'ip-fcrdns', 'helo-fqdn', 'ip-dnsbl']) assert.equal(only(report, id).status, 'skip', id);
  assert.equal(report.verdicts.gmail, 'incomplete');
});

test('two SPF records', async () => {
  const report = await audit('twospf.example');
  assert.equal(only(report, 'spf-multiple').status, 'fail');
  assert.equal(only(report, 'spf-present').status, 'fail');
  assert.equal(report.verdicts.microsoft, 'fail');
});

test('more than 10 DNS-querying terms', async () => {
  const r = only(await audit('lookups.example'), 'spf-lookups');
  assert.equal(r.status, 'fail');
  assert.match(r.summary, /11 DNS-querying terms/);
  assert.equal(r.source, 'RFC 7208 §4.6.4; Microsoft');
});

test('more than 2 void lookups, weak all, ptr, terms run together across strings', async () => {
  assert.match(only(await audit('voids.example'), 'spf-void').summary, /3 void lookups/);
  const weak = await audit('weak.example');
  assert.equal(only(weak, 'spf-all').status, 'warn');
  assert.equal(only(weak, 'spf-ptr').status, 'warn');
  const split = only(await audit('split.example'), 'spf-syntax');
  assert.equal(split.status, 'fail');
  assert.match(split.summary, /run together across strings 1 and 2/);
});

test('DKIM key faults: 1024 and 512 bits, t=y, revoked, sha1-only, missing, SERVFAIL', async () => {
  const report = await audit('keys.example', { selectors: ['weak', 'tiny', 'testing', 'revoked', 'sha1', 'missing', 'broken'] });
  assert.equal(only(report, 'dkim-keysize', 'weak:').status, 'warn');
  assert.match(only(report, 'dkim-keysize', 'weak:').summary, /1024 bits/);
  assert.equal(only(report, 'dkim-keysize', 'tiny:').status, 'fail');
  assert.equal(only(report, 'dkim-testing', 'testing:').status, 'warn');
  assert.equal(only(report, 'dkim-key', 'revoked:').status, 'fail');
  assert.match(only(report, 'dkim-key', 'revoked:').summary, /revoked/);
  assert.equal(only(report, 'dkim-sha1', 'sha1:').status, 'fail');
  assert.equal(only(report, 'dkim-key', 'missing:').status, 'fail');
  assert.equal(only(report, 'dkim-key', 'broken:').status, 'temperror');
  assert.match(only(report, 'dkim-key', 'broken:').summary, /SERVFAIL/);
});

test('a DNS timeout is a temperror result, not a crash', async () => {
  const dns = createResolver({ servers: [server.address], timeoutMs: 200, tries: 1 });
  const report = await audit('keys.example', { dns, selectors: ['slow'] });
  assert.equal(only(report, 'dkim-key').status, 'temperror');
  assert.match(only(report, 'dkim-key').summary, /ETIMEOUT/);
});

test('DMARC: missing, p=none with an unauthorised external rua, authorised rua, two records, bad syntax', async () => {
  const none = await audit('nodmarc.example');
  assert.equal(only(none, 'dmarc-present').status, 'fail');
  assert.equal(none.verdicts.gmail, 'fail');
  const pnone = await audit('pnone.example');
  assert.equal(only(pnone, 'dmarc-policy').status, 'warn');
  assert.equal(only(pnone, 'dmarc-legacy').status, 'info');
  const auth = only(pnone, 'dmarc-rua-auth');
  assert.equal(auth.status, 'warn');
  assert.match(auth.summary, /pnone\.example\._report\._dmarc\.reports\.other\.example/);
  assert.equal(only(await audit('authrua.example'), 'dmarc-rua-auth').status, 'pass');
  assert.equal(only(await audit('twodmarc.example'), 'dmarc-multiple').status, 'fail');
  const bad = only(await audit('baddmarc.example'), 'dmarc-syntax');
  assert.equal(bad.status, 'fail');
  assert.match(bad.summary, /p=block/);
});

test('DMARC falls back to the organisational domain', async () => {
  const r = only(await audit('news.clean.example'), 'dmarc-present');
  assert.equal(r.status, 'pass');
  assert.match(r.summary, /_dmarc\.clean\.example \(organisational domain\)/);
});

test('DMARC SERVFAIL gives temperror results', async () => {
  const report = await audit('servfail.example');
  assert.equal(only(report, 'dmarc-present').status, 'temperror');
});

test('PTR that does not resolve back, generic PTR, missing PTR, listed IP', async () => {
  const report = await audit('clean.example', { ips: [IP.mismatch, IP.generic, IP.noPtr, IP.listed] });
  assert.equal(only(report, 'ip-fcrdns', IP.mismatch).status, 'fail');
  assert.match(only(report, 'ip-fcrdns', IP.mismatch).summary, /198\.51\.100\.8, not back to 198\.51\.100\.7/);
  assert.equal(only(report, 'ip-fcrdns', IP.generic).status, 'pass');
  assert.equal(only(report, 'ip-ptr-generic', IP.generic).status, 'warn');
  assert.equal(only(report, 'ip-ptr', IP.noPtr).status, 'fail');
  const listed = only(report, 'ip-dnsbl', IP.listed);
  assert.equal(listed.status, 'warn');
  assert.match(listed.summary, /bl\.test \(127\.0\.0\.2\): listed for spam/);
  assert.equal(report.verdicts.csa, 'fail');
});

test('IPv6 sending IPs get PTR and FCrDNS through ip6.arpa', async () => {
  const report = await audit('clean.example', { ips: [IP.v6] });
  assert.equal(only(report, 'ip-fcrdns').status, 'pass');
  assert.match(only(report, 'ip-ptr').summary, /mta6\.clean\.example/);
  assert.equal(only(report, 'spf-pass-ips').status, 'fail', 'clean.example has no ip6 mechanism');
});

test('null MX cannot receive bounces', async () => {
  const r = only(await audit('nullmx.example'), 'mx-reachable');
  assert.equal(r.status, 'fail');
  assert.match(r.summary, /null MX/);
});

test('the Return-Path domain is checked for SPF and bounces', async () => {
  const report = await audit('clean.example', { returnPathDomain: 'nullmx.example', ips: ['192.0.2.1'] });
  assert.equal(only(report, 'mx-reachable', 'nullmx.example').status, 'fail');
  assert.equal(only(report, 'spf-pass-ips').status, 'fail');
});

test('no answer from any DNS server is DnsUnreachable (exit 2)', async () => {
  const down = await startDnsServer({});
  const address = down.address;
  await down.close();
  const dns = createResolver({ servers: [address], timeoutMs: 300, tries: 1 });
  await assert.rejects(audit('clean.example', { dns }), (err) => err instanceof DnsUnreachable && /DNS unreachable/.test(err.message));
});

// The real `mailops audit` launcher: JSON shape, exit codes 0/1/2, ink output in a pipe.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCli } from '../helpers/cli.ts';
import { startDnsServer } from '../helpers/dns-server.ts';
import { CLEAN_IPS, CLEAN_SELECTORS, fixtureZone } from './fixtures/zones.ts';
import { fixture, sign } from './fixtures/sign.ts';

const server = await startDnsServer(fixtureZone());
const dir = mkdtempSync(path.join(tmpdir(), 'mailops-audit-'));
after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

const cleanArgs = ['audit', 'domain', 'clean.example', '--dns', server.address, '--dnsbl', 'bl.test', '--helo', 'mta1.clean.example',
  ...CLEAN_SELECTORS.flatMap((s) => ['--selector', s]), ...CLEAN_IPS.flatMap((ip) => ['--ip', ip])];

test('--json prints the stable shape and exits 0 for a clean domain', async () => {
  const res = await runCli([...cleanArgs, '--json']);
  assert.equal(res.code, 0, res.stderr);
  const report = JSON.parse(res.stdout);
  assert.deepEqual(Object.keys(report), ['domain', 'verdicts', 'results']);
  assert.equal(report.domain, 'clean.example');
  assert.deepEqual(report.verdicts, { csa: 'pass', gmail: 'pass', yahoo: 'pass', microsoft: 'pass' });
  for (const r of report.results) assert.deepEqual(Object.keys(r), ['id', 'status', 'summary', 'source']);
  assert.ok(report.results.some((r: { id: string }) => r.id === 'spf-lookups'));
});

test('a failing check exits 1; --profile limits the verdicts', async () => {
  const res = await runCli(['audit', 'domain', 'nodmarc.example', '--dns', server.address, '--json', '--profile', 'gmail']);
  assert.equal(res.code, 1, res.stderr);
  assert.deepEqual(JSON.parse(res.stdout).verdicts, { gmail: 'fail' });
});

test('human output is grouped, fits 80 columns in a pipe, and the process exits', async () => {
  const res = await runCli(cleanArgs);
  assert.equal(res.code, 0, res.stderr);
  for (const heading of ['Verdict', 'SPF', 'DKIM', 'DMARC', 'Sending IPs and HELO', 'Reputation']) assert.match(res.stdout, new RegExp(`^${heading}`, 'm'));
  assert.match(res.stdout, /PASS {2}spf-present/);
  const wide = res.stdout.split('\n').filter((l) => l.length > 80);
  assert.deepEqual(wide, []);
  assert.doesNotMatch(res.stdout, /\x1b\[/, 'no colour codes in a pipe');
});

test('usage errors exit 2 and name the flag', async () => {
  for (const [args, pattern] of [
    [['--ip', '300.1.1.1'], /--ip: not an IP address/],
    [['--dns', 'nope'], /--dns: expected IP or IP:PORT/],
    [['--profile', 'aol'], /--profile: expected one of/],
    [['--timeout', '0'], /--timeout: expected a positive integer/],
  ] as const) {
    const res = await runCli(['audit', 'domain', 'clean.example', ...args]);
    assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`);
    assert.match(res.stderr, pattern);
  }
  const bad = await runCli(['audit', 'domain', 'not_a domain', '--dns', server.address]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /DOMAIN: not a domain name/);
});

test('unreachable DNS exits 2', async () => {
  const down = await startDnsServer({});
  const address = down.address;
  await down.close();
  const res = await runCli(['audit', 'domain', 'clean.example', '--dns', address, '--timeout', '300']);
  assert.equal(res.code, 2, res.stdout);
  assert.match(res.stderr, /DNS unreachable/);
});

test('audit message: the signed newsletter exits 0, a broken one 1, a missing file 2', async () => {
  const good = path.join(dir, 'good.eml');
  writeFileSync(good, await sign(fixture('good-newsletter.eml')));
  const ok = await runCli(['audit', 'message', good, '--dns', server.address, '--ip', '192.0.2.1', '--json']);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.equal(JSON.parse(ok.stdout).verdicts.csa, 'pass');

  const broken = path.join(dir, 'two-from.eml');
  writeFileSync(broken, await sign(fixture('two-from.eml')));
  const res = await runCli(['audit', 'message', broken, '--dns', server.address, '--ip', '192.0.2.1']);
  assert.equal(res.code, 1);
  assert.match(res.stdout, /FAIL {2}msg-format/);

  const missing = await runCli(['audit', 'message', path.join(dir, 'nope.eml'), '--dns', server.address]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /message file .*nope\.eml: ENOENT/);
});

test('--help shows examples', async () => {
  const res = await runCli(['audit', 'domain', '--help']);
  assert.equal(res.code, 0);
  assert.match(res.stdout, /Examples:\n {2}\$ mailops audit domain example\.com/);
});

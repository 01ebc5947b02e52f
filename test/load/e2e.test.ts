// End to end through the real launcher: `mailops load newsletter` → relay → mailops sink, all
// started here on ephemeral loopback ports. Reports must exist, parse, and agree with the sink.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { startSink, type Sink } from '../../src/sink/index.ts';
import { startTestRelay, type TestRelay } from '../helpers/relay.ts';
import { runCli, startCli } from '../helpers/cli.ts';
import type { Report } from '../../src/load/report/model.ts';

let sink: Sink;
let relay: TestRelay;
const reports = mkdtempSync(join(tmpdir(), 'mailops-load-reports-'));

before(async () => {
  // One profile for all domains: accepts at once, refuses local parts starting `unknown` (550 5.1.1).
  sink = await startSink({
    smtp: '127.0.0.1:0', http: '127.0.0.1:0', tls: false, profile: 'lab',
    profiles: { profiles: { lab: { unknownUsers: { share: 0, prefix: 'unknown', reply: '550 5.1.1 <{recipient}>: User unknown' } } } },
  });
  relay = await startTestRelay('http:\n  token: load-test-token\n', { smarthost: `127.0.0.1:${sink.smtpPort}` });
});

after(async () => {
  await relay?.stop();
  await sink?.close();
});

function result(stdout: string): { reportDir: string; passed: boolean; report: Report } {
  const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  for (const line of lines) assert.ok(line.event === 'progress' || line.event === 'result', `only JSON events: ${JSON.stringify(line).slice(0, 80)}`);
  const last = lines.at(-1)!;
  assert.equal(last.event, 'result');
  return last as unknown as { reportDir: string; passed: boolean; report: Report };
}

const sinkUrl = () => `http://127.0.0.1:${sink.httpPort}`;

/** Resolves once the relay's queue is empty, so the next test's sink counts are its own. */
async function relayDrained(timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const queue = (await (await fetch(`${relay.httpUrl}/api/v1/queue`)).json()) as { total: number };
    if (queue.total === 0) return;
    if (Date.now() > deadline) throw new Error(`relay still has ${queue.total} messages queued`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
const tagged = () => Object.values(sink.stats().byLane).reduce((n, l) => n + l.count, 0);

test('smoke scenario through relay to sink: passes, every message accounted for, reports agree with the sink', async () => {
  sink.reset(true);
  const res = await runCli(['load', 'newsletter', '--scenario', 'newsletter-smoke', '--messages', '1500', '--target', `smtp://127.0.0.1:${relay.smtpPort}`,
    '--sink', sinkUrl(), '--report', reports, '--json', '--seed', '5'], { timeoutMs: 100_000 });
  assert.equal(res.code, 0, res.stderr + res.stdout.slice(-2000));
  const { reportDir, passed, report } = result(res.stdout);
  assert.equal(passed, true);
  for (const f of ['report.json', 'report.html', 'summary.md']) assert.ok(existsSync(join(reportDir, f)), f);
  const onDisk = JSON.parse(readFileSync(join(reportDir, 'report.json'), 'utf8')) as Report;
  assert.deepEqual(onDisk.totals, report.totals);

  const stats = sink.stats();
  const refused = stats.repliesByPhase.rcpt['550'] ?? 0;
  assert.equal(report.totals.failed, 0);
  assert.equal(report.totals.accepted, report.totals.attempted);
  assert.equal(report.lanes.bulk.accepted, 1500);
  assert.ok(report.lanes.transactional.accepted > 0 && report.lanes.member.accepted > 0, 'reminders and member mail flowed alongside');
  // The sink's own counts: tagged arrivals + refused unknown users = everything the relay took.
  assert.equal(report.arrival!.arrived, tagged());
  assert.equal(report.arrival!.refused, refused);
  assert.equal(report.arrival!.missing, 0);
  assert.equal(report.arrival!.unexpected, 0);
  assert.equal(tagged() + refused, report.totals.accepted);
  assert.equal(refused, report.totals.unknownRecipients, 'the unknown users the generator made are the ones refused');
  assert.equal(stats.duplicates, 0);
  for (const lane of ['transactional', 'member', 'bulk'] as const) {
    assert.equal(report.lanes[lane].arrival?.count, stats.byLane[lane].count, `${lane} arrivals`);
    assert.ok(report.lanes[lane].arrival!.latencyMs.p99 > 0);
    const overTime = report.arrival!.timeline.reduce((n, p) => n + (p.lanes[lane]?.count ?? 0), 0);
    assert.equal(overTime, stats.byLane[lane].count, `${lane} arrivals over time`);
  }
  // What the sink told the relay, by provider and reply: the unknown users, the address a placeholder.
  assert.deepEqual(report.arrival!.refusals.map((r) => [r.profile, r.phase, r.code, r.enhanced, r.text, r.count]),
    refused ? [['lab', 'rcpt', 550, '5.1.1', '<{recipient}>: User unknown', refused]] : []);
  assert.match(readFileSync(join(reportDir, 'summary.md'), 'utf8'), /PASSED[\s\S]*\*\*missing 0\*\*/);
  writeFileSync(join(reports, 'first.path'), reportDir);
});

test('a failing threshold exits 1 and still writes the report', async () => {
  const res = await runCli(['load', 'newsletter', '--messages', '200', '--target', `smtp://127.0.0.1:${relay.smtpPort}`,
    '--threshold', 'throughput > 1000000', '--report', reports, '--seed', '6'], { timeoutMs: 60_000 });
  assert.equal(res.code, 1, res.stderr);
  assert.match(res.stdout, /FAILED/);
  assert.match(res.stdout, /`throughput > 1000000` \| [\d.]+\/s \| \*\*FAIL\*\*/);
  // missing == 0 has no data without --sink: reported, not failed.
  assert.match(res.stdout, /`missing == 0` \| n\/a \| no data/);
  const dir = /report: (.*)\/report\.html/.exec(res.stdout)![1];
  const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as Report;
  assert.equal(report.passed, false);
  assert.equal(report.thresholds.find((t) => t.metric === 'throughput')!.ok, false);

  const cmp = await runCli(['report', 'compare', readFileSync(join(reports, 'first.path'), 'utf8'), dir]);
  assert.equal(cmp.code, 0, cmp.stderr);
  assert.match(cmp.stdout, /^throughput\s+msgs\/s\s+[\d.]+\s+[\d.]+\s+[+-][\d.]+\s+[+-][\d.]+ %/m);
  assert.match(cmp.stdout, /^bulk send p99\s+ms/m);
  await relayDrained();
});

test('http:// target: autocannon drives POST /api/v1/messages, messages arrive', async () => {
  sink.reset(true);
  const res = await runCli(['load', 'newsletter', '--messages', '300', '--rate', '300', '--connections', '4', '--target', relay.httpUrl,
    '--token', 'load-test-token', '--sink', sinkUrl(), '--no-report', '--json'], { timeoutMs: 60_000 });
  assert.equal(res.code, 0, res.stderr + res.stdout.slice(-1500));
  const { report, reportDir } = result(res.stdout);
  assert.equal(reportDir, null);
  assert.equal(report.engine, 'http');
  assert.equal(report.lanes.bulk.accepted, 300);
  assert.equal(report.totals.failed, 0);
  assert.equal(report.arrival!.missing, 0);
  assert.equal(tagged() + (sink.stats().repliesByPhase.rcpt['550'] ?? 0), report.totals.accepted);
});

test('an unreachable target exits 1 and names it (SMTP and HTTP)', async () => {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  for (const scheme of ['smtp', 'http']) {
    const res = await runCli(['load', 'newsletter', '--messages', '10', '--connections', '2', '--target', `${scheme}://127.0.0.1:${port}`, '--no-report'], { timeoutMs: 30_000 });
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, new RegExp(`mailops load: cannot (connect to|reach) ${scheme}://127\\.0\\.0\\.1:${port}: ECONNREFUSED`));
  }
});

test('Ctrl-C stops sending, finishes what is in flight and still writes the report', async () => {
  const { child, output } = await startCli(['load', 'newsletter', '--messages', '100000', '--rate', '200', '--target', `smtp://127.0.0.1:${relay.smtpPort}`,
    '--report', reports], /\] sending +accepted [1-9]/);
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  child.kill('SIGINT');
  assert.equal(await exited, 0, output());
  const dir = /report: (.*)\/report\.html/.exec(output())![1];
  const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as Report;
  assert.equal(report.interrupted, true);
  assert.ok(report.totals.accepted > 0 && report.totals.accepted < 100_000, `accepted ${report.totals.accepted}`);
  assert.equal(report.totals.failed, 0, 'in-flight transactions completed');
  assert.match(readFileSync(join(dir, 'summary.md'), 'utf8'), /\*\*Interrupted\*\*/);
  await relayDrained();
});

test('usage errors exit 2 and name the flag, or the file, key and value', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mailops-bad-scenario-'));
  const bad = join(dir, 'typo.yaml');
  writeFileSync(bad, 'messages: 10\nconections: 4\n');
  const cases: [string[], RegExp][] = [
    [['--target', 'smtp://127.0.0.1:1', '--rate', 'fast'], /--rate: expected "max" or messages per second > 0, got "fast"/],
    [['--target', 'ftp://127.0.0.1:21'], /--target: expected smtp:\/\/HOST:PORT or http:\/\/HOST:PORT, got "ftp:\/\/127\.0\.0\.1:21"/],
    [[], /--target: required/],
    [['--target', 'smtp://127.0.0.1:1', '--scenario', bad], /typo\.yaml: conections: unknown key/],
    [['--target', 'smtp://127.0.0.1:1', '--threshold', 'p99 < 1s'], /--threshold: unknown metric "p99"/],
    [['--target', 'smtp://127.0.0.1:1', '--size', 'big'], /--size: expected a size such as 4096 or 40KB, got "big"/],
  ];
  for (const [args, pattern] of cases) {
    const res = await runCli(['load', 'newsletter', ...args, '--no-report']);
    assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`);
    assert.match(res.stderr, pattern);
  }
  const cmp = await runCli(['report', 'compare', bad, bad]);
  assert.equal(cmp.code, 2);
  assert.match(cmp.stderr, /typo\.yaml: cannot read a load report/);
});

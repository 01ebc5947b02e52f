// `mailops load inbound` against a relay in inbound mode: the run serves the senders' DNS (SPF,
// DKIM, DMARC, PTR, the DNSBL zone) that the relay's checks ask, its clients bind their own
// 127.x addresses, a real clamd judges the attachments, and a real SMTP receiver is the mailbox
// server behind the MX. The report must say, per class, what the MX did.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { ConfigError } from '../../src/config/errors.ts';
import type { InboundClassReport, InboundReport } from '../../src/load/inbound/report.ts';
import { parseInboundScenario } from '../../src/load/inbound/scenario.ts';
import { readScenarioFile } from '../../src/load/scenario/load.ts';
import { parseScenario } from '../../src/load/scenario/parse.ts';
import { startClamd, type TestClamd } from '../helpers/clamd.ts';
import { runCli } from '../helpers/cli.ts';
import { freePort } from '../helpers/ports.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { startTestRelay, type TestRelay } from '../helpers/relay.ts';

const GREYLIST_DELAY_MS = 1000;

let clamd: TestClamd;
let mailbox: Receiver;
let relay: TestRelay;
let dnsPort: number;

before(async () => {
  [clamd, mailbox, dnsPort] = await Promise.all([startClamd(), startReceiver(), freePort()]);
  relay = await startTestRelay(`smtp: { hostname: mx1.mx.test }
delivery: { dnsServers: ["127.0.0.1:${dnsPort}"], idleTimeout: 200ms }
inbound:
  listen: 127.0.0.1:0
  domains: [mx.test]
  deliver: [{ domain: mx.test, to: "${mailbox.address}" }]
  recipients: ["@mx.test"]
  greeting: { delay: 300ms }
  greylist: { delay: ${GREYLIST_DELAY_MS}ms }
  dnsbl: { sites: ["dnsbl.mailops.test*2"] }
  scan: { clamd: { address: "${clamd.address}" } }
`);
});

after(async () => {
  await relay?.stop();
  await Promise.all([mailbox?.close(), clamd?.stop()]);
});

function scenarioFile(yaml: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'mailops-inbound-')), 'inbound.yaml');
  writeFileSync(file, yaml);
  return file;
}

test('a tiny inbound scenario: legitimate mail arrives after greylisting, every other class is refused where it should be', async () => {
  const file = scenarioFile(`type: inbound
messages: 36
rate: 100
connections: 12
mix: { legitimate: 3, pregreet: 1, noretry: 1, listed: 1, forgery: 1, virus: 1 }
recipients: [postmaster@mx.test]
retry: [2s, 4s]
commandTimeout: 20s
timeout: 60s
`);
  const run = await runCli(['load', 'inbound', '--scenario', file, '--target', `smtp://127.0.0.1:${relay.inbound!.addresses[0].port}`,
    '--dns', `127.0.0.1:${dnsPort}`, '--json', '--report', join(dirname(file), 'reports'), '--seed', '3'], { timeoutMs: 90_000 });
  const last = run.stdout.trim().split('\n').at(-1) ?? '';
  assert.equal(run.code, 0, `${run.stderr}\n${last}`);
  const { report, reportDir } = JSON.parse(last) as { event: string; report: InboundReport; reportDir: string };
  assert.deepEqual(JSON.parse(readFileSync(join(reportDir, 'report.json'), 'utf8')), report);
  assert.match(readFileSync(join(reportDir, 'summary.md'), 'utf8'), /^\| legitimate \| \d+ \| \d+ \| - \|/m);
  const byClass = new Map(report.classes.map((c) => [c.class, c]));
  const show = (c: InboundClassReport | undefined) => JSON.stringify(c, null, 1);
  const keys = (record: Record<string, number>) => Object.keys(record).sort();

  assert.equal(report.classes.reduce((sum, c) => sum + c.messages, 0), 36);
  for (const c of report.classes) assert.equal(c.unfinished, 0, show(c));
  assert.equal(report.legitimateLost, 0);
  assert.equal(report.unwantedAccepted, 0, JSON.stringify(report.classes, null, 1));

  // legitimate: all accepted; the first message of each MTA paid one greylisting round (450 at RCPT, then the retry)
  const legitimate = byClass.get('legitimate')!;
  assert.ok(legitimate.messages > 0 && legitimate.accepted === legitimate.messages, show(legitimate));
  assert.deepEqual(keys(legitimate.retriedAfter), ['rcpt 450 4.2.0'], show(legitimate));
  assert.ok(legitimate.delay && legitimate.delay.max >= GREYLIST_DELAY_MS, show(legitimate));
  // pregreet: refused before the greeting; noretry: greylisted once, never back
  // (a whole command line before the greeting may get smtp-server's own 421 before the screen's 554)
  const pregreet = byClass.get('pregreet')!;
  const pregreetEnds = [...keys(pregreet.refused), ...keys(pregreet.gaveUp)];
  assert.ok(pregreetEnds.length > 0 && pregreetEnds.every((k) => /^greeting (554 5\.5\.1|421)/.test(k)), show(pregreet));
  assert.deepEqual(keys(byClass.get('noretry')!.gaveUp), ['rcpt 450 4.2.0'], show(byClass.get('noretry')));
  // listed: refused at the greeting, by the DNSBL
  const listed = byClass.get('listed')!;
  assert.ok(keys(listed.refused).length === 1 && keys(listed.refused)[0].startsWith('greeting 5'), show(listed));
  assert.match(Object.values(listed.replies).join('\n'), /dnsbl\.mailops\.test/, show(listed));
  // forgery: through greylisting, then refused on DMARC at the end of DATA
  const forgery = byClass.get('forgery')!;
  assert.deepEqual(keys(forgery.refused), ['end-of-data 550 5.7.1'], show(forgery));
  assert.match(forgery.replies['end-of-data 550 5.7.1'], /DMARC/i, show(forgery));
  // virus: refused by clamd naming the EICAR signature
  const virus = byClass.get('virus')!;
  assert.deepEqual(keys(virus.refused), ['end-of-data 554 5.7.1'], show(virus));
  assert.match(virus.replies['end-of-data 554 5.7.1'], /Eicar-Signature/, show(virus));
  for (const cls of ['pregreet', 'noretry', 'listed', 'forgery', 'virus'] as const) assert.ok(byClass.get(cls)!.messages > 0, `no ${cls} message in the mix`);

  // what the mailbox server got: the legitimate messages, nothing else
  const arrived = await mailbox.waitFor(legitimate.accepted, 30_000);
  assert.equal(arrived.length, legitimate.accepted);
  assert.ok(arrived.every((a) => /^X-Mailops-Inbound-Class: legitimate\r?$/m.test(a.text)));
});

test('inbound scenarios: bad values named by key path; each command refuses the other\'s scenarios', () => {
  assert.throws(() => parseInboundScenario({ type: 'inbound', mix: { legitimate: 1, spam: 2 } }, 'x.yaml'), /x\.yaml: mix\.spam: unknown key \(known: legitimate, pregreet, noretry, listed, forgery, virus\)/);
  assert.throws(() => parseInboundScenario({ type: 'inbound', retry: ['5m', 'soon'] }, 'x.yaml'), /x\.yaml: retry\[1\]: expected a duration above zero, such as 5m, got "soon"/);
  assert.throws(() => parseInboundScenario({ type: 'inbound', recipients: ['nobody'] }, 'x.yaml'), /x\.yaml: recipients\[0\]: expected an address/);
  assert.throws(() => parseInboundScenario({ messages: 5 }, 'x.yaml'), (err: Error) => err instanceof ConfigError && /x\.yaml: type: expected "inbound"/.test(err.message));
  assert.throws(() => parseScenario({ type: 'inbound' }, 'x.yaml'), /x\.yaml: type: an inbound scenario: run it with mailops load inbound/);
  const defaults = parseInboundScenario({ type: 'inbound' }, 'x.yaml');
  assert.deepEqual(defaults.mix, { legitimate: 50, pregreet: 10, noretry: 10, listed: 10, forgery: 10, virus: 10 });
  const { path, doc } = readScenarioFile('inbound-smoke');
  assert.equal(parseInboundScenario(doc, path).messages, 200);
});

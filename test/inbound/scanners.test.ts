// The content scanners against the real daemons: clamd (Debian's clamav-daemon) on a signature
// database made for the test that finds the EICAR test file, and rspamd (Debian's package, its
// own rules) answering /checkv2. Both are started once for the file, on loopback ports.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { ClamdScanner } from '../../src/relay/inbound/scanners/clamd.ts';
import { buildScanners, ScannerUnavailableError } from '../../src/relay/inbound/scanners/index.ts';
import { RspamdScanner, verdictOf } from '../../src/relay/inbound/scanners/rspamd.ts';
import type { ScanMeta, ScanVerdict } from '../../src/relay/inbound/scan.ts';
import { eicarTestFile as eicar } from '../../src/load/inbound/world.ts';
import { EICAR_SIGNATURE, startClamd, type TestClamd } from '../helpers/clamd.ts';
import { freePort } from '../helpers/ports.ts';
import { GTUBE, startRspamd, type TestRspamd } from '../helpers/rspamd.ts';
import { until } from '../helpers/wait.ts';

/** The client as the MX saw it: its SPF-allowed address, its forward-confirmed name (see the rspamd DNS zone below). */
const meta: ScanMeta = { client: '192.0.2.10', hostname: 'mail.sender.example', helo: 'mail.sender.example', sender: 'alice@sender.example', recipients: ['bob@mx.example'] };

/** What rspamd's DNS knows: sender.example with its SPF record, and its mail server's forward and reverse names. */
const senderZone = {
  'sender.example': { MX: [{ priority: 10, exchange: 'mail.sender.example' }], A: ['192.0.2.10'], TXT: ['v=spf1 ip4:192.0.2.10 -all'] },
  'mail.sender.example': { A: ['192.0.2.10'] },
  'ptr:192.0.2.10': { PTR: ['mail.sender.example'] },
};

/** A plain text message; `attachment` adds a multipart/mixed part carrying those bytes in base64. */
function message(body: string, options: { from?: string; to?: string; subject?: string; attachment?: string } = {}): Buffer {
  const head = [
    `From: ${options.from ?? 'Alice <alice@sender.example>'}`,
    `To: ${options.to ?? 'Bob <bob@mx.example>'}`,
    `Subject: ${options.subject ?? 'Minutes of the Tuesday meeting'}`,
    'Date: Mon, 30 Nov 2026 12:00:00 +0000',
    `Message-ID: <${Math.random().toString(36).slice(2)}@sender.example>`,
    'MIME-Version: 1.0',
  ];
  if (!options.attachment) return Buffer.from([...head, 'Content-Type: text/plain; charset=us-ascii', '', body, ''].join('\r\n'));
  const boundary = 'b-1';
  return Buffer.from([...head, `Content-Type: multipart/mixed; boundary="${boundary}"`, '',
    `--${boundary}`, 'Content-Type: text/plain; charset=us-ascii', '', body, '',
    `--${boundary}`, 'Content-Type: application/octet-stream', 'Content-Disposition: attachment; filename="report.com"',
    'Content-Transfer-Encoding: base64', '', Buffer.from(options.attachment).toString('base64'), '',
    `--${boundary}--`, ''].join('\r\n'));
}

const normalText = 'Hello Bob,\r\n\r\nthe minutes of Tuesday are below. We agreed to move the review to Thursday.\r\n\r\nAlice';

/** Our connections to a loopback port that are open right now (client side, from /proc/net/tcp). */
function connectionsTo(port: number): number {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)
    .filter((line) => {
      const [, , remote, state] = line.trim().split(/\s+/);
      return remote?.endsWith(`:${hex}`) && state === '01';
    }).length;
}

function headerOf(verdict: ScanVerdict, name: string): string | undefined {
  assert.equal(verdict.action, 'accept', JSON.stringify(verdict));
  if (verdict.action !== 'accept') return undefined;
  const line = verdict.headers.find((h) => h.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line?.slice(name.length + 1).trim();
}

let clamd: TestClamd;
let rspamd: TestRspamd;

before(async () => {
  // StreamMaxLength 1M: small enough for a test to reach it
  const [startedClamd, startedRspamd] = await Promise.allSettled([startClamd({ streamMaxLength: '1M' }), startRspamd(senderZone)]);
  // whichever started is kept for after() to stop, even when the other failed (a daemon left
  // running would keep this file's process, and the whole run, from ever ending)
  if (startedClamd.status === 'fulfilled') clamd = startedClamd.value;
  if (startedRspamd.status === 'fulfilled') rspamd = startedRspamd.value;
  for (const started of [startedClamd, startedRspamd]) if (started.status === 'rejected') throw started.reason;
  process.stderr.write(`# rspamd answered /ping ${rspamd.startMs} ms after it was started\n`);
});

after(async () => {
  await Promise.all([clamd?.stop(), rspamd?.stop()]);
});

describe('clamd', () => {
  const config = () => ({ address: { host: '127.0.0.1', port: clamd.port }, timeout: 10_000, maxSize: 25 * 1024 * 1024 });

  test('a message carrying the EICAR test file is refused with 554 5.7.1 naming the signature', async () => {
    const scanner = new ClamdScanner(config());
    try {
      const verdict = await scanner.scan(message('The report is attached.', { attachment: eicar() }));
      assert.equal(verdict.action, 'reject', `${JSON.stringify(verdict)}\n${clamd.log()}`);
      if (verdict.action !== 'reject') return;
      assert.equal(verdict.reply[0], 554);
      assert.equal(verdict.reply[1], '5.7.1');
      assert.match(verdict.reply[2], new RegExp(`virus found \\(${EICAR_SIGNATURE}(\\.UNOFFICIAL)?\\)`));
    } finally {
      scanner.close();
    }
  });

  test('a clean message is accepted with X-Virus-Scanned, also when it spans many INSTREAM chunks', async () => {
    const scanner = new ClamdScanner(config());
    try {
      assert.equal(headerOf(await scanner.scan(message(normalText)), 'X-Virus-Scanned'), 'clamd; clean');
      // 300 kB: five chunks of 64 kB; the attachment is harmless bytes
      const large = message(normalText, { attachment: 'harmless line of an archive\n'.repeat(11_000) });
      assert.ok(large.length > 5 * 64 * 1024);
      assert.equal(headerOf(await scanner.scan(large), 'X-Virus-Scanned'), 'clamd; clean');
    } finally {
      scanner.close();
    }
  });

  test('scans reuse one IDSESSION connection, through clean and infected messages alike', async () => {
    // the earlier tests' sessions are ended: wait until their connections are gone
    await until('no connection to clamd', () => connectionsTo(clamd.port) === 0);
    const scanner = new ClamdScanner(config());
    try {
      const actions: string[] = [];
      for (let i = 0; i < 20; i++) {
        const verdict = await scanner.scan(i % 5 === 4 ? message('see attachment', { attachment: eicar() }) : message(normalText));
        actions.push(verdict.action);
      }
      assert.deepEqual(actions, Array.from({ length: 20 }, (_, i) => (i % 5 === 4 ? 'reject' : 'accept')));
      assert.equal(connectionsTo(clamd.port), 1, 'twenty sequential scans, one kept connection');
    } finally {
      scanner.close();
    }
  });

  test('a kept session that clamd closed (a restart) is replaced: the next scan still gets its answer', async () => {
    const scanner = new ClamdScanner(config());
    try {
      assert.equal((await scanner.scan(message(normalText))).action, 'accept');
      await clamd.kill();
      await clamd.restart();
      const verdict = await scanner.scan(message('again', { attachment: eicar() }));
      assert.equal(verdict.action, 'reject');
    } finally {
      scanner.close();
    }
  });

  test('a stream past clamd\'s StreamMaxLength is an error naming the setting to fix', async () => {
    const scanner = new ClamdScanner(config());
    try {
      const big = message(normalText, { attachment: 'x'.repeat(1_200_000) });
      await assert.rejects(scanner.scan(big), (err: Error) => {
        assert.ok(err instanceof ScannerUnavailableError, String(err));
        assert.match(err.message, new RegExp(`^clamd at 127\\.0\\.0\\.1:${clamd.port}: refused the stream: .*size limit exceeded.*StreamMaxLength is below inbound\\.scan\\.clamd\\.maxSize`));
        return true;
      });
      // the scanner goes on with a fresh session
      assert.equal((await scanner.scan(message(normalText))).action, 'accept');
    } finally {
      scanner.close();
    }
  });

  test('a message above maxSize is accepted unscanned, with a header saying why, and clamd is not asked', async () => {
    // nothing listens on this port: a scan that tried clamd would throw
    const scanner = new ClamdScanner({ address: { host: '127.0.0.1', port: await freePort() }, timeout: 5_000, maxSize: 1000 });
    const verdict = await scanner.scan(message('x'.repeat(2000)));
    assert.match(headerOf(verdict, 'X-Virus-Scanned') ?? '', /^no, \d+ bytes is above clamd's limit of 1000 \(inbound\.scan\.clamd\.maxSize\)$/);
    scanner.close();
  });

  test('clamd hung: the scan gives up at inbound.scan.clamd.timeout with an error saying so', async () => {
    const scanner = new ClamdScanner({ ...config(), timeout: 500 });
    clamd.pause();
    try {
      await assert.rejects(scanner.scan(message(normalText)), (err: Error) => {
        assert.ok(err instanceof ScannerUnavailableError, String(err));
        assert.equal(err.message, `clamd at 127.0.0.1:${clamd.port}: no answer within 500ms`);
        return true;
      });
    } finally {
      clamd.resume();
      scanner.close();
    }
    // and the daemon answers again once it runs
    const fresh = new ClamdScanner(config());
    assert.equal((await fresh.scan(message(normalText))).action, 'accept');
    fresh.close();
  });

  test('clamd down: the scan throws an error naming clamd, its address and the cause', async () => {
    const port = await freePort();
    const scanner = new ClamdScanner({ address: { host: '127.0.0.1', port }, timeout: 5_000, maxSize: 1 << 20 });
    await assert.rejects(scanner.scan(message(normalText)), (err: Error) => {
      assert.ok(err instanceof ScannerUnavailableError);
      assert.equal(err.message, `clamd at 127.0.0.1:${port}: cannot scan (ECONNREFUSED)`);
      return true;
    });
    scanner.close();
  });
});

describe('rspamd', () => {
  const config = () => ({ url: rspamd.url, timeout: 20_000 });

  test('a GTUBE message is refused with 550 5.7.1', async () => {
    const scanner = new RspamdScanner(config());
    try {
      const verdict = await scanner.scan(message(`Buy now.\r\n${GTUBE.reject}\r\n`), meta);
      assert.equal(verdict.action, 'reject', `${JSON.stringify(verdict)}\n${rspamd.log()}`);
      if (verdict.action !== 'reject') return;
      assert.deepEqual(verdict.reply.slice(0, 2), [550, '5.7.1']);
    } finally {
      scanner.close();
    }
  });

  test('a normal message is accepted with the score headers', async () => {
    const scanner = new RspamdScanner(config());
    try {
      const verdict = await scanner.scan(message(normalText), meta);
      const score = headerOf(verdict, 'X-Spam-Score');
      assert.match(score ?? '', /^-?\d+\.\d\d$/);
      assert.match(headerOf(verdict, 'X-Spam-Status') ?? '', new RegExp(`^No, score=${score!.replace('.', '\\.')} required=\\d+\\.\\d\\d action=no action$`));
      assert.match(headerOf(verdict, 'X-Spamd-Result') ?? '', /^default: False \[/);
      assert.equal(headerOf(verdict, 'X-Spam'), undefined);
    } finally {
      scanner.close();
    }
  });

  test('rspamd\'s "add header" and "rewrite subject" actions: accepted, marked X-Spam: Yes', async () => {
    const scanner = new RspamdScanner(config());
    try {
      for (const [pattern, action] of [[GTUBE.addHeader, 'add header'], [GTUBE.rewriteSubject, 'rewrite subject']]) {
        const verdict = await scanner.scan(message(`Cheap watches.\r\n${pattern}\r\n`), meta);
        assert.equal(headerOf(verdict, 'X-Spam'), 'Yes', `${JSON.stringify(verdict)}`);
        assert.match(headerOf(verdict, 'X-Spam-Status') ?? '', new RegExp(`^Yes, score=.* action=${action}$`));
      }
    } finally {
      scanner.close();
    }
  });

  test('the envelope reaches rspamd: its rules see the client address and name, the sender and every recipient', async () => {
    const scanner = new RspamdScanner(config());
    const symbols = async (m: ScanMeta, to?: string) => headerOf(await scanner.scan(message(normalText, { to }), m), 'X-Spamd-Result') ?? '';
    try {
      // IP: SPF of sender.example allows 192.0.2.10 only
      assert.match(await symbols(meta), /R_SPF_ALLOW/);
      assert.match(await symbols({ ...meta, client: '192.0.2.99', hostname: undefined }), /R_SPF_FAIL/);
      // Hostname: without one rspamd counts the client as having no reverse name
      assert.doesNotMatch(await symbols(meta), /HFILTER_HOSTNAME_UNKNOWN/);
      assert.match(await symbols({ ...meta, hostname: undefined }), /HFILTER_HOSTNAME_UNKNOWN/);
      // From: the envelope sender against the From: header field
      assert.match(await symbols(meta), /FROM_EQ_ENVFROM/);
      assert.match(await symbols({ ...meta, sender: 'bounces@other.example' }), /FROM_NEQ_ENVFROM/);
      // Rcpt, once per recipient: To: names Bob and Carol, the envelope one or both
      const both = 'Bob <bob@mx.example>, Carol <carol@mx.example>';
      assert.match(await symbols(meta, both), /TO_MATCH_ENVRCPT_SOME/);
      assert.match(await symbols({ ...meta, recipients: ['bob@mx.example', 'carol@mx.example'] }, both), /TO_MATCH_ENVRCPT_ALL/);
      assert.match(await symbols({ ...meta, recipients: ['carol@mx.example', 'bob@mx.example'] }, both), /TO_MATCH_ENVRCPT_ALL/);
    } finally {
      scanner.close();
    }
  });

  test('rspamd 3.4 closes each connection after its answer: the scanner leaves none behind', async () => {
    await until('no connection to rspamd', () => connectionsTo(rspamd.port) === 0);
    const scanner = new RspamdScanner(config());
    try {
      const verdicts = await Promise.all(Array.from({ length: 10 }, () => scanner.scan(message(normalText), meta)));
      assert.deepEqual(verdicts.map((v) => v.action), Array(10).fill('accept'));
      for (let i = 0; i < 10; i++) assert.equal((await scanner.scan(message(normalText), meta)).action, 'accept');
      await until('the connections to rspamd closed', () => connectionsTo(rspamd.port) === 0);
    } finally {
      scanner.close();
    }
  });

  test('rspamd down: the scan throws an error naming rspamd, its URL and the cause', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const scanner = new RspamdScanner({ url, timeout: 5_000 });
    await assert.rejects(scanner.scan(message(normalText), meta), (err: Error) => {
      assert.ok(err instanceof ScannerUnavailableError);
      assert.equal(err.message, `rspamd at ${url}: cannot scan (ECONNREFUSED)`);
      return true;
    });
    scanner.close();
  });
});

describe('rspamd actions the test patterns cannot ask for', () => {
  const answer = (action: string, score = 5) => ({ action, score, required_score: 15, symbols: { BAYES_SPAM: { name: 'BAYES_SPAM', score } } });

  test('soft reject and greylist defer with 451 4.7.1; rewrite subject is marked like add header', () => {
    for (const action of ['soft reject', 'greylist']) {
      assert.deepEqual(verdictOf(answer(action), undefined), { action: 'tempfail', reply: [451, '4.7.1', 'Message deferred by the spam filter, try again later'] });
    }
    const verdict = verdictOf(answer('rewrite subject'), undefined);
    assert.equal(verdict.action, 'accept');
    assert.ok(verdict.action === 'accept' && verdict.headers.includes('X-Spam: Yes'));
  });

  test('rejectScore refuses from that score on, whatever the action', () => {
    assert.equal(verdictOf(answer('no action', 8), 8).action, 'reject');
    assert.equal(verdictOf(answer('no action', 7.99), 8).action, 'accept');
  });

  test('an action this relay does not know is an error, not an accept', () => {
    assert.throws(() => verdictOf(answer('quarantine'), undefined), /unknown|does not know/);
  });
});

describe('buildScanners', () => {
  test('clamd first, then rspamd; none configured, none built', () => {
    const scanners = buildScanners({ onError: 'tempfail', rspamd: { url: 'http://127.0.0.1:1', timeout: 1000 }, clamd: { address: { host: '127.0.0.1', port: 1 }, timeout: 1000, maxSize: 1000 } });
    assert.deepEqual(scanners.map((s) => s.name), ['clamd', 'rspamd']);
    scanners.forEach((s) => s.close());
    assert.deepEqual(buildScanners({ onError: 'pass' }), []);
  });
});

// The content scanners' verdicts at end of DATA, with fake ContentScanners on a real MX session
// (the rspamd and clamd clients are tested against the real daemons in test/inbound/scanners*):
// a reject is the reply to DATA and nothing is delivered; accepted mail carries the scanners'
// headers; a scanner that throws follows inbound.scan.onError: tempfail (451, nothing accepted)
// or pass (accepted with a header naming the scanner that did not scan it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ContentScanner, ScanMeta, ScanVerdict } from '../../src/relay/inbound/scan.ts';
import { LOCAL, message, session, startMx, transaction } from './helpers.ts';

class FakeScanner implements ContentScanner {
  readonly name: string;
  readonly seen: { message: Buffer; meta: ScanMeta }[] = [];
  private readonly judge: (message: Buffer) => ScanVerdict;
  constructor(name: string, judge: (message: Buffer) => ScanVerdict) {
    this.name = name;
    this.judge = judge;
  }
  async scan(message: Buffer, meta: ScanMeta): Promise<ScanVerdict> {
    this.seen.push({ message, meta });
    return this.judge(message);
  }
}

const down = (): ContentScanner => ({ name: 'fakespamd', scan: async () => { throw new Error('fakespamd at 127.0.0.1:9: ECONNREFUSED'); } });

test('a scanner\'s reject is the reply to DATA (nothing delivered); accepted mail carries its headers', async (t) => {
  const scanner = new FakeScanner('fakespamd', (m) => (m.includes('VIAGRA')
    ? { action: 'reject', reply: [550, '5.7.1', 'Spam message rejected'] }
    : { action: 'accept', headers: ['X-Spam-Score: 0.5', 'X-Spam-Status: No'] }));
  const mx = await startMx({ node: { inbound: { scanners: [scanner] } } });
  t.after(() => mx.stop());
  const client = await session(mx.port, '127.0.0.1', 'mta.sender.test');
  t.after(() => client.close());
  const spam = await transaction(client, 'spammer@sender.test', [`alice@${LOCAL}`], message('spammer@sender.test', `alice@${LOCAL}`, 'cheap VIAGRA'));
  assert.match(spam.at(-1)!, /^550 5\.7\.1 Spam message rejected/);
  const ham = await transaction(client, 'friend@sender.test', [`alice@${LOCAL}`, `bob@${LOCAL}`], message('friend@sender.test', `alice@${LOCAL}`, 'lunch'));
  assert.match(ham.at(-1)!, /^250 /);
  const [arrival] = await mx.mailbox.waitFor(1);
  assert.match(arrival.text, /^X-Spam-Score: 0\.5\r\nX-Spam-Status: No\r\n/m);
  assert.equal(mx.mailbox.attempts.length, 1, 'the rejected message was never accepted, so never delivered or dropped');
  // 127.0.0.1 has no forward-confirmed name in the test's DNS
  assert.deepEqual(scanner.seen[1].meta, { client: '127.0.0.1', helo: 'mta.sender.test', hostname: undefined, sender: 'friend@sender.test', recipients: [`alice@${LOCAL}`, `bob@${LOCAL}`] });
  assert.equal(mx.relay.inbound!.stats.refused.scanReject, 1);
});

test('scanner down, onError: tempfail → 451 at DATA and nothing accepted', async (t) => {
  const mx = await startMx({ inbound: { scan: { onError: 'tempfail' } }, node: { inbound: { scanners: [down()] } } });
  t.after(() => mx.stop());
  const client = await session(mx.port);
  t.after(() => client.close());
  const replies = await transaction(client, 'friend@sender.test', [`alice@${LOCAL}`], message('friend@sender.test', `alice@${LOCAL}`));
  assert.match(replies.at(-1)!, /^451 4\.3\.0 Content scanning \(fakespamd\) unavailable/);
  assert.equal(mx.relay.spool.messages, 0);
  const logged = mx.relay.events().find((e) => e.event === 'inbound-scanner-unavailable');
  assert.equal(logged?.scanner, 'fakespamd');
  assert.equal(mx.relay.inbound!.stats.refused.scanTempfail, 1);
});

test('scanner down, onError: pass → accepted with a header saying it was not scanned, the other scanners still decide', async (t) => {
  const clamd = new FakeScanner('fakeclamd', () => ({ action: 'accept', headers: ['X-Virus-Scanned: fakeclamd'] }));
  const mx = await startMx({ inbound: { scan: { onError: 'pass' } }, node: { inbound: { scanners: [clamd, down()] } } });
  t.after(() => mx.stop());
  const client = await session(mx.port);
  t.after(() => client.close());
  const replies = await transaction(client, 'friend@sender.test', [`alice@${LOCAL}`], message('friend@sender.test', `alice@${LOCAL}`));
  assert.match(replies.at(-1)!, /^250 /);
  const [arrival] = await mx.mailbox.waitFor(1);
  assert.match(arrival.text, /^X-Virus-Scanned: fakeclamd\r\nX-Mailops-Not-Scanned: fakespamd; fakespamd at 127\.0\.0\.1:9: ECONNREFUSED\r\n/m);
  assert.equal(mx.relay.inbound!.stats.unscanned, 1);
});

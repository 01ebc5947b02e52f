// The inbound MX end to end on real sockets and real DNS (a loopback DNS server): local domains
// only, recipients validated before the 250 to RCPT (static list and callout), delivery through
// the spool's inbound lane to the mailbox server, the relay listener unchanged beside it, and the
// SPF/DKIM/DMARC verdicts (DMARC p=reject refused at DATA, p=quarantine tagged, the
// Authentication-Results field as mailauth itself computes it, forged ones removed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as dnsPromises } from 'node:dns';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { authenticate } from 'mailauth';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import type { DKIMSignOptions } from 'mailauth';
import { RawSmtp } from '../helpers/smtp-client.ts';
import { until } from '../helpers/wait.ts';
import { HOSTNAME, LOCAL, message, session, startMx, transaction } from './helpers.ts';

test('the MX takes mail for its own domains only, refuses unknown recipients at RCPT, and delivers through the inbound lane', async (t) => {
  const mx = await startMx({ inbound: { recipients: [`alice@${LOCAL}`] } });
  t.after(() => mx.stop());
  // 127.0.0.1 is in the default relayNetworks: that gives no relaying through the MX
  const client = await RawSmtp.open(mx.port);
  t.after(() => client.close());
  assert.match(await client.reply(), /^220 /);
  const ehlo = await client.command('EHLO client.sender.test');
  assert.match(ehlo, /STARTTLS/);
  assert.doesNotMatch(ehlo, /AUTH/);
  assert.match(await client.command('MAIL FROM:<someone@sender.test>'), /^250 /);
  assert.match(await client.command('RCPT TO:<bob@elsewhere.test>'), /^550 5\.7\.1 Relaying denied/);
  assert.match(await client.command(`RCPT TO:<bob%elsewhere.test@${LOCAL}>`), /^553 5\.1\.3 /);
  assert.match(await client.command(`RCPT TO:<nobody@${LOCAL}>`), /^550 5\.1\.1 <nobody@mx\.test>: Recipient address rejected/);
  assert.match(await client.command('RCPT TO:<Alice@MX.test>'), /^250 /);
  assert.match(await client.command('DATA'), /^354 /);
  client.send(`${message('someone@sender.test', `alice@${LOCAL}`)}.\r\n`);
  assert.match(await client.reply(), /^250 2\.0\.0 Ok: queued as [0-9A-F]{8}$/);

  const [arrival] = await mx.mailbox.waitFor(1);
  assert.deepEqual(arrival.to, ['Alice@MX.test']);
  assert.equal(arrival.from, 'someone@sender.test');
  const received = mx.relay.events().find((e) => e.event === 'received');
  assert.equal(received?.lane, 'inbound');
  await until('the delivered message to leave the spool', () => mx.relay.spool.messages === 0);
  // nothing was accepted for the unknown address, so nothing can bounce to the (maybe forged) sender
  assert.equal(mx.mailbox.attempts.length, 1);
  assert.deepEqual({ relay: mx.relay.inbound!.stats.refused.relay, unknown: mx.relay.inbound!.stats.refused.unknownRecipient }, { relay: 1, unknown: 1 });
});

test('open-relay checks hold on both listeners: the relay listener still relays for nobody outside relayNetworks, local domains included', async (t) => {
  const mx = await startMx({ smtp: { relayNetworks: ['192.0.2.0/24'] } });
  t.after(() => mx.stop());
  const relayClient = await RawSmtp.open(mx.relay.smtpPort);
  t.after(() => relayClient.close());
  await relayClient.reply();
  await relayClient.command('EHLO client.sender.test');
  await relayClient.command('MAIL FROM:<someone@sender.test>');
  assert.match(await relayClient.command(`RCPT TO:<alice@${LOCAL}>`), /^550 5\.7\.1 Relaying denied/);
  assert.match(await relayClient.command('RCPT TO:<bob@elsewhere.test>'), /^550 5\.7\.1 Relaying denied/);

  const mxClient = await session(mx.port);
  t.after(() => mxClient.close());
  await mxClient.command('MAIL FROM:<someone@sender.test>');
  assert.match(await mxClient.command('RCPT TO:<bob@elsewhere.test>'), /^550 5\.7\.1 Relaying denied/);
  assert.match(await mxClient.command(`RCPT TO:<alice@${LOCAL}>`), /^250 /);
});

test('callout: the mailbox server is asked once per address; unknown is 550 5.1.1 at RCPT, a 4xx there is 450 4.1.1', async (t) => {
  const mx = await startMx({
    inbound: { verify: 'callout', recipients: [] },
    mailbox: { rcpt: (address) => (address.startsWith('ghost') ? [550, '5.1.1 No such user'] : address.startsWith('busy') ? [451, '4.3.0 Try later'] : undefined) },
  });
  t.after(() => mx.stop());
  const client = await session(mx.port);
  t.after(() => client.close());
  await client.command('MAIL FROM:<someone@sender.test>');
  assert.match(await client.command(`RCPT TO:<ghost@${LOCAL}>`), /^550 5\.1\.1 <ghost@mx\.test>/);
  const probes = mx.mailbox.sessions.length;
  assert.equal(probes, 1);
  assert.match(await client.command(`RCPT TO:<GHOST@${LOCAL}>`), /^550 5\.1\.1 /);
  assert.equal(mx.mailbox.sessions.length, probes, 'the negative answer comes from the cache');
  assert.match(await client.command(`RCPT TO:<busy@${LOCAL}>`), /^450 4\.1\.1 .*unverified address/);
  assert.match(await client.command(`RCPT TO:<alice@${LOCAL}>`), /^250 /);
  assert.match(await client.command('DATA'), /^354 /);
  client.send(`${message('someone@sender.test', `alice@${LOCAL}`)}.\r\n`);
  assert.match(await client.reply(), /^250 /);
  const [arrival] = await mx.mailbox.waitFor(1);
  assert.deepEqual(arrival.to, [`alice@${LOCAL}`]);
  assert.equal(mx.relay.inbound!.stats.refused.unverifiedRecipient, 1);
});

function dkimRecord(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' }) as Buffer;
  return `v=DKIM1; k=rsa; p=${der.toString('base64')}`;
}

/** The field `name` with its continuation lines, from a message's header block. */
function field(text: string, name: string): string[] {
  const head = text.slice(0, text.indexOf('\r\n\r\n') + 2);
  return [...head.matchAll(new RegExp(`^${name}:.*\\r\\n(?:[ \\t].*\\r\\n)*`, 'gim'))].map((m) => m[0]);
}

test('DMARC p=reject fails get 550 5.7.1 at DATA, p=quarantine is tagged, and Authentication-Results is mailauth\'s own verdict', async (t) => {
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const zone = {
    'evil.test': { TXT: ['v=spf1 -all'] },
    '_dmarc.evil.test': { TXT: ['v=DMARC1; p=reject'] },
    'quarantined.test': { TXT: ['v=spf1 -all'] },
    '_dmarc.quarantined.test': { TXT: ['v=DMARC1; p=quarantine'] },
    'good.test': { TXT: ['v=spf1 ip4:127.0.0.0/8 -all'] },
    '_dmarc.good.test': { TXT: ['v=DMARC1; p=reject'] },
    's1._domainkey.good.test': { TXT: [dkimRecord(keys.publicKey)] },
  };
  const mx = await startMx({ zone });
  t.after(() => mx.stop());
  const client = await session(mx.port, '127.0.0.1', 'mta.good.test');
  t.after(() => client.close());

  const evil = await transaction(client, 'ceo@evil.test', [`alice@${LOCAL}`], message('ceo@evil.test', `alice@${LOCAL}`, 'wire the money'));
  assert.match(evil.at(-1)!, /^550 5\.7\.1 Message rejected: evil\.test publishes a DMARC policy of reject/);
  const refused = mx.relay.events().find((e) => e.event === 'inbound-refused' && e.reason === 'dmarc');
  assert.equal(refused?.dmarc, 'fail');

  const quarantined = await transaction(client, 'news@quarantined.test', [`alice@${LOCAL}`], message('news@quarantined.test', `alice@${LOCAL}`));
  assert.match(quarantined.at(-1)!, /^250 /);

  // signed by good.test and sent from an address its SPF allows; it carries a forged result with our name, and someone else's
  const unsigned = message('team@good.test', `alice@${LOCAL}`, 'signed',
    `Authentication-Results: ${HOSTNAME}; dmarc=pass header.from=evil.test\r\nAuthentication-Results: other.example; spf=pass\r\n`);
  const signature = await dkimSign(unsigned, { signatureData: [{ signingDomain: 'good.test', selector: 's1', privateKey: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string }] } as unknown as DKIMSignOptions); // signatureData is what mailauth reads (its types say otherwise)
  const signed = `${signature.signatures}${unsigned}`;
  const good = await transaction(client, 'team@good.test', [`alice@${LOCAL}`], signed);
  assert.match(good.at(-1)!, /^250 /);

  const arrivals = await mx.mailbox.waitFor(2);
  assert.equal(mx.mailbox.attempts.length, 2, 'the refused message never reached the mailbox server');
  const tagged = arrivals.find((a) => a.from === 'news@quarantined.test')!;
  assert.match(field(tagged.text, 'X-Mailops-Verdict')[0], /dmarc=fail policy=quarantine header\.from=quarantined\.test; action=tag/);
  const delivered = arrivals.find((a) => a.from === 'team@good.test')!;
  assert.equal(field(delivered.text, 'X-Mailops-Verdict').length, 0);

  // mailauth's verdict on the message as the client sent it, without the forged field we remove
  const resolver = new dnsPromises.Resolver();
  resolver.setServers([mx.dns.address]);
  const withoutForged = signed.replace(`Authentication-Results: ${HOSTNAME}; dmarc=pass header.from=evil.test\r\n`, '');
  const own = await authenticate(Buffer.from(withoutForged), {
    ip: '127.0.0.1', helo: 'mta.good.test', sender: 'team@good.test', mta: HOSTNAME, disableBimi: true,
    resolver: ((name: string, type: string) => resolver.resolve(name, type as 'TXT')) as never,
  });
  assert.equal(own.dmarc && own.dmarc.status.result, 'pass');
  const ours = field(delivered.text, 'Authentication-Results');
  assert.equal(ours.length, 2, 'ours and the other host\'s; the forged one with our name is gone');
  assert.equal(ours[0], field(own.headers.replace(/\r\n$/, '\r\n\r\n'), 'Authentication-Results')[0]);
  assert.match(ours[0], new RegExp(`^Authentication-Results: ${HOSTNAME.replace(/\./g, '\\.')};`));
  for (const verdict of [/dkim=pass[^;]*header\.i=@good\.test header\.s=s1/, /spf=pass[^;]*smtp\.mailfrom=team@good\.test/, /dmarc=pass[^;]*header\.from=good\.test/]) assert.match(ours[0], verdict);
  assert.match(ours[1], /^Authentication-Results: other\.example; spf=pass/);
  assert.deepEqual(field(delivered.text, 'Received-SPF'), field(own.headers.replace(/\r\n$/, '\r\n\r\n'), 'Received-SPF'));
  assert.deepEqual({ dmarc: mx.relay.inbound!.stats.refused.dmarc, tagged: mx.relay.inbound!.stats.tagged, accepted: mx.relay.inbound!.stats.accepted }, { dmarc: 1, tagged: 1, accepted: 2 });
});

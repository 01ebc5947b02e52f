// The PROXY protocol at the SMTP listener (src/relay/receive/proxy.ts), with raw sockets from
// different loopback source addresses: 127.0.0.2 is the node's proxy (smtp.proxy), everything
// else is a direct client. The real client address named in the header is what relayNetworks, the
// per-IP limit, the Received field and the log see; a proxy address must send a header; any other
// address may not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startReceiver } from '../helpers/receiver.ts';
import { startTestRelay } from '../helpers/relay.ts';
import { RawSmtp } from '../helpers/smtp-client.ts';
import { until } from '../helpers/wait.ts';
import { parseProxyHeader } from '../../src/relay/receive/proxy.ts';

const PROXY = '127.0.0.2';
const header = (client: string, port = 40000) => `PROXY TCP4 ${client} 127.0.0.1 ${port} 2525\r\n`;

/** A session through the "proxy" for `client`: header sent, banner read. */
async function proxied(port: number, client: string): Promise<{ smtp: RawSmtp; banner: string }> {
  const smtp = await RawSmtp.open(port, '127.0.0.1', PROXY);
  smtp.send(header(client));
  return { smtp, banner: await smtp.reply() };
}

async function sendMessage(smtp: RawSmtp, subject: string): Promise<string> {
  assert.match(await smtp.command('EHLO client.test'), /^250/);
  assert.match(await smtp.command('MAIL FROM:<a@sender.test>'), /^250/);
  const rcpt = await smtp.command('RCPT TO:<b@dest.test>');
  if (!rcpt.startsWith('250')) return rcpt;
  assert.match(await smtp.command('DATA'), /^354/);
  return smtp.command(`From: a@sender.test\r\nSubject: ${subject}\r\n\r\nbody\r\n.`);
}

test('a PROXY header from a proxy address: the real client decides relaying, limits, Received and the log', { timeout: 30_000 }, async (t) => {
  const receiver = await startReceiver();
  t.after(() => receiver.close());
  // the proxy itself is a relay network: a node that judged by the proxy's address would relay for anyone
  const relay = await startTestRelay(`smtp:
  proxy: ["${PROXY}/32"]
  relayNetworks: ["${PROXY}/32", "127.0.0.5/32"]
  maxConnectionsPerIp: 2
`, { smarthost: receiver.address });
  t.after(() => relay.stop());

  const allowed = await proxied(relay.smtpPort, '127.0.0.5');
  assert.match(allowed.banner, /^220 /);
  assert.match(await sendMessage(allowed.smtp, 'via proxy'), /^250 2\.0\.0 Ok: queued as/);
  allowed.smtp.close();
  const [arrival] = await receiver.waitFor(1);
  assert.match(arrival.text, /^Received: from client\.test \(\[127\.0\.0\.5\]\)/m, 'the Received field names the real client');
  const received = relay.events().find((e) => e.event === 'received');
  assert.equal(received?.client, '127.0.0.5', 'the log names the real client');

  const outsider = await proxied(relay.smtpPort, '127.0.0.9');
  assert.match(await sendMessage(outsider.smtp, 'not a relay network'), /^550 5\.7\.1 Relaying denied/, '127.0.0.9 is not a relay network, whoever proxies it');
  outsider.smtp.close();

  // per-IP limit of 2 counts the real clients, not the one proxy address they all arrive from
  const sameClient = await Promise.all([1, 2, 3].map(() => proxied(relay.smtpPort, '127.0.0.7')));
  const banners = sameClient.map((s) => s.banner);
  assert.equal(banners.filter((b) => b.startsWith('220 ')).length, 2, banners.join(' | '));
  assert.match(banners.find((b) => !b.startsWith('220 '))!, /^421 4\.7\.0 Too many connections from 127\.0\.0\.7/);
  const otherClient = await proxied(relay.smtpPort, '127.0.0.8');
  assert.match(otherClient.banner, /^220 /, 'another client through the same proxy is not limited by the first');
  for (const s of [...sameClient, otherClient]) s.smtp.close();

  // PROXY UNKNOWN (HAProxy's health checks): the session is the proxy's own
  const check = await RawSmtp.open(relay.smtpPort, '127.0.0.1', PROXY);
  check.send('PROXY UNKNOWN\r\n');
  assert.match(await check.reply(), /^220 /);
  assert.match(await check.command('EHLO haproxy-check'), /^250/);
  assert.match(await check.command('QUIT'), /^221/);
  check.close();
});

test('a proxy address without a PROXY header, and a PROXY header from anyone else, are refused', { timeout: 30_000 }, async (t) => {
  const relay = await startTestRelay(`smtp:
  proxy: ["${PROXY}/32"]
  relayNetworks: ["127.0.0.0/8"]
`);
  t.after(() => relay.stop());

  // the proxy address speaks SMTP at once: no session
  const noHeader = await RawSmtp.open(relay.smtpPort, '127.0.0.1', PROXY);
  noHeader.send('EHLO direct.test\r\n');
  assert.match(await noHeader.reply(), /^554 5\.7\.0 connections from 127\.0\.0\.2 \(smtp\.proxy\) must begin with a PROXY header/);
  assert.equal(await noHeader.reply(), '(closed)');

  // the proxy address waits for a banner that never comes: refused after the header deadline
  const silent = await RawSmtp.open(relay.smtpPort, '127.0.0.1', PROXY);
  assert.match(await silent.reply(6_000), /^554 5\.7\.0 no PROXY header from 127\.0\.0\.2 within 3 s/);
  assert.equal(await silent.reply(), '(closed)');

  // a malformed header and a v2 header
  const bad = await RawSmtp.open(relay.smtpPort, '127.0.0.1', PROXY);
  bad.send('PROXY TCP4 127.0.0.999 127.0.0.1 1 2\r\n');
  assert.match(await bad.reply(), /^554 5\.7\.0 bad PROXY header: addresses are not TCP4 addresses/);
  const v2 = await RawSmtp.open(relay.smtpPort, '127.0.0.1', PROXY);
  v2.send(Buffer.from('0d0a0d0a000d0a515549540a2111000c7f0000057f00000104d209c4', 'hex'));
  assert.match(await v2.reply(), /^554 5\.7\.0 PROXY protocol v2 is not supported/);

  // any other address sending a header: before the banner (as a proxy would) and inside the session
  const early = await RawSmtp.open(relay.smtpPort, '127.0.0.1', '127.0.0.3');
  early.send(header('127.0.0.5'));
  let reply = await early.reply();
  if (reply.startsWith('220 ')) reply = await early.reply();
  assert.match(reply, /^554 5\.7\.0 PROXY header refused: 127\.0\.0\.3 is not a proxy address/);
  assert.equal(await early.reply(), '(closed)');

  const late = await RawSmtp.open(relay.smtpPort, '127.0.0.1', '127.0.0.3');
  assert.match(await late.reply(), /^220 /);
  assert.match(await late.command(header('127.0.0.5').trim()), /^554 5\.7\.0 PROXY header refused/);
  assert.equal(await late.reply(), '(closed)');

  // a direct client from a non-proxy address is served as always
  const direct = await RawSmtp.open(relay.smtpPort, '127.0.0.1', '127.0.0.4');
  assert.match(await direct.reply(), /^220 /);
  assert.match(await sendMessage(direct, 'direct'), /^250 /);
  direct.close();
  const direct2 = relay.events().find((e) => e.event === 'received');
  assert.equal(direct2?.client, '127.0.0.4');

  const refused = await until('the refusals in the log', () => {
    const events = relay.events().filter((e) => e.event === 'smtp-proxy-refused');
    return events.length >= 6 && events;
  });
  assert.deepEqual([...new Set(refused.map((e) => e.peer))].sort(), ['127.0.0.2', '127.0.0.3']);
});

test('PROXY v1 header lines: what is accepted and what each refusal says', () => {
  assert.deepEqual(parseProxyHeader('PROXY TCP4 192.0.2.1 198.51.100.2 40000 25'), { remoteAddress: '192.0.2.1', remotePort: 40000 });
  assert.deepEqual(parseProxyHeader('PROXY TCP6 2001:DB8::1 2001:db8::2 1 25'), { remoteAddress: '2001:db8::1', remotePort: 1 });
  assert.deepEqual(parseProxyHeader('PROXY UNKNOWN'), {});
  assert.deepEqual(parseProxyHeader('PROXY UNKNOWN ffff::1 ffff::2 1 2'), {});
  assert.throws(() => parseProxyHeader('PROXY UDP4 192.0.2.1 192.0.2.2 1 2'), /unknown protocol "UDP4"/);
  assert.throws(() => parseProxyHeader('PROXY TCP4 2001:db8::1 192.0.2.2 1 2'), /not TCP4 addresses/);
  assert.throws(() => parseProxyHeader('PROXY TCP4 192.0.2.1 192.0.2.2 70000 25'), /ports must be numbers/);
  assert.throws(() => parseProxyHeader('PROXY TCP4 192.0.2.1 192.0.2.2 1'), /expected "PROXY TCP4\|TCP6/);
  assert.throws(() => parseProxyHeader('PROXY TCP4 192.0.2.1 192.0.2.2 1 2 3'), /expected "PROXY TCP4\|TCP6/);
});

// `mailops sink --dns`: a simulated internet on loopback. Node's own resolver asks the sink's DNS
// for MX, A and PTR records; SMTP sessions to the addresses it answers meet each provider's
// behaviour at connect, with connection caps counted per client IP and per server.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Resolver } from 'node:dns/promises';
import { startSink, type ProviderServer } from '../../src/sink/index.ts';
import { startCli } from '../helpers/cli.ts';
import { RawClient, session } from './client.ts';

/** Profiles without simulated latency, so that sessions answer at once. */
const names = ['corporate', 'google', 'outlook', 'yahoo', 'united-internet', 'telekom', 'greylisting'];
const fast = { profiles: Object.fromEntries(names.map((n) => [n, { latency: null }])) };

const sink = await startSink({ smtp: '127.0.0.1:0', http: false, dns: '127.0.0.1:0', tls: false, profiles: fast });
after(() => sink.close());

const resolver = new Resolver({ timeout: 2000, tries: 2 });
resolver.setServers([`127.0.0.1:${sink.dnsPort}`]);

function server(name: string): ProviderServer {
  const found = sink.providers.find((p) => p.name === name);
  assert.ok(found, `no mail server ${name} in ${sink.providers.map((p) => p.name).join(', ')}`);
  return found;
}

async function mx(domain: string): Promise<{ priority: number; exchange: string }[]> {
  const records = await resolver.resolveMx(domain);
  return records.map(({ priority, exchange }) => ({ priority, exchange })).sort((a, b) => a.priority - b.priority || a.exchange.localeCompare(b.exchange));
}

/** Where a relay would connect for DOMAIN: its first MX host's address. */
async function addressOf(domain: string): Promise<string> {
  const [first] = await mx(domain);
  const [address] = await resolver.resolve4(first.exchange);
  return address;
}

/** Opens connections until `count` are greeted with 220; returns them. */
async function openSessions(host: string, count: number, localAddress = '127.0.0.1'): Promise<RawClient[]> {
  const open: RawClient[] = [];
  for (let i = 0; i < count; i++) {
    const client = await RawClient.open(sink.smtpPort, { host, localAddress });
    assert.equal((await client.next())?.code, 220, `connection ${i + 1} to ${host} from ${localAddress}`);
    open.push(client);
  }
  return open;
}

test('the address table: each provider and hosting server on its own loopback address, all on the SMTP port', () => {
  const expected: Record<string, string> = {
    google: '127.0.1.1', outlook: '127.0.1.2', yahoo: '127.0.1.3', 'united-internet': '127.0.1.4', telekom: '127.0.1.5', greylisting: '127.0.1.6',
  };
  for (const [name, address] of Object.entries(expected)) assert.equal(server(name).address, address, name);
  const hosting = sink.providers.filter((p) => p.name.startsWith('hosting-'));
  assert.equal(hosting.length, 16);
  assert.deepEqual(hosting.map((p) => p.address), Array.from({ length: 16 }, (_, i) => `127.0.2.${i + 1}`));
  assert.ok(hosting.every((p) => p.profile === 'corporate'));
  assert.ok(sink.providers.every((p) => p.port === sink.smtpPort), 'one port on every address');
});

test('MX answers like the real providers\'', async () => {
  assert.deepEqual(await mx('gmail.com'), [
    { priority: 5, exchange: 'gmail-smtp-in.l.google.com' },
    { priority: 10, exchange: 'alt1.gmail-smtp-in.l.google.com' },
    { priority: 20, exchange: 'alt2.gmail-smtp-in.l.google.com' },
  ]);
  assert.deepEqual(await mx('GoogleMail.com.'), await mx('gmail.com'));
  assert.deepEqual(await mx('outlook.com'), [{ priority: 5, exchange: 'outlook-com.olc.protection.outlook.com' }]);
  assert.deepEqual(await mx('hotmail.com'), [{ priority: 5, exchange: 'hotmail-com.olc.protection.outlook.com' }]);
  assert.deepEqual(await mx('hotmail.de'), [{ priority: 5, exchange: 'hotmail-de.olc.protection.outlook.com' }]);
  assert.deepEqual((await mx('yahoo.de')).map((r) => r.exchange), ['mta5.am0.yahoodns.net', 'mta6.am0.yahoodns.net', 'mta7.am0.yahoodns.net']);
  assert.deepEqual(await mx('gmx.de'), [{ priority: 10, exchange: 'mx00.emig.gmx.net' }, { priority: 10, exchange: 'mx01.emig.gmx.net' }]);
  assert.deepEqual((await mx('web.de')).map((r) => r.exchange), ['mx-ha02.web.de', 'mx-ha03.web.de']);
  assert.equal((await mx('t-online.de'))[0].exchange, 'mx00.t-online.de');
  assert.deepEqual(await mx('greylist-corp.test'), [{ priority: 10, exchange: 'mx.greylisting.mailops.test' }]);
});

test('corporate domains are hosted: hashed onto 16 hosting servers, several domains per MX', async () => {
  const byHost = new Map<string, string[]>();
  for (let i = 1; i <= 64; i++) {
    const records = await mx(`corp${i}.mailops.test`);
    assert.equal(records.length, 1);
    const m = /^mx(\d+)\.hosting\.mailops\.test$/.exec(records[0].exchange);
    assert.ok(m && Number(m[1]) >= 1 && Number(m[1]) <= 16, records[0].exchange);
    byHost.set(records[0].exchange, [...(byHost.get(records[0].exchange) ?? []), `corp${i}.mailops.test`]);
  }
  assert.ok(byHost.size > 4 && byHost.size <= 16, `64 domains on ${byHost.size} servers`);
  assert.ok([...byHost.values()].some((domains) => domains.length >= 2), 'some servers host several domains');
  // The same domain always lands on the same server; domains outside mailops.test are hosted too.
  assert.deepEqual(await mx('corp1.mailops.test'), await mx('CORP1.mailops.test'));
  assert.match((await mx('freenet.de'))[0].exchange, /^mx\d+\.hosting\.mailops\.test$/);
});

test('A records for every MX host, PTR for the servers and the lab\'s egress addresses, NXDOMAIN outside', async () => {
  for (const domain of ['gmail.com', 'outlook.com', 'yahoo.com', 'gmx.net', 'web.de', 't-online.de', 'greylist-a.test']) {
    const expected = server(domain === 'gmail.com' ? 'google' : domain === 'outlook.com' ? 'outlook' : domain === 'yahoo.com' ? 'yahoo'
      : domain === 't-online.de' ? 'telekom' : domain.startsWith('greylist') ? 'greylisting' : 'united-internet').address;
    for (const { exchange } of await mx(domain)) assert.deepEqual(await resolver.resolve4(exchange), [expected], exchange);
  }
  assert.deepEqual(await resolver.resolve4('mx7.hosting.mailops.test'), ['127.0.2.7']);
  const [withTtl] = await resolver.resolve4('gmail-smtp-in.l.google.com', { ttl: true });
  assert.equal(withTtl.ttl, 300, 'a real TTL, not 0');
  assert.deepEqual(await resolver.resolve4('egress-2.mailops.test'), ['127.0.0.2']);

  // PTR queries proper: Resolver#reverse would consult /etc/hosts first for 127.0.0.1.
  const ptr = (ip: string) => resolver.resolvePtr(`${ip.split('.').reverse().join('.')}.in-addr.arpa`);
  assert.deepEqual(await ptr('127.0.1.1'), ['gmail-smtp-in.l.google.com']);
  assert.deepEqual(await ptr('127.0.1.2'), ['outlook-com.olc.protection.outlook.com']);
  assert.deepEqual(await ptr('127.0.2.7'), ['mx7.hosting.mailops.test']);
  assert.deepEqual(await ptr('127.0.0.1'), ['relay1.mailops.test']);
  assert.deepEqual(await ptr('127.0.0.2'), ['egress-2.mailops.test']);
  assert.deepEqual(await ptr('127.0.0.8'), ['egress-8.mailops.test']);

  await assert.rejects(ptr('127.0.0.9'), { code: 'ENOTFOUND' });
  await assert.rejects(resolver.resolveMx('nothing.invalid'), { code: 'ENOTFOUND' });
  await assert.rejects(resolver.resolve4('mx99.hosting.mailops.test'), { code: 'ENOTFOUND' });
  await assert.rejects(resolver.resolveMx('localhost'), { code: 'ENOTFOUND' });
  // A mail domain has MX only; a host has A only (NODATA for the rest).
  await assert.rejects(resolver.resolve4('gmail.com'), { code: 'ENODATA' });
  await assert.rejects(resolver.resolve6('gmail-smtp-in.l.google.com'), { code: 'ENODATA' });
});

test('the google address plays Google: its 6th connection from one client IP is refused at connect, another IP counts apart', async () => {
  const google = await addressOf('gmail.com');
  assert.equal(google, '127.0.1.1');
  const { client: probe, greeting } = await session(sink.smtpPort, { host: google });
  assert.match(greeting!.text, /^220 gmail-smtp-in\.l\.google\.com /, 'greets with its MX host name');
  await probe.command('MAIL FROM:<n@shop.test>');
  assert.match((await probe.command('RCPT TO:<unknown@gmail.com>'))!.text, /^550-5\.1\.1 The email account that you tried to reach does not exist/);
  await probe.quit();

  const open = await openSessions(google, 5);
  const sixth = await RawClient.open(sink.smtpPort, { host: google, localAddress: '127.0.0.1' });
  assert.match((await sixth.next())!.text, /^421 4\.7\.0 \[127\.0\.0\.1\] Too many concurrent SMTP connections from this IP address/);
  await sixth.closed;
  // A second client address (the relay's second egress) has its own five.
  open.push(...(await openSessions(google, 5, '127.0.0.2')));
  const sixthOther = await RawClient.open(sink.smtpPort, { host: google, localAddress: '127.0.0.2' });
  assert.match((await sixthOther.next())!.text, /^421 4\.7\.0 \[127\.0\.0\.2\]/);
  await sixthOther.closed;
  // Outlook's server is another machine: its cap is untouched by Google's connections.
  const outlook = await openSessions(await addressOf('outlook.com'), 1);
  for (const c of [...open, ...outlook]) await c.quit();
});

test('T-Online\'s address refuses clients outside the lab\'s egress range at connect (NOWL)', async () => {
  const telekom = await addressOf('t-online.de');
  const stranger = await RawClient.open(sink.smtpPort, { host: telekom, localAddress: '127.0.0.9' });
  assert.match((await stranger.next())!.text, /^554 IP=127\.0\.0\.9 - None\/bad reputation \(NOWL\)/);
  await stranger.closed;
  const [egress] = await openSessions(telekom, 1, '127.0.0.3');
  await egress.quit();
});

test('a hosting server\'s connection cap (10) counts per server, like a real machine', async () => {
  // Two corporate domains on different hosting servers.
  const first = await addressOf('corp1.mailops.test');
  let otherDomain = '';
  for (let i = 2; !otherDomain && i < 200; i++) if ((await addressOf(`corp${i}.mailops.test`)) !== first) otherDomain = `corp${i}.mailops.test`;
  const second = await addressOf(otherDomain);
  assert.match(first, /^127\.0\.2\.\d+$/);

  const open = await openSessions(first, 10);
  const eleventh = await RawClient.open(sink.smtpPort, { host: first, localAddress: '127.0.0.1' });
  assert.match((await eleventh.next())!.text, /^421 4\.7\.0 Too many connections from 127\.0\.0\.1/);
  await eleventh.closed;
  // The same client on another hosting server, and on the shared port, is not over any cap.
  open.push(...(await openSessions(second, 10)));
  open.push(...(await openSessions('127.0.0.1', 1)));
  // Every domain of a server shares its cap: a session there takes mail for any domain it hosts.
  await open.pop()!.quit();
  await open[0].command('EHLO relay1.mailops.test');
  await open[0].command('MAIL FROM:<n@shop.test>');
  assert.equal((await open[0].command('RCPT TO:<anna@corp1.mailops.test>'))?.code, 250);
  for (const c of open) await c.quit();
});

test('routes without mail exchangers cannot be served: the error names the route', async () => {
  await assert.rejects(
    startSink({ smtp: '127.0.0.1:0', http: false, dns: '127.0.0.1:0', tls: false, profiles: { routes: [{ domains: ['*.lab.test'], profile: 'google' }] } }),
    /routes\[0\] \(profile google\): no mx: with --dns every route needs its mail exchangers/,
  );
  await assert.rejects(
    startSink({ smtp: '127.0.0.1:0', http: false, dns: '127.0.0.1:0', tls: false, profiles: { dns: { addresses: { google: null } } } }),
    /dns\.addresses\.google: expected an IPv4 or IPv6 address/,
  );
});

test('mailops sink --dns: the listening line names DNS and the mail servers\' addresses', async () => {
  const { child, output } = await startCli(['sink', '--smtp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--dns', '127.0.0.1:0', '--quiet', '--no-tls'], /\(profile by domain/);
  try {
    const m = /SMTP on 127\.0\.0\.1:(\d+), HTTP on 127\.0\.0\.1:\d+, DNS on 127\.0\.0\.1:(\d+), mail servers on port (\d+): google 127\.0\.1\.1, outlook 127\.0\.1\.2, .*16 hosting servers 127\.0\.2\.1-127\.0\.2\.16 \(profile by domain, seed 1\)/.exec(output());
    assert.ok(m, output());
    assert.equal(m[3], m[1], 'the mail servers listen on the --smtp port');
    const cli = new Resolver({ timeout: 2000, tries: 2 });
    cli.setServers([`127.0.0.1:${m[2]}`]);
    assert.equal((await cli.resolveMx('gmx.net'))[0].exchange.endsWith('.emig.gmx.net'), true);
    const { greeting, client } = await session(Number(m[1]), { host: '127.0.1.4' });
    assert.equal(greeting?.code, 220);
    await client.quit();
  } finally {
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    assert.equal(code, 0);
  }
});

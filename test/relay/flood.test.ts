// Connection floods (issue 13): the slots reserved for relay networks and authenticated clients,
// the per-network limit, shedding the busiest network's idle sessions, the command-line deadline,
// the minimum data rate and stress mode, at a small scale. The 127/8 range stands for many client
// addresses: 127.0.3.x, 127.0.4.x ... are different /24 networks on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadRelayConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { networkOf } from '../../src/util/network.ts';
import { RawSmtp } from '../helpers/smtp-client.ts';
import { startTestRelay, submit, type TestRelay } from '../helpers/relay.ts';
import { until } from '../helpers/wait.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Only 127.0.0.1 may relay, so that the rest of 127/8 can stand for strangers. */
const RELAY_NETWORK = '  relayNetworks: ["127.0.0.1/32"]\n';
const NOWHERE = { smarthost: '127.0.0.1:9' };

interface FloodClient { client: RawSmtp; from: string; greeting: string }

/** Opens `count` sessions from each address and reads each one's first reply. */
async function flood(relay: TestRelay, addresses: string[], count: number): Promise<FloodClient[]> {
  const opened = await Promise.all(addresses.flatMap((from) =>
    Array.from({ length: count }, async () => ({ client: await RawSmtp.open(relay.smtpPort, '127.0.0.1', from), from }))));
  return Promise.all(opened.map(async ({ client, from }) => ({ client, from, greeting: await client.reply() })));
}

async function metrics(relay: TestRelay): Promise<string> {
  return (await fetch(`${relay.httpUrl}/metrics`)).text();
}

function metric(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  assert.ok(line, `no ${series} in /metrics`);
  return Number(line.split(' ')[1]);
}

const addresses = (prefix: string, first: number, last: number) => Array.from({ length: last - first + 1 }, (_, i) => `${prefix}.${first + i}`);

test('a relayNetworks client gets every message accepted while a flood holds every other slot', async (t) => {
  // (stress mode off: this is about the reserve alone)
  const relay = await startTestRelay(`smtp:\n${RELAY_NETWORK}  maxConnections: 60\n  reservedConnections: 10\n  stress: { threshold: 1 }\n`, NOWHERE);
  t.after(() => relay.stop());
  const strangers = await flood(relay, addresses('127.0.3', 1, 25), 3);
  t.after(() => strangers.forEach((s) => s.client.close()));

  const greeted = strangers.filter((s) => s.greeting.startsWith('220 '));
  const refused = strangers.filter((s) => !s.greeting.startsWith('220 '));
  assert.equal(greeted.length, 50, 'the shared slots: maxConnections less the reserve');
  assert.equal(refused.length, 25);
  for (const { greeting } of refused) {
    assert.match(greeting, /^421 4\.7\.0 Too many connected clients; the remaining 10 slots are for relay networks and authenticated clients \(smtp\.reservedConnections\)/);
  }
  // the application server, meanwhile: every message accepted, on a connection of its own each
  for (let i = 0; i < 5; i++) {
    const info = await submit(relay.smtpPort, { from: 'app@sender.test', to: `user${i}@dest.test`, subject: `reset ${i}`, text: 'hello' });
    assert.match(info.response, /^250 2\.0\.0 Ok: queued as /);
  }
  assert.equal(relay.spool.messages, 5);
  const text = await metrics(relay);
  assert.equal(metric(text, 'mailops_smtp_refused_total{reason="reserved"}'), 25);
  assert.equal(metric(text, 'mailops_smtp_sessions{class="other"}'), 50);
  assert.equal(relay.events().filter((e) => e.event === 'smtp-refused' && e.reason === 'reserved').length, 25);
  // every slot is given back as the flood goes away
  strangers.forEach((s) => s.client.close());
  await until('the slots to be free', () => relay.metrics.connections.open.other === 0 && relay.metrics.connections.open.privileged === 0);
});

test('one byte every 200 ms is cut by the command-line deadline; slow message data by the minimum rate', async (t) => {
  const relay = await startTestRelay(`smtp:\n${RELAY_NETWORK}  idleTimeout: 2s\n  commandDeadline: 1s\n  minDataRate: 1000\n  stress: { idleTimeout: 2s, commandDeadline: 1s }\n`, NOWHERE);
  t.after(() => relay.stop());

  // every byte used to start the idle timeout again: this client would have held its slot for ever
  const trickler = await RawSmtp.open(relay.smtpPort, '127.0.0.1', '127.0.3.1');
  t.after(() => trickler.close());
  assert.match(await trickler.reply(), /^220 /);
  trickler.send('EHLO ');
  const drip = setInterval(() => trickler.send('x'), 200);
  t.after(() => clearInterval(drip));
  assert.match(await trickler.reply(), /^421 4\.4\.2 Command line not completed within 1s, closing connection$/);
  clearInterval(drip);

  // message data at 5 bytes/s against a minimum of 1000 bytes/s
  const slow = await RawSmtp.open(relay.smtpPort);
  t.after(() => slow.close());
  await slow.reply();
  await slow.command('EHLO client.test');
  assert.match(await slow.command('MAIL FROM:<a@sender.test>'), /^250 /);
  assert.match(await slow.command('RCPT TO:<b@dest.test>'), /^250 /);
  assert.match(await slow.command('DATA'), /^354 /);
  const dataDrip = setInterval(() => slow.send('y'), 200);
  t.after(() => clearInterval(dataDrip));
  assert.match(await slow.reply(), /^421 4\.4\.2 Message data slower than 1000 bytes\/s, closing connection$/);
  clearInterval(dataDrip);

  // a client that sends its message at once is not touched
  const info = await submit(relay.smtpPort, { from: 'a@sender.test', to: 'b@dest.test', subject: 'fast', text: 'x'.repeat(50_000) });
  assert.match(info.response, /^250 /);
  assert.equal(relay.spool.messages, 1);
  const text = await metrics(relay);
  assert.equal(metric(text, 'mailops_smtp_cut_total{reason="command-deadline"}'), 1);
  assert.equal(metric(text, 'mailops_smtp_cut_total{reason="data-rate"}'), 1);
  assert.deepEqual(relay.events().filter((e) => e.event === 'smtp-cut').map((e) => [e.client, e.reason]),
    [['127.0.3.1', 'command-deadline'], ['127.0.0.1', 'data-rate']]);
});

test('stress mode: when the slots run short, the idle timeout drops for every session', async (t) => {
  // stress from 10 open sessions of 20; idle 5 minutes normally, 1 s under stress
  const relay = await startTestRelay(`smtp:\n${RELAY_NETWORK}  maxConnections: 20\n  stress: { threshold: 0.5, idleTimeout: 1s }\n`, NOWHERE);
  t.after(() => relay.stop());
  const [probe] = await flood(relay, ['127.0.4.1'], 1);
  t.after(() => probe.client.close());
  assert.match(probe.greeting, /^220 /);
  assert.match(await probe.client.command('EHLO client.test'), /^250/);
  assert.equal(metric(await metrics(relay), 'mailops_smtp_stress'), 0);

  const strangers = await flood(relay, addresses('127.0.3', 1, 9), 1);
  t.after(() => strangers.forEach((s) => s.client.close()));
  assert.ok(strangers.every((s) => s.greeting.startsWith('220 ')));
  // the probe came in under the 5-minute timeout; stress mode ends it after a second of silence
  assert.match(await probe.client.reply(), /^421 4\.4\.2 Nothing received for 1s \(stress mode: connection slots are short\), closing connection$/);
  const stress = relay.events().filter((e) => e.event === 'smtp-stress');
  assert.deepEqual(stress[0], { ...stress[0], stress: true, sessions: 10, on: 10, off: 9, idleTimeout: '1s' });
  await until('stress mode to end as sessions close', () => relay.events().some((e) => e.event === 'smtp-stress' && e.stress === false));
  const text = await metrics(relay);
  assert.equal(metric(text, 'mailops_smtp_stress_entered_total'), 1);
  assert.ok(metric(text, 'mailops_smtp_cut_total{reason="idle"}') >= 2);
});

test('when the slots run short, idle sessions of the busiest network (its busiest address first) make room', async (t) => {
  // 25 shared slots, full: 127.0.3.0/24 holds 20 (127.0.3.1 alone 8), 127.0.4.0/24 holds 5
  const relay = await startTestRelay(`smtp:\n${RELAY_NETWORK}  maxConnections: 30\n  reservedConnections: 5\n`, NOWHERE);
  t.after(() => relay.stop());
  const busiest = await flood(relay, ['127.0.3.1'], 8);
  const busy = await flood(relay, addresses('127.0.3', 2, 4), 4);
  const quiet = await flood(relay, ['127.0.4.1'], 5);
  const all = [...busiest, ...busy, ...quiet];
  t.after(() => all.forEach((s) => s.client.close()));
  assert.ok(all.every((s) => s.greeting.startsWith('220 ')));

  // a client from a network of its own gets a slot: an idle session of 127.0.3.1 gives it up
  const [newcomer] = await flood(relay, ['127.0.5.1'], 1);
  t.after(() => newcomer.client.close());
  assert.match(newcomer.greeting, /^220 /);
  const shed = await until('a session to be shed', () => all.filter((s) => s.client.closed).length === 1 && all.filter((s) => s.client.closed));
  assert.equal(shed[0].from, '127.0.3.1');
  assert.match(await shed[0].client.reply(), /^421 4\.7\.0 Connection slots are short and 127\.0\.3\.0\/24 holds the most; closing this idle session, try again later$/);

  // one more from the busiest network itself finds no one to push out
  const [sameNetwork] = await flood(relay, ['127.0.3.9'], 1);
  t.after(() => sameNetwork.client.close());
  assert.match(sameNetwork.greeting, /^421 4\.7\.0 Too many connected clients/);
  // the smaller network's next client still has a busier one to take from
  const [smaller] = await flood(relay, ['127.0.4.2'], 1);
  t.after(() => smaller.client.close());
  assert.match(smaller.greeting, /^220 /);
  await until('a second session to be shed', () => all.filter((s) => s.client.closed).length === 2);
  assert.deepEqual(all.filter((s) => s.client.closed).map((s) => s.from), ['127.0.3.1', '127.0.3.1']);
  // 127.0.4.1's sessions were never candidates while a busier network had idle ones
  for (const { client } of quiet) assert.match(await client.command('NOOP'), /^250 /);

  const text = await metrics(relay);
  assert.equal(metric(text, 'mailops_smtp_cut_total{reason="shed"}'), 2);
  assert.equal(metric(text, 'mailops_smtp_refused_total{reason="reserved"}'), 1);
});

test('an authenticated client moves into the reserved slots', async (t) => {
  // 8 shared slots, all taken by 127.0.3.1; 4 reserved
  const relay = await startTestRelay(`smtp:\n${RELAY_NETWORK}  maxConnections: 12\n  reservedConnections: 4\n  auth:\n    users: [{ username: app, password: s3cret }]\n`, NOWHERE);
  t.after(() => relay.stop());
  const strangers = await flood(relay, ['127.0.3.1'], 8);
  t.after(() => strangers.forEach((s) => s.client.close()));
  const [app] = await flood(relay, ['127.0.6.1'], 1);
  t.after(() => app.client.close());
  assert.match(app.greeting, /^220 /); // took the slot of an idle 127.0.3.1 session
  await app.client.command('EHLO app.test');
  assert.match(await app.client.startTls(), /^220 /);
  await app.client.command('EHLO app.test');
  assert.match(await app.client.command('AUTH PLAIN AGFwcABzM2NyZXQ='), /^235 /);
  await until('the session to count as privileged', () => relay.metrics.connections.open.privileged === 1);
  assert.equal(strangers.filter((s) => s.client.closed).length, 1);

  // its shared slot is free again: the next stranger gets in without pushing anyone out
  const [next] = await flood(relay, ['127.0.3.2'], 1);
  t.after(() => next.client.close());
  assert.match(next.greeting, /^220 /);
  assert.equal(relay.metrics.connections.cut.shed, 1);
  // and the authenticated session is never the one pushed out
  const [another] = await flood(relay, ['127.0.7.1'], 1);
  t.after(() => another.client.close());
  assert.match(another.greeting, /^220 /);
  assert.equal(relay.metrics.connections.cut.shed, 2);
  assert.match(await app.client.command('NOOP'), /^250 /);
});

test('the per-network limit refuses a /24 over it with a 421 naming the limit; other networks and relay networks go on', async (t) => {
  const relay = await startTestRelay(`smtp:\n${RELAY_NETWORK}  maxConnectionsPerNetwork: 4\n`, NOWHERE);
  t.after(() => relay.stop());
  const network = await flood(relay, addresses('127.0.4', 1, 4), 1);
  t.after(() => network.forEach((s) => s.client.close()));
  assert.ok(network.every((s) => s.greeting.startsWith('220 ')));
  const [fifth] = await flood(relay, ['127.0.4.5'], 1);
  t.after(() => fifth.client.close());
  assert.equal(fifth.greeting, '421 4.7.0 Too many connections from 127.0.4.0/24 (smtp.maxConnectionsPerNetwork 4), try again later');
  const [other] = await flood(relay, ['127.0.5.1'], 1);
  t.after(() => other.client.close());
  assert.match(other.greeting, /^220 /);
  const relayClients = await flood(relay, ['127.0.0.1'], 6);
  t.after(() => relayClients.forEach((s) => s.client.close()));
  assert.ok(relayClients.every((s) => s.greeting.startsWith('220 ')), 'relay networks are not limited per network');

  assert.equal(metric(await metrics(relay), 'mailops_smtp_refused_total{reason="per-network"}'), 1);
  assert.deepEqual(relay.events().filter((e) => e.event === 'smtp-refused').map((e) => [e.client, e.network, e.reason]),
    [['127.0.4.5', '127.0.4.0/24', 'per-network']]);
});

test('networks are /24 for IPv4 and /64 for IPv6', () => {
  assert.equal(networkOf('127.0.3.25'), '127.0.3.0/24');
  assert.equal(networkOf('::ffff:192.0.2.7'), '192.0.2.0/24');
  assert.equal(networkOf('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  assert.equal(networkOf('2001:DB8:1:2::9'), '2001:db8:1:2::/64');
  assert.equal(networkOf('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(networkOf('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
});

test('admission keys: defaults fit any maxConnections; bad values name the key', () => {
  const file = (yaml: string) => {
    const path = join(mkdtempSync(join(tmpdir(), 'mailops-flood-')), 'relay.yaml');
    writeFileSync(path, yaml);
    return path;
  };
  const defaults = loadRelayConfig();
  assert.deepEqual([defaults.smtp.reservedConnections, defaults.smtp.maxConnectionsPerNetwork, defaults.smtp.commandDeadline, defaults.smtp.minDataRate],
    [100, 200, 60_000, 500]);
  assert.deepEqual(defaults.smtp.stress, { threshold: 0.8, idleTimeout: 10_000, commandDeadline: 10_000 });
  assert.equal(loadRelayConfig(file('smtp:\n  maxConnections: 60\n')).smtp.reservedConnections, 6);
  const cases: [string, RegExp][] = [
    ['smtp:\n  maxConnections: 60\n  reservedConnections: 60\n', /smtp\.reservedConnections: expected an integer from 0 to 59, got 60/],
    ['smtp:\n  maxConnectionsPerNetwork: 0\n', /smtp\.maxConnectionsPerNetwork: expected an integer from 1 /],
    ['smtp:\n  commandDeadline: 0s\n', /smtp\.commandDeadline: expected a duration above zero/],
    ['smtp:\n  minDataRate: fast\n', /smtp\.minDataRate: expected a size .* got "fast"/],
    ['smtp:\n  stress: { threshold: 1.5 }\n', /smtp\.stress\.threshold: expected a fraction of smtp\.maxConnections above 0 and at most 1/],
    ['smtp:\n  stress: { idleTimeout: 10m }\n', /smtp\.stress\.idleTimeout: expected a duration no longer than smtp\.idleTimeout \(5m\), got "10m"/],
    ['smtp:\n  stress: { commandDeadline: 2m }\n', /smtp\.stress\.commandDeadline: expected a duration no longer than smtp\.commandDeadline \(1m\)/],
    ['smtp:\n  stress: { idle: 5s }\n', /smtp\.stress\.idle: unknown key/],
  ];
  for (const [yaml, message] of cases) {
    assert.throws(() => loadRelayConfig(file(yaml)), (err: Error) => err instanceof ConfigError && message.test(err.message), yaml);
  }
});

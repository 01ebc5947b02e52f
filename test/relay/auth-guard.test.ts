// AUTH guessing: failures per client address and per user name slow down, then lock out with
// 421 4.7.0 for a while; never a correct login from an address that has not failed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventLog, type LogEvent } from '../../src/relay/log.ts';
import { AuthMetrics } from '../../src/relay/metrics.ts';
import { AuthGuard } from '../../src/relay/receive/auth-guard.ts';
import { RawSmtp } from '../helpers/smtp-client.ts';
import { startTestRelay } from '../helpers/relay.ts';

const USERS = '  auth:\n    users: [{ username: app, password: s3cret }]\n';

/** A session from `from` (any 127.x address) that has done STARTTLS and may AUTH. */
async function tlsSession(port: number, from: string): Promise<RawSmtp> {
  const client = await RawSmtp.open(port, '127.0.0.1', from);
  assert.match(await client.reply(), /^220 /);
  await client.command('EHLO client.test');
  assert.match(await client.startTls(), /^220 /);
  assert.match(await client.command('EHLO client.test'), /^250[- ]AUTH PLAIN LOGIN$/m);
  return client;
}

/** AUTH PLAIN; the reply and how long it took. */
async function login(client: RawSmtp, username: string, password: string): Promise<{ reply: string; ms: number }> {
  const started = performance.now();
  const reply = await client.command(`AUTH PLAIN ${Buffer.from(`\0${username}\0${password}`).toString('base64')}`);
  return { reply, ms: performance.now() - started };
}

test('wrong passwords: at once, then held longer each time, then 421 4.7.0 (logged, in /metrics); a correct login from another address meanwhile is answered at once; the lockout ends', async (t) => {
  const relay = await startTestRelay(`smtp:\n${USERS}  authFailures: { delayAfter: 2, delay: 200ms, lockoutAfter: 5, lockout: 3s, window: 1m }\n`);
  t.after(() => relay.stop());
  const guesser = await tlsSession(relay.smtpPort, '127.0.0.1');
  const friend = await tlsSession(relay.smtpPort, '127.0.0.2');
  t.after(() => [guesser, friend].forEach((c) => c.close()));

  for (const [i, hold] of [0, 0, 200, 400].entries()) {
    const { reply, ms } = await login(guesser, 'app', `wrong${i}`);
    assert.match(reply, /^535 5\.7\.8 /);
    assert.ok(ms >= hold - 5, `guess ${i + 1} answered after ${ms} ms, held ${hold} ms`);
  }
  // the fifth guess is held 600 ms; the friend's correct login, sent after it, is answered first
  const order: string[] = [];
  const [guess, correct] = await Promise.all([
    login(guesser, 'app', 'wrong4').then((r) => (order.push('guess'), r)),
    login(friend, 'app', 's3cret').then((r) => (order.push('friend'), r)),
  ]);
  assert.match(correct.reply, /^235 /);
  assert.match(guess.reply, /^535 5\.7\.8 /);
  assert.deepEqual(order, ['friend', 'guess']);

  // locked out: the next guess, and even the right password from that address, get 421 and the connection closes
  assert.match((await login(guesser, 'app', 'wrong5')).reply, /^421 4\.7\.0 /);
  assert.match(await guesser.reply(), /^\(closed\)$/);
  const again = await tlsSession(relay.smtpPort, '127.0.0.1');
  t.after(() => again.close());
  assert.match((await login(again, 'app', 's3cret')).reply, /^421 4\.7\.0 /);
  // the user name is locked out too, but not for an address that has not failed
  const stranger = await tlsSession(relay.smtpPort, '127.0.0.3');
  t.after(() => stranger.close());
  assert.match((await login(stranger, 'app', 's3cret')).reply, /^235 /);

  const events = relay.events();
  assert.deepEqual(events.filter((e) => e.event === 'auth-failed').map((e) => [e.client, e.user, e.failures, e.delayMs]),
    [0, 0, 200, 400, 600].map((hold, i) => ['127.0.0.1', 'app', i + 1, hold]));
  assert.deepEqual(events.filter((e) => e.event === 'auth-lockout').map((e) => [e.scope, e.client ?? e.user, e.failures]),
    [['address', '127.0.0.1', 5], ['user', 'app', 5]]);
  const metrics = await (await fetch(`${relay.httpUrl}/metrics`)).text();
  assert.match(metrics, /^mailops_auth_failures_total 5$/m);
  assert.match(metrics, /^mailops_auth_delayed_total 3$/m);
  assert.match(metrics, /^mailops_auth_lockouts_total\{scope="address"\} 1$/m);
  assert.match(metrics, /^mailops_auth_lockouts_total\{scope="user"\} 1$/m);
  assert.match(metrics, /^mailops_auth_locked_out_total 2$/m);

  // after the lockout the address logs in again
  for (let deadline = Date.now() + 20_000; ; await new Promise((r) => setTimeout(r, 200))) {
    const session = await tlsSession(relay.smtpPort, '127.0.0.1');
    const { reply } = await login(session, 'app', 's3cret');
    session.close();
    if (reply.startsWith('235 ')) break;
    assert.match(reply, /^421 4\.7\.0 /);
    assert.ok(Date.now() < deadline, 'the lockout did not end');
  }
});

test('guesses on fresh connections count per address and per user name', async (t) => {
  const relay = await startTestRelay(`smtp:\n${USERS}  authFailures: { delayAfter: 3, delay: 100ms, lockoutAfter: 4, lockout: 1m, window: 1m }\n`);
  t.after(() => relay.stop());
  const guess = async (from: string, username: string, password = 'wrong') => {
    const session = await tlsSession(relay.smtpPort, from);
    try {
      return (await login(session, username, password)).reply;
    } finally {
      session.close();
    }
  };
  // one guess each from four addresses: each answered at once, and the user name is locked out
  for (const from of ['127.0.0.11', '127.0.0.12', '127.0.0.13', '127.0.0.14']) assert.match(await guess(from, 'app'), /^535 /);
  assert.deepEqual(relay.events().filter((e) => e.event === 'auth-failed').map((e) => e.delayMs), [0, 0, 0, 0]);
  assert.match(await guess('127.0.0.11', 'app', 's3cret'), /^421 4\.7\.0 /, 'an address that failed gets the user name\'s lockout');
  assert.match(await guess('127.0.0.20', 'app', 's3cret'), /^235 /, 'an address that has not failed logs in');
  // one address, a fresh connection and another user name for each guess: locked out all the same
  for (const username of ['u1', 'u2', 'u3', 'u4']) assert.match(await guess('127.0.0.30', username), /^535 /);
  assert.match(await guess('127.0.0.30', 'u5'), /^421 4\.7\.0 /);
  assert.match(await guess('127.0.0.30', 'app', 's3cret'), /^421 4\.7\.0 /);
});

test('the guard forgets failures after the window and lockouts after their time, keeps at most its capacity of entries, and counts an IPv6 client by its /64', async () => {
  let clock = 1_000_000;
  const metrics = new AuthMetrics();
  const log = new EventLog(join(mkdtempSync(join(tmpdir(), 'mailops-auth-')), 'events.log'));
  const failed: LogEvent[] = [];
  log.subscribe((event) => event.event === 'auth-failed' && failed.push(event));
  const guard = new AuthGuard({ delayAfter: 2, delay: 0, lockoutAfter: 2, lockout: 1000, window: 500 }, metrics, log, { capacity: 3, now: () => clock });
  const wrong = () => false;
  const right = () => true;

  for (const n of [1, 2, 3, 4, 5]) assert.equal(await guard.judge(`192.0.2.${n}`, `user${n}`, wrong), 'refused');
  assert.deepEqual(metrics.tracked, { address: 3, user: 3 });
  // the longest-quiet address was forgotten: its next failure is its first again
  await guard.judge('192.0.2.1', 'user1', wrong);
  assert.equal(failed.at(-1)!.failures, 1);

  // outside the window a failure starts a new count
  await guard.judge('192.0.2.9', 'other', wrong);
  clock += 500;
  await guard.judge('192.0.2.9', 'other', wrong);
  assert.equal(failed.at(-1)!.failures, 1);

  // within it the second failure locks out, until the lockout's time has passed
  await guard.judge('192.0.2.9', 'other', wrong);
  assert.equal(metrics.lockouts.address, 1);
  assert.equal(await guard.judge('192.0.2.9', 'other', right), 'locked-out');
  clock += 999;
  assert.equal(await guard.judge('192.0.2.9', 'other', right), 'locked-out');
  clock += 1;
  assert.equal(await guard.judge('192.0.2.9', 'other', right), 'accepted');
  assert.equal(metrics.lockedOut, 2);

  // an IPv6 client counts as its /64: a new address for every guess is the same guesser
  await guard.judge('2001:db8:0:1::a', 'v6', wrong);
  await guard.judge('2001:db8:0:1::b', 'v6', wrong);
  assert.equal(await guard.judge('2001:db8:0:1::c', 'v6', right), 'locked-out');
  assert.equal(await guard.judge('2001:db8:0:2::a', 'v6', right), 'accepted', 'another /64 that has not failed');
  await log.close();
});

// The sending-quality config keys: defaults, overrides of a built-in profile, and errors that
// name the key path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRelayConfig } from '../../src/config/load.ts';

const dir = mkdtempSync(join(tmpdir(), 'mailops-sending-config-'));
function load(yaml: string) {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, yaml);
  return loadRelayConfig(file);
}

test('defaults: provider profiles from providers.md, default last; bounces on; no DKIM keys', () => {
  const config = load('');
  const byName = Object.fromEntries(config.shaping.profiles.map((p) => [p.name, p]));
  assert.deepEqual(Object.keys(byName), ['google', 'outlook', 'yahoo', 'united-internet', 'telekom', 'icloud', 'default']);
  assert.deepEqual([byName.google.maxConnections, byName.google.messagesPerConnection], [5, 50]);
  assert.deepEqual([byName['united-internet'].maxConnections, byName['united-internet'].messagesPerConnection], [4, 20]);
  assert.equal(byName.yahoo.messagesPerConnection, 20);
  assert.deepEqual([byName.icloud.maxConnections, byName.icloud.messagesPerConnection], [10, 5]);
  assert.deepEqual([byName.default.maxConnections, byName.default.messagesPerConnection], [10, 100]);
  const tss = byName.yahoo.backoff[0];
  assert.equal(tss.action, 'suspend');
  assert.equal(tss.duration, 2 * 3600_000);
  assert.ok(tss.regex.test('421 4.7.0 [TSS04] Messages from x temporarily deferred'));
  assert.deepEqual(config.bounces, { dsn: true, suppress: true, lane: 'transactional' });
  assert.deepEqual(config.dkim, []);
});

test('a profile value is overridden, new profiles match before default', () => {
  const config = load(`shaping:
  rampStep: 30s
  profiles:
    google: { maxConnections: 2, rate: { perHour: 3600 } }
    mine: { mx: [mx.mine.example], maxConnections: 1, backoff: [{ match: "slow down", action: pause, for: 5m }] }
`);
  const google = config.shaping.profiles.find((p) => p.name === 'google')!;
  assert.deepEqual([google.maxConnections, google.messagesPerConnection, google.ratePerHour], [2, 50, 3600]);
  assert.equal(config.shaping.profiles.at(-1)!.name, 'default');
  assert.equal(config.shaping.rampStep, 30_000);
  assert.equal(config.shaping.profiles.find((p) => p.name === 'mine')!.backoff[0].duration, 300_000);
});

test('errors name the key', () => {
  const cases: [string, RegExp][] = [
    ['shaping:\n  profiles:\n    google: { maxConections: 2 }\n', /shaping\.profiles\.google\.maxConections: unknown key/],
    ['shaping:\n  profiles:\n    x: { mx: [a.test], backoff: [{ match: "([", action: pause, for: 1m }] }\n', /shaping\.profiles\.x\.backoff\[0\]\.match: expected a regular expression/],
    ['shaping:\n  profiles:\n    x: { mx: [a.test], backoff: [{ match: "a", action: pause }] }\n', /shaping\.profiles\.x\.backoff\[0\]\.for: expected a duration for a pause/],
    ['shaping:\n  profiles:\n    x: { mx: [a.test], backoff: [{ match: "a", action: slower }] }\n', /backoff\[0\]\.action: expected reduce, pause or suspend/],
    ['shaping:\n  profiles:\n    x: { maxConnections: 2 }\n', /shaping\.profiles\.x\.mx: expected at least one MX host suffix/],
    ['lanes:\n  bulk: { egress: { address: not-an-ip } }\n', /lanes\.bulk\.egress\.address: expected an IPv4 or IPv6 address/],
    ['bounces: { lane: urgent }\n', /bounces\.lane: expected one of the lanes/],
    ['bounces: { dsn: yes please }\n', /bounces\.dsn: expected true or false/],
    ['dkim:\n  - { domain: a.test, selector: s, privateKey: k.pem, algorithm: rsa-sha1 }\n', /dkim\[0\]\.algorithm: expected rsa-sha256 or ed25519-sha256/],
    ['dkim:\n  - { domain: a.test, privateKey: k.pem }\n', /dkim\[0\]\.selector: expected a non-empty string/],
  ];
  for (const [yaml, error] of cases) assert.throws(() => load(yaml), error, yaml);
});

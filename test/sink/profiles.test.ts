// Profiles as data: the built-in file, routing by domain, overrides merged over it, and errors
// that name the file and key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadProfiles, profileFor } from '../../src/sink/profiles.ts';

test('routing: the destination domain picks the provider profile', () => {
  const set = loadProfiles();
  const cases: Record<string, string> = {
    'gmail.com': 'google', 'googlemail.com': 'google', 'outlook.com': 'outlook', 'hotmail.de': 'outlook', 'hotmail.co.uk': 'outlook',
    'live.com': 'outlook', 'yahoo.com': 'yahoo', 'yahoo.de': 'yahoo', 'gmx.net': 'united-internet', 'gmx.de': 'united-internet',
    'web.de': 'united-internet', 't-online.de': 'telekom', 'greylist-corp.test': 'greylisting', 'acme.test': 'corporate',
    'mygmail.com': 'corporate', 'web.de.example': 'corporate',
  };
  for (const [domain, profile] of Object.entries(cases)) assert.equal(profileFor(set, domain).name, profile, domain);
  assert.deepEqual(set.profiles.get('accept-all'), { name: 'accept-all', latency: {} });
  // extends: google inherits corporate's unknown-user prefix and keeps its own reply text.
  const google = set.profiles.get('google')!;
  assert.equal(google.unknownUsers?.prefix, 'unknown');
  assert.match(google.unknownUsers!.reply.render({}), /^550-5\.1\.1 The email account/);
  assert.equal(google.maxConnections?.limit, 5);
});

test('a profiles file is merged over the built-ins: change a value, add a profile and a route', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sink-profiles-'));
  try {
    const file = join(dir, 'p.yaml');
    writeFileSync(file, [
      'routes:',
      '  - { domains: ["*.lab.test"], profile: lab }',
      'profiles:',
      '  google: { rate: { messages: 10 } }',
      '  lab:',
      '    extends: corporate',
      '    unknownUsers: null',
      '    latency: { rcpt: { min: 1ms, max: 2ms } }',
    ].join('\n'));
    const set = loadProfiles(file);
    assert.equal(set.profiles.get('google')!.rate!.messages, 10);
    assert.equal(set.profiles.get('google')!.rate!.reply.code, 421, 'the reply text stays the built-in one');
    assert.equal(profileFor(set, 'x.lab.test').name, 'lab');
    assert.equal(profileFor(set, 'gmail.com').name, 'corporate', 'the routes list replaces the built-in one');
    assert.equal(set.profiles.get('lab')!.unknownUsers, undefined);
    assert.deepEqual(set.profiles.get('lab')!.latency.rcpt, { kind: 'uniform', min: 1, max: 2 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('errors name the key and what was wrong', () => {
  const bad = (doc: Record<string, unknown>, pattern: RegExp) => assert.throws(() => loadProfiles(doc), pattern);
  bad({ profiles: { google: { rate: { window: 'soon' } } } }, /profiles option: profiles\.google\.rate\.window: expected a duration/);
  bad({ profiles: { google: { maxConections: 3 } } }, /profiles\.google\.maxConections: unknown key/);
  bad({ profiles: { yahoo: { rate: { reply: '250 fine' } } } }, /profiles\.yahoo\.rate\.reply: expected a reply code from 400 to 599, got 250/);
  bad({ profiles: { yahoo: { rate: { reply: 'deferred' } } } }, /profiles\.yahoo\.rate\.reply: a reply must start with a 3-digit SMTP code/);
  bad({ profiles: { yahoo: { rate: { reply: '421 {nope}' } } } }, /unknown placeholder \{nope\}/);
  bad({ profiles: { a: { extends: 'b' }, b: { extends: 'a' } } }, /circular extends/);
  bad({ default: 'nope' }, /default: expected a profile name/);
  bad({ profiles: { corporate: { unknownUsers: { share: 2 } } } }, /profiles\.corporate\.unknownUsers\.share: expected a share from 0 to 1, got 2/);
  bad({ profiles: { telekom: { refuseConnect: { allow: ['10.0.0.0/33'] } } } }, /refuseConnect\.allow: "10\.0\.0\.0\/33" is not a CIDR network/);
  const dir = mkdtempSync(join(tmpdir(), 'sink-profiles-'));
  try {
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, 'profiles:\n  google: [unclosed\n');
    assert.throws(() => loadProfiles(file), (err: Error) => err.name === 'ConfigError' && err.message.startsWith(`${file}: invalid YAML`) && /line \d+/.test(err.message));
    assert.throws(() => loadProfiles(join(dir, 'missing.yaml')), /missing\.yaml: cannot read profiles file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the simulated internet\'s data: routes carry mx, the dns section addresses, hosting and lab hosts', () => {
  const set = loadProfiles();
  const google = set.routes.find((r) => r.profile === 'google')!;
  assert.deepEqual(google.mx?.[0], { priority: 5, host: 'gmail-smtp-in.l.google.com' });
  assert.equal(set.routes.find((r) => r.profile === 'outlook')!.mx?.[0].host, '{domain-dashed}.olc.protection.outlook.com');
  assert.equal(set.internet.ttlSeconds, 300);
  assert.equal(set.internet.addresses.get('telekom'), '127.0.1.5');
  assert.equal(set.internet.hosting?.servers, 16);
  assert.equal(set.internet.hosts.get('egress-2.mailops.test'), '127.0.0.2');
  // A profiles file can move the hosting pool or switch it off.
  assert.equal(loadProfiles({ dns: { hosting: { servers: 4 } } }).internet.hosting?.servers, 4);
  assert.equal(loadProfiles({ dns: { hosting: null } }).internet.hosting, undefined);
});

test('dns section errors name the key', () => {
  const bad = (doc: Record<string, unknown>, pattern: RegExp) => assert.throws(() => loadProfiles(doc), pattern);
  bad({ routes: [{ domains: ['a.test'], profile: 'google', mx: ['5 {host}.example'] }] }, /routes\[0\]\.mx\[0\]: unknown placeholder \{host\} \(known here: \{domain\}, \{domain-dashed\}\)/);
  bad({ routes: [{ domains: ['a.test'], profile: 'google', mx: ['high mx.a.test'] }] }, /routes\[0\]\.mx\[0\]: expected "PREFERENCE HOST"/);
  bad({ routes: [{ domains: ['a.test'], profile: 'google', mx: [] }] }, /routes\[0\]\.mx: expected a non-empty list/);
  bad({ dns: { addresses: { nope: '127.0.1.9' } } }, /dns\.addresses\.nope: unknown profile/);
  bad({ dns: { addresses: { yahoo: '127.0.1.1' } } }, /dns\.addresses\.yahoo: 127\.0\.1\.1 is already the address of profile google/);
  bad({ dns: { hosting: { address: '127.0.1.{n}' } } }, /dns\.hosting\.address: 127\.0\.1\.1 is already the address of profile google/);
  bad({ dns: { hosting: { mx: ['10 mx.hosting.test'] } } }, /dns\.hosting\.mx\[0\]: every host needs \{n\}/);
  bad({ dns: { hosting: { servers: 300 } } }, /dns\.hosting\.servers: expected an integer from 1 to 254/);
  bad({ dns: { ttl: 'soon' } }, /dns\.ttl: expected a duration/);
  bad({ dns: { hosts: { 'relay1.mailops.test': 'here' } } }, /dns\.hosts\.relay1\.mailops\.test: expected an IPv4 or IPv6 address/);
  bad({ dns: { zones: [] } }, /dns\.zones: unknown key/);
});

// inbound.* in the config file: defaults, the inbound lane and the mailbox routes it adds, and
// every mistake reported at once, each naming its key path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRelayConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/errors.ts';

function configFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'mailops-config-')), 'relay.yaml');
  writeFileSync(file, text);
  return file;
}

test('inbound: defaults, an inbound lane after the first lane, the mailbox servers as routes', () => {
  const config = loadRelayConfig(configFile(`
routes: [{ domain: example.net, smarthost: "10.0.0.9:25" }]
inbound:
  listen: 0.0.0.0:25
  domains: [Example.COM, example.org]
  deliver:
    - { domain: example.com, to: "10.0.0.5:25" }
    - { domain: example.org, to: 10.0.0.6 }
  recipients: [alice@example.com, "@example.org"]
  dnsbl: { sites: ["zen.spamhaus.org*2", "bl.spamcop.net*1", "list.dnswl.org=127.0.[0..255].[1..3]*-1"] }
`));
  const inbound = config.inbound!;
  assert.deepEqual(inbound.listen, [{ host: '0.0.0.0', port: 25 }]);
  assert.deepEqual(inbound.domains, ['example.com', 'example.org']);
  assert.equal(inbound.verify, 'list');
  assert.equal(inbound.lane, 'inbound');
  assert.deepEqual(config.lanes.map((l) => l.name), ['transactional', 'inbound', 'member', 'bulk']);
  assert.deepEqual(config.routes.map((r) => [r.domain, `${r.smarthost.host}:${r.smarthost.port}`]), [['example.net', '10.0.0.9:25'], ['example.com', '10.0.0.5:25'], ['example.org', '10.0.0.6:25']]);
  assert.deepEqual(inbound.greeting, { delay: 6000, ttl: 86_400_000 });
  assert.deepEqual(inbound.greylist, { enabled: true, delay: 300_000, window: 2 * 86_400_000, maxAge: 35 * 86_400_000, autoAllow: 5, allow: [] });
  assert.deepEqual(inbound.dnsbl.sites.map((s) => [s.zone, s.weight]), [['zen.spamhaus.org', 2], ['bl.spamcop.net', 1], ['list.dnswl.org', -1]]);
  assert.deepEqual(inbound.dnsbl.sites[2].filter, [[[127, 127]], [[0, 0]], [[0, 255]], [[1, 3]]]);
  assert.equal(inbound.dnsbl.threshold, 2);
  assert.deepEqual(inbound.auth, { enabled: true, dmarcReject: 'reject', dmarcQuarantine: 'tag', spfFail: 'accept' });
  assert.equal(inbound.scan.onError, 'tempfail');
  // without inbound: no lane added, no listener
  assert.equal(loadRelayConfig().inbound, undefined);
  assert.deepEqual(loadRelayConfig().lanes.map((l) => l.name), ['transactional', 'member', 'bulk']);
});

test('inbound mistakes are all reported, each with its key path', () => {
  const file = configFile(`
inbound:
  listen: nowhere:port
  domains: [example.com, "not a domain"]
  deliver: [{ domain: example.net, to: "10.0.0.5:25" }]
  lane: express
  dnsbl: { sites: ["zen.spamhaus.org*zero", "bl.example=127.0.0.[9..2]"], threshold: 0 }
  greylist: { delay: 2d, window: 1d, allow: ["10.0.0.0/33"] }
  auth: { dmarcReject: bounce }
  scan: { onError: shrug }
`);
  let error: ConfigError | undefined;
  try {
    loadRelayConfig(file);
  } catch (err) {
    error = err as ConfigError;
  }
  assert.ok(error instanceof ConfigError);
  const text = error.problems.join('\n');
  for (const key of [
    'inbound.listen: expected HOST:PORT', 'inbound.domains[1]: "not a domain" is not a domain name',
    'inbound.deliver[0].domain: expected one of inbound.domains', 'inbound.deliver: no mailbox server for example.com',
    'inbound.lane: expected one of the lanes', 'inbound.verify: expected list (with inbound.recipients) or callout',
    'inbound.dnsbl.sites[0]: "zen.spamhaus.org*zero"', 'inbound.dnsbl.sites[1]: "bl.example=127.0.0.[9..2]": bad octet',
    'inbound.dnsbl.threshold: expected an integer from 1', 'inbound.greylist.window: expected a duration longer than inbound.greylist.delay',
    'inbound.greylist.allow[0]: expected an address or CIDR network', 'inbound.auth.dmarcReject: expected reject (550 5.7.1), tag',
    'inbound.scan.onError: expected tempfail or pass',
  ]) assert.ok(text.includes(key), `missing ${JSON.stringify(key)} in:\n${text}`);
});

test('the commented inbound block of config/mailops.example.yaml is a valid config', () => {
  const text = readFileSync(new URL('../../config/mailops.example.yaml', import.meta.url), 'utf8');
  const lines = text.split('\n');
  const start = lines.indexOf('# inbound:');
  assert.ok(start > 0, 'the example documents inbound');
  const block: string[] = [];
  for (const line of lines.slice(start)) {
    if (!line.startsWith('#')) break;
    block.push(line.replace(/^# ?/, ''));
  }
  const config = loadRelayConfig(configFile(block.join('\n')));
  assert.deepEqual(config.inbound?.domains, ['example.com']);
  assert.equal(config.inbound?.greylist.delay, 300_000);
  assert.deepEqual(config.inbound?.callout, { timeout: 10_000, positiveTtl: 86_400_000, negativeTtl: 3_600_000 });
});

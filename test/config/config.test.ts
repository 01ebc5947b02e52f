import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRelayConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { runCli } from '../helpers/cli.ts';

function configFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'mailops-config-')), 'relay.yaml');
  writeFileSync(file, text);
  return file;
}

test('embedded defaults: loopback listeners, three lanes in priority order, loopback relaying', () => {
  const config = loadRelayConfig();
  assert.deepEqual(config.smtp.listen, [{ host: '127.0.0.1', port: 2525 }]);
  assert.deepEqual(config.http.listen, { host: '127.0.0.1', port: 8025 });
  assert.equal(config.spool.dir, './var/spool');
  assert.deepEqual(config.lanes.map((l) => l.name), ['transactional', 'member', 'bulk']);
  assert.equal(config.lanes[0].lifetime, 86_400_000);
  assert.equal(config.lanes[2].lifetime, 5 * 86_400_000);
  assert.deepEqual(config.lanes[1].retry, { initial: 60_000, max: 3_600_000, factor: 2 });
  assert.equal(config.classify.default, 'member');
  assert.deepEqual(config.smtp.relayNetworks, ['127.0.0.0/8', '::1/128']);
});

test('file values and flags override defaults; --route wins over file routes', () => {
  const file = configFile(`
smtp:
  maxMessageSize: 10MB
lanes:
  bulk: { concurrency: 7, retry: { initial: 30s } }
  urgent: { priority: 0, concurrency: 3 }
routes:
  - { domain: Example.COM, smarthost: "10.0.0.1:2526" }
`);
  const config = loadRelayConfig(file, { smtp: '127.0.0.1:2600', routes: ['example.com=127.0.0.1:2700'] });
  assert.equal(config.smtp.maxMessageSize, 10 * 1024 * 1024);
  assert.deepEqual(config.smtp.listen, [{ host: '127.0.0.1', port: 2600 }]);
  assert.deepEqual(config.lanes.map((l) => l.name), ['urgent', 'transactional', 'member', 'bulk']);
  const bulk = config.lanes.find((l) => l.name === 'bulk')!;
  assert.equal(bulk.concurrency, 7);
  assert.equal(bulk.retry.initial, 30_000);
  assert.equal(bulk.retry.max, 3_600_000);
  assert.deepEqual(config.routes.map((r) => [r.domain, r.smarthost.port]), [['example.com', 2700], ['example.com', 2526]]);
});

test('errors name the key path and the bad value', () => {
  const cases: [string, RegExp][] = [
    ['smtp:\n  maxMessageSize: lots\n', /smtp\.maxMessageSize: expected a size .* got "lots"/],
    ['lanes:\n  bulk:\n    retry:\n      initial: soon\n', /lanes\.bulk\.retry\.initial: expected a duration .* got "soon"/],
    ['smtp:\n  relayNetworks: ["10.0.0.0/33"]\n', /smtp\.relayNetworks: "10\.0\.0\.0\/33" is not a CIDR network/],
    ['smtp:\n  lisen: 1.2.3.4:25\n', /smtp\.lisen: unknown key/],
    ['classify:\n  default: newsletters\n', /classify\.default: expected one of the lanes \(transactional, member, bulk\), got "newsletters"/],
    ['routes:\n  - { domain: a.test, smarthost: "host:99999" }\n', /routes\[0\]\.smarthost: expected HOST:PORT, got "host:99999"/],
    ['smtp: [1, 2\n', /invalid YAML/],
  ];
  for (const [yaml, message] of cases) {
    assert.throws(() => loadRelayConfig(configFile(yaml)), (err: Error) => err instanceof ConfigError && message.test(err.message), yaml);
  }
});

test('mailops relay start with an invalid config exits 2 naming the key', async () => {
  const file = configFile('lanes:\n  bulk:\n    concurrency: -4\n');
  const result = await runCli(['relay', 'start', '--config', file]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /lanes\.bulk\.concurrency: expected an integer from 1 .* got -4/);
});

test('a config with several mistakes reports them all, each with its key path; relay start prints each on its own line and exits 2', async () => {
  const file = configFile(`
smtp:
  maxMessageSize: lots
  lisen: 1.2.3.4:25
  relayNetworks: ["10.0.0.0/33"]
lanes:
  bulk:
    concurrency: -4
    retry: { initial: soon }
classify:
  default: newsletters
routes:
  - { domain: a.test, smarthost: "host:99999" }
shaping:
  profiles:
    google: { backoff: [{ match: "(", action: reduce }] }
`);
  const expected = [
    /^.*relay\.yaml: smtp\.maxMessageSize: expected a size .* got "lots"$/,
    /^.*relay\.yaml: smtp\.lisen: unknown key/,
    /^.*relay\.yaml: smtp\.relayNetworks: "10\.0\.0\.0\/33" is not a CIDR network$/,
    /^.*relay\.yaml: lanes\.bulk\.concurrency: expected an integer from 1 .* got -4$/,
    /^.*relay\.yaml: lanes\.bulk\.retry\.initial: expected a duration .* got "soon"$/,
    /^.*relay\.yaml: classify\.default: expected one of the lanes \(transactional, member, bulk\), got "newsletters"$/,
    /^.*relay\.yaml: routes\[0\]\.smarthost: expected HOST:PORT, got "host:99999"$/,
    /^.*relay\.yaml: shaping\.profiles\.google\.backoff\[0\]\.match: expected a regular expression/,
  ];
  const matchEach = (lines: string[]) => {
    assert.equal(lines.length, expected.length, lines.join('\n'));
    for (const pattern of expected) assert.equal(lines.filter((line) => pattern.test(line)).length, 1, `${pattern} in:\n${lines.join('\n')}`);
  };
  assert.throws(() => loadRelayConfig(file), (err: Error) => {
    assert.ok(err instanceof ConfigError);
    matchEach(err.problems);
    return true;
  });
  const result = await runCli(['relay', 'start', '--config', file]);
  assert.equal(result.code, 2);
  const lines = result.stderr.trimEnd().split('\n');
  assert.ok(lines.every((line) => line.startsWith('mailops: ')), result.stderr);
  matchEach(lines);
});

test('cluster: a node of a cluster reads redis, node, lanes and the lease settings; mistakes are named by key', () => {
  const ok = loadRelayConfig(configFile(`
smtp: { proxy: ["10.0.0.0/24"] }
cluster: { redis: "redis://10.0.0.5:6379", node: relay-2, lanes: [transactional], leaseTtl: 20s }
`));
  assert.deepEqual(ok.smtp.proxy, ['10.0.0.0/24']);
  assert.deepEqual({ ...ok.cluster, advertise: undefined }, { redis: 'redis://10.0.0.5:6379', node: 'relay-2', lanes: ['transactional'], leaseTtl: 20_000, heartbeat: 2_000, advertise: undefined });
  assert.equal(loadRelayConfig(configFile('smtp: { hostname: a.test }\n')).cluster, undefined, 'no cluster: a single node');
  assert.throws(() => loadRelayConfig(configFile(`
smtp: { proxy: ["haproxy"] }
cluster: { redis: "10.0.0.5:6379", node: "bad name", lanes: [urgent], leaseTtl: soon }
`)), (err: Error) => {
    const problems = (err as ConfigError).problems.join('\n');
    for (const key of ['smtp.proxy', 'cluster.redis', 'cluster.node', 'cluster.lanes[0]', 'cluster.leaseTtl']) assert.match(problems, new RegExp(`relay\\.yaml: ${key.replace(/[.[\]]/g, '\\$&')}: `), problems);
    return true;
  });
});

test('mailops --help lists the commands; an unknown flag is a usage error (exit 2)', async () => {
  const help = await runCli(['--help']);
  assert.equal(help.code, 0);
  for (const command of ['relay', 'queue']) assert.match(help.stdout, new RegExp(`^  ${command}\\b`, 'm'));
  const bad = await runCli(['relay', 'start', '--no-such-flag']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown option '--no-such-flag'/);
});

test('the commented example config in the repo is valid and matches the embedded defaults', () => {
  const example = loadRelayConfig(new URL('../../config/mailops.example.yaml', import.meta.url).pathname);
  const defaults = loadRelayConfig();
  assert.deepEqual({ ...example, smtp: { ...example.smtp, hostname: '' } }, { ...defaults, smtp: { ...defaults.smtp, hostname: '' } });
});

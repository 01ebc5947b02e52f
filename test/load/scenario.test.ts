// Scenario files: every shipped one validates, and errors name the file, the key and the value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyOverrides, listScenarios, loadScenario } from '../../src/load/scenario/load.ts';
import { ConfigError } from '../../src/config/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'mailops-scenario-'));
function file(name: string, yaml: string): string {
  const path = join(dir, name);
  writeFileSync(path, yaml);
  return path;
}

test('the five shipped scenarios load and validate', () => {
  const names = listScenarios();
  for (const name of ['newsletter-smoke', 'newsletter-1m', 'newsletter-5m7', 'reminders-during-newsletter', 'provider-throttling']) {
    assert.ok(names.includes(name), `${name} is shipped`);
    const s = loadScenario(name);
    assert.equal(s.name, name);
    assert.ok(s.thresholds.length > 0, `${name} has thresholds`);
  }
  assert.equal(loadScenario('newsletter-5m7').messages, 5_700_000);
  assert.equal(loadScenario('newsletter-1m').messages, 1_000_000);
});

test('errors name the file, the key path and the value', () => {
  const cases: [string, RegExp][] = [
    ['stages:\n  - { target: 100, duration: soon }\n', /bad\.yaml: stages\[0\]\.duration: expected a duration .*got "soon"/],
    ['messagez: 10\n', /bad\.yaml: messagez: unknown key/],
    ['bulk:\n  size: { median: 40KB, p95: 10KB }\n', /bad\.yaml: bulk\.size\.p95: expected a size >= median .*got "10KB"/],
    ['recipients:\n  unknown: 150%\n', /bad\.yaml: recipients\.unknown: expected a share .*got "150%"/],
    ['thresholds:\n  - "arival.bulk.p99 < 1s"\n', /bad\.yaml: thresholds\[0\]: unknown metric "arival\.bulk\.p99".*got "arival\.bulk\.p99 < 1s"/],
    ['rate: fast\n', /bad\.yaml: rate: expected "max" or a positive number .*got "fast"/],
    ['unsubscribeBase: http://x.test/u\n', /bad\.yaml: unsubscribeBase: expected an https:\/\/ URI/],
    ['transactional: { rate: -1 }\n', /bad\.yaml: transactional\.rate: expected a number >= 0, got -1/],
    ['messages: [1\n', /bad\.yaml: /],
  ];
  for (const [yaml, pattern] of cases) {
    const path = file('bad.yaml', yaml);
    assert.throws(() => loadScenario(path), (err: Error) => err instanceof ConfigError && pattern.test(err.message), yaml);
  }
});

test('an unknown scenario name lists the shipped ones', () => {
  assert.throws(() => loadScenario('newsletter-2m'), /--scenario: no scenario file or shipped scenario "newsletter-2m" \(shipped: .*newsletter-smoke/);
});

test('command-line overrides win over the file', () => {
  const s = applyOverrides(loadScenario('newsletter-smoke'), { messages: 5, rate: 'max', size: 4096, connections: 3, duration: 2000 });
  assert.equal(s.messages, 5);
  assert.equal(s.rate, 'max');
  assert.deepEqual(s.bulk.size, { median: 4096, p95: 4096 });
  assert.deepEqual(s.transactional!.size, { median: 4096, p95: 4096 });
  assert.equal(s.connections, 3);
  assert.equal(s.duration, 2000);
  const constant = applyOverrides(loadScenario('newsletter-smoke'), { rate: 250 });
  assert.deepEqual(constant.rate, [{ target: 250, duration: 0 }]);
  assert.equal(constant.startRate, 250);
});

// inbound.scan as the config reader takes it: defaults, and every bad value named by its key path.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readScanConfig } from '../../src/config/inbound-scan.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { ConfigProblems, Reader } from '../../src/config/reader.ts';

/** Reads `scan` as the `inbound.scan` mapping of relay.yaml, collecting every problem. */
function read(scan: unknown) {
  const problems = new ConfigProblems();
  const config = readScanConfig(new Reader(scan, 'inbound.scan', 'relay.yaml', problems));
  problems.throwIfAny();
  return config;
}

function problemsOf(scan: unknown): string[] {
  try {
    read(scan);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

test('no scanners by default; each one given gets its defaults', () => {
  assert.deepEqual(read({}), { onError: 'tempfail', rspamd: undefined, clamd: undefined });
  assert.deepEqual(read({ onError: 'pass', rspamd: { url: 'http://127.0.0.1:11333/' }, clamd: { address: '127.0.0.1' } }), {
    onError: 'pass',
    rspamd: { url: 'http://127.0.0.1:11333', timeout: 15_000, rejectScore: undefined },
    clamd: { address: { host: '127.0.0.1', port: 3310 }, timeout: 30_000, maxSize: 25 * 1024 * 1024 },
  });
  assert.deepEqual(read({ rspamd: { url: 'https://rspamd.internal:11333', timeout: '2s', rejectScore: 12.5 }, clamd: { address: '[::1]:3311', timeout: 5, maxSize: '10MB' } }), {
    onError: 'tempfail',
    rspamd: { url: 'https://rspamd.internal:11333', timeout: 2000, rejectScore: 12.5 },
    clamd: { address: { host: '::1', port: 3311 }, timeout: 5000, maxSize: 10 * 1024 * 1024 },
  });
});

test('every bad value is reported at once, each named by its key path', () => {
  assert.deepEqual(problemsOf({
    onError: 'drop',
    rspamd: { url: 'ftp://127.0.0.1', timeout: 0, rejectScore: 'high', bayes: true },
    clamd: { address: ':3310', timeout: 'soon', maxSize: -1 },
  }), [
    'relay.yaml: inbound.scan.onError: expected tempfail or pass, got "drop"',
    'relay.yaml: inbound.scan.rspamd.bayes: unknown key (known: url, timeout, rejectScore)',
    'relay.yaml: inbound.scan.rspamd.url: expected the http:// URL of an rspamd worker, such as http://127.0.0.1:11333, got "ftp://127.0.0.1"',
    'relay.yaml: inbound.scan.rspamd.timeout: expected a duration above zero, such as 10s, got 0',
    'relay.yaml: inbound.scan.rspamd.rejectScore: expected a number >= 0, got "high"',
    'relay.yaml: inbound.scan.clamd.address: expected the HOST:PORT where clamd listens (TCPAddr and TCPSocket in clamd.conf), got ":3310"',
    'relay.yaml: inbound.scan.clamd.timeout: expected a duration such as 30s, 5m, 2h or 5d, got "soon"',
    'relay.yaml: inbound.scan.clamd.maxSize: expected a size such as 4096, 512KB or 25MB, got -1',
  ]);
});

test('a scanner key with nothing under it is a mistake, not "off"', () => {
  assert.deepEqual(problemsOf({ clamd: null }), ['relay.yaml: inbound.scan.clamd: expected a mapping (leave the key out to run without it), got null']);
});

// The shipped systemd unit (deploy/mailops-relay.service), installed as its header says but with
// /opt/mailops being this checkout: systemd-analyze verify finds nothing to say about it, its
// ExecStart command line starts a relay that its KillSignal stops with exit 0 within
// TimeoutStopSec, and a config error exits with the status the unit does not restart on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
const UNIT = join(ROOT, 'deploy', 'mailops-relay.service');
const SYSTEMD_ANALYZE = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find(existsSync);

function service(text: string): Map<string, string> {
  const keys = new Map<string, string>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) section = header[1];
    else if (section === 'Service') keys.set(line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1));
  }
  return keys;
}

/** Runs the unit's command line with its config path replaced; resolves with the exit code and output. */
function run(argv: string[], cwd: string, whenListening?: (signal: NodeJS.Signals) => void, signal?: NodeJS.Signals) {
  const child = spawn(argv[0], argv.slice(1), { cwd, env: { PATH: '/usr/bin:/bin' } });
  let output = '';
  const started = Date.now();
  const onData = (d: Buffer) => {
    output += d;
    if (signal && whenListening && output.includes('"event":"listening"')) {
      whenListening = undefined;
      child.kill(signal);
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise<{ code: number | null; output: string; ms: number }>((resolve) => child.on('exit', (code) => {
    clearTimeout(timer);
    resolve({ code, output, ms: Date.now() - started });
  }));
}

test('deploy/mailops-relay.service: verified by systemd, its command line starts a relay, its stop signal ends it with 0', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mailops-unit-'));
  const installed = readFileSync(UNIT, 'utf8').replaceAll('/opt/mailops', ROOT);
  const unitFile = join(dir, 'mailops-relay.service');
  writeFileSync(unitFile, installed);

  if (SYSTEMD_ANALYZE) {
    const verify = spawnSync(SYSTEMD_ANALYZE, ['verify', unitFile], { encoding: 'utf8', cwd: dir });
    // unknown keys and bad values are warnings on stderr with exit status 0: both must be empty
    assert.equal(verify.status, 0, verify.stderr);
    assert.equal(verify.stderr.trim(), '', 'systemd-analyze verify has nothing to say');
  } else {
    t.diagnostic('no systemd-analyze here: the unit is only parsed and run');
  }

  const keys = service(installed);
  assert.equal(keys.get('Restart'), 'on-failure');
  assert.equal(keys.get('KillSignal'), 'SIGTERM');
  const stopWithin = Number(/^(\d+)s$/.exec(keys.get('TimeoutStopSec') ?? '')?.[1]) * 1000;
  assert.ok(stopWithin > 0, `TimeoutStopSec in seconds: ${keys.get('TimeoutStopSec')}`);
  const argv = keys.get('ExecStart')!.split(/\s+/);
  const configAt = argv.indexOf('--config') + 1;
  assert.deepEqual(argv.slice(0, 4), [join(ROOT, 'node_modules/.bin/node'), join(ROOT, 'bin/mailops'), 'relay', 'start']);
  assert.ok(configAt > 0, 'ExecStart names a config file');

  const config = join(dir, 'relay.yaml');
  writeFileSync(config, `smtp: { listen: "127.0.0.1:0" }\nhttp: { listen: "127.0.0.1:0" }\nspool: { dir: "${join(dir, 'spool')}" }\n`);
  const started = await run(argv.with(configAt, config), dir, () => {}, keys.get('KillSignal') as NodeJS.Signals);
  assert.match(started.output, /"event":"listening"/);
  assert.match(started.output, /"event":"stopped"/);
  assert.equal(started.code, 0, started.output);
  assert.ok(started.ms < stopWithin, `started and stopped in ${started.ms} ms, within TimeoutStopSec`);

  // a config error: the status the unit does not restart on (no restart loop on a typo)
  writeFileSync(config, 'smtp: { listen: "nowhere" }\n');
  const broken = await run(argv.with(configAt, config), dir);
  assert.equal(String(broken.code), keys.get('RestartPreventExitStatus'), broken.output);
  assert.match(broken.output, /smtp\.listen/);
});

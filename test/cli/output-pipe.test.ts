// A command whose reader goes away early (`mailops queue summary | head`) ends quietly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { MAILOPS } from '../helpers/cli.ts';
import { startTestRelay } from '../helpers/relay.ts';

test('mailops queue summary with its output pipe closed before the first line: exit 0, nothing on stderr', async (t) => {
  const relay = await startTestRelay('', { smarthost: '127.0.0.1:9' });
  t.after(() => relay.stop());
  const child = spawn(process.execPath, [MAILOPS, 'queue', 'summary', '--node', relay.httpUrl]);
  // our end of the pipe closes at once, long before the command has loaded, asked and printed
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(stderr, '');
  assert.equal(code, 0);
});

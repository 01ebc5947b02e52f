// The README's tour is a test: its commands are read from README.md and run as printed (in a
// fresh directory, with the repository's config/ beside it), scaled down to 2,000 newsletter
// messages. The sink stands in for the internet and the relay delivers into it by MX lookup, on
// the shipped provider profiles; the load run must pass its thresholds (reminders within 2 s, none
// missing after the drain). The tour's fixed ports (2525, 2526, 5353, 8025, 8026) must be free.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { runCli, startCli } from './helpers/cli.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The tour's commands: the shell block after "A tour", continuation lines joined, comments dropped. */
function tourCommands(): { args: string[]; background: boolean }[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const block = /A tour[^\n]*[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme);
  assert.ok(block, 'README.md has a tour block');
  const lines = block[1].replace(/\\\n\s*/g, ' ').split('\n').map((l) => l.replace(/\s#.*$/, '').trim()).filter(Boolean);
  return lines.map((line) => {
    const background = line.endsWith('&');
    const words = line.replace(/&$/, '').trim().split(/\s+/);
    assert.deepEqual(words.slice(0, 2), ['npx', 'mailops'], `a tour line runs mailops: ${line}`);
    return { args: words.slice(2), background };
  });
}

test('the README tour passes as printed (scaled down to 2,000 messages)', { timeout: 600_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mailops-tour-'));
  symlinkSync(join(ROOT, 'config'), join(dir, 'config'));
  const background: ChildProcess[] = [];
  t.after(async () => {
    for (const child of background) child.kill('SIGTERM');
    await Promise.all(background.map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)))));
    rmSync(dir, { recursive: true, force: true });
  });
  const commands = tourCommands();
  assert.deepEqual(commands.map((c) => c.args.slice(0, 2).join(' ')),
    ['sink --dns', 'relay start', 'load newsletter', 'queue destinations', 'queue summary', 'top', 'audit domain']);
  for (const { args, background: inBackground } of commands) {
    const what = args.slice(0, 2).join(' ');
    if (inBackground) {
      const ready = what === 'sink --dns' ? /mailops sink: SMTP on .* DNS on/ : /"event":"listening"/;
      const started = await startCli(args, ready, { cwd: dir, timeoutMs: 30_000 });
      background.push(started.child);
      continue;
    }
    // scaled down: 2,000 newsletter messages; `top` prints one snapshot instead of a live screen
    const run = what === 'load newsletter' ? [...args, '--messages', '2000'] : what === 'top' ? [...args, '--once'] : args;
    const result = await runCli(run, { cwd: dir, timeoutMs: what === 'load newsletter' ? 400_000 : 60_000 });
    t.diagnostic(`mailops ${run.join(' ')}: exit ${result.code}`);
    if (what === 'load newsletter') t.diagnostic(result.stdout.split('\n').filter((l) => /arrival|missing|drain|FAIL|PASS/.test(l)).join('\n'));
    // the audit answers a question: exit 1 is its "not ready" verdict (example.com has no DKIM key), not a failure of the tour
    const ok = what === 'audit domain' ? [0, 1] : [0];
    assert.ok(ok.includes(result.code ?? -1), `mailops ${run.join(' ')} exited ${result.code}\n${result.stdout.slice(-4000)}\n${result.stderr.slice(-2000)}`);
    if (what === 'audit domain') assert.match(result.stdout, /Verdict/);
    if (what === 'load newsletter') assert.doesNotMatch(result.stdout, /\*\*FAIL\*\*/);
    if (what === 'queue destinations') assert.match(result.stdout, /provider:google {2}from 127\.0\.0\.3/, 'bulk reached Google from its own address');
  }
});

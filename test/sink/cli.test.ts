// `mailops sink` through the real launcher: listening line, mail in, stats out, signals, usage errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { runCli, startCli } from '../helpers/cli.ts';
import { getJson, message, session } from './client.ts';

test('mailops sink: prints its ports, receives mail, serves stats, stops on SIGTERM', async () => {
  const { child, output } = await startCli(['sink', '--smtp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--seed', '7', '--greylist-delay', '1s', '--quiet'], /HTTP on \S+:\d+/);
  try {
    const m = /SMTP on 127\.0\.0\.1:(\d+), HTTP on 127\.0\.0\.1:(\d+) \(profile by domain, seed 7\)/.exec(output());
    assert.ok(m, output());
    const { client } = await session(Number(m[1]));
    assert.equal((await client.send('n@shop.test', ['anna@acme.test'], message())).at(-1)?.code, 250);
    await client.command('MAIL FROM:<n@shop.test>');
    assert.equal((await client.command('RCPT TO:<bert@greylist-corp.test>'))?.code, 450);
    await client.quit();
    const stats = await getJson(Number(m[2]), '/api/v1/stats');
    assert.equal(stats.received, 1);
    assert.deepEqual(stats.byProfile, { corporate: 1 });
  } finally {
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    assert.equal(code, 0);
  }
});

test('mailops sink: usage errors exit 2 and name the flag', async () => {
  const cases: [string[], RegExp][] = [
    [['--profile', 'nope'], /--profile: unknown profile "nope" \(known: accept-all, corporate, google/],
    [['--seed', 'abc'], /--seed: expected a non-negative integer, got "abc"/],
    [['--smtp', 'nohost:99999'], /--smtp: expected HOST:PORT/],
    [['--greylist-delay', 'soon'], /--greylist-delay: expected a duration/],
    [['--dkim-sample', '2'], /--dkim-sample: expected a share from 0 to 1/],
    [['--listen', 'telekom'], /--listen: expected PROFILE=HOST:PORT/],
    [['--dns', 'nohost:99999'], /--dns: expected HOST:PORT/],
    [['--profiles', '/nonexistent/p.yaml'], /\/nonexistent\/p\.yaml: cannot read profiles file/],
    [['--tls-key', 'k.pem'], /--tls-key and --tls-cert: give both or neither/],
  ];
  for (const [args, pattern] of cases) {
    const r = await runCli(['sink', '--smtp', '127.0.0.1:0', '--http', '127.0.0.1:0', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
  }
  const help = await runCli(['sink', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Examples:\n\s+\$ mailops sink/);
});

// A node's drain (src/relay/drain.ts): it stops taking mail at once (SMTP listener closed, HTTP
// injection 503, /health 503), delivers what it holds, and stops; what it could not deliver in
// time stays in the spool and the next start on that spool delivers it. Asked through the API
// (token), or by SIGTERM when the node was started with --drain-on-sigterm.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startCli } from '../helpers/cli.ts';
import { startReceiver } from '../helpers/receiver.ts';
import { FAST_RETRY, startTestRelay, submit } from '../helpers/relay.ts';
import { until } from '../helpers/wait.ts';

const TOKEN = 'drain-test-token';

async function closedPort(): Promise<number> {
  const probe = await startReceiver();
  await probe.close();
  return probe.port;
}

function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

test('drain through the API: no new mail, the deadline passes, what is left is delivered by the next start on the spool', { timeout: 30_000 }, async (t) => {
  const receiverPort = await closedPort(); // receiver down: nothing can be delivered during the drain
  const yaml = `http: { token: ${TOKEN} }\n${FAST_RETRY}`;
  const relay = await startTestRelay(yaml, { smarthost: `127.0.0.1:${receiverPort}` });
  t.after(() => relay.stop());
  for (let i = 0; i < 3; i++) await submit(relay.smtpPort, { from: 'a@sender.test', to: `b${i}@dest.test`, subject: `held ${i}`, text: 'x' });

  const drain = (body: unknown, token?: string) => fetch(`${relay.httpUrl}/api/v1/drain`, {
    method: 'POST', body: JSON.stringify(body), headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  assert.equal((await drain({})).status, 401, 'a drain needs the token');
  const badTimeout = await drain({ timeout: 'soon' }, TOKEN);
  assert.equal(badTimeout.status, 400);
  assert.match(((await badTimeout.json()) as { error: string }).error, /timeout: expected a duration such as 90s or 10m, got "soon"/);
  assert.equal((await fetch(`${relay.httpUrl}/health`)).status, 200, 'a refused request started nothing');

  const started = await drain({ timeout: '1s' }, TOKEN);
  assert.equal(started.status, 202);
  const status = await started.json() as { draining: boolean; queued: number; deadline: string };
  assert.equal(status.draining, true);
  assert.equal(status.queued, 3);
  const again = await (await drain({ timeout: '1h' }, TOKEN)).json() as { deadline: string };
  assert.equal(again.deadline, status.deadline, 'a second request changes nothing');

  const health = await fetch(`${relay.httpUrl}/health`);
  assert.equal(health.status, 503);
  assert.equal(((await health.json()) as { status: string }).status, 'draining');
  const injected = await fetch(`${relay.httpUrl}/api/v1/messages`, {
    method: 'POST', headers: { authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ from: 'a@sender.test', to: ['c@dest.test'], subject: 's', text: 't' }),
  });
  assert.equal(injected.status, 503);
  assert.match(((await injected.json()) as { error: string }).error, /draining/);
  while (!(await refusesConnections(relay.smtpPort))) await new Promise((r) => setTimeout(r, 20)); // the SMTP listener closes

  await relay.finished;
  const ended = relay.events().find((e) => e.event === 'drain-ended');
  assert.deepEqual({ left: ended?.left, timedOut: ended?.timedOut, queuedAtStart: ended?.queuedAtStart }, { left: 3, timedOut: true, queuedAtStart: 3 });
  assert.equal(relay.events().at(-1)?.event, 'stopped');

  // handed back: a later start on the spool, with the receiver up, delivers them
  const receiver = await startReceiver({}, receiverPort);
  t.after(() => receiver.close());
  const next = await startTestRelay(yaml, { smarthost: receiver.address }, relay.dir);
  t.after(() => next.stop());
  const arrived = await receiver.waitFor(3);
  assert.deepEqual(arrived.map((m) => /^Subject: (.*)$/m.exec(m.text)?.[1]).sort(), ['held 0', 'held 1', 'held 2']);
});

test('relay start --drain-on-sigterm: SIGTERM drains, delivers what the node holds, exits 0; relay drain checks its flags', { timeout: 30_000 }, async (t) => {
  const receiverPort = await closedPort();
  const dir = mkdtempSync(join(tmpdir(), 'mailops-drain-'));
  const config = join(dir, 'relay.yaml');
  writeFileSync(config, `smtp: { listen: "127.0.0.1:0" }
http: { listen: "127.0.0.1:0", token: ${TOKEN} }
spool: { dir: "${join(dir, 'spool')}" }
${FAST_RETRY}`);
  const { child, output } = await startCli(['relay', 'start', '--config', config, '--smarthost', `127.0.0.1:${receiverPort}`, '--drain-on-sigterm', '30s'], /"event":"listening".*\n/);
  t.after(() => child.exitCode === null && child.kill('SIGKILL'));
  const listening = JSON.parse(output().split('\n').find((line) => line.includes('"listening"'))!);
  const smtpPort = Number(String(listening.smtp[0]).split(':').pop());
  for (let i = 0; i < 2; i++) await submit(smtpPort, { from: 'a@sender.test', to: `b${i}@dest.test`, subject: `term ${i}`, text: 'x' });

  const badFlag = await runCli(['relay', 'drain', '--node', `http://${listening.http}`, '--token', TOKEN, '--timeout', 'soon']);
  assert.equal(badFlag.code, 2);
  assert.match(badFlag.stderr, /--timeout: expected a duration such as 90s, 10m or 1h, got "soon"/);

  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  await until('the drain under way', () => /"event":"drain-started"/.test(output()));
  const health = await fetch(`http://${listening.http}/health`);
  assert.equal(health.status, 503, 'still running, draining: the receiver is down');
  const receiver = await startReceiver({}, receiverPort);
  t.after(() => receiver.close());
  assert.equal(await exit, 0);
  assert.equal(receiver.delivered.length, 2, 'both delivered before the process exited');
  assert.match(output(), /"event":"drain-ended".*"left":0,"timedOut":false/);
});

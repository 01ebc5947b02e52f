// The HTTP API and the queue commands against a running node, local administration through the
// spool's admin token, and an orderly stop on SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { startTestRelay } from '../helpers/relay.ts';
import { runCli, startCli } from '../helpers/cli.ts';
import { RawSmtp } from '../helpers/smtp-client.ts';

const TOKEN = 'test-token-123';

test('health, queue status, metrics, injection with a token, event stream, queue commands', async (t) => {
  // deliveries go to a closed port: everything stays queued for inspection
  const relay = await startTestRelay(`http: { token: ${TOKEN} }\n`, { smarthost: '127.0.0.1:9' });
  t.after(() => relay.stop());
  const api = (path: string, init?: RequestInit) => fetch(`${relay.httpUrl}${path}`, init);
  const json = (res: Response): Promise<any> => res.json();

  assert.deepEqual((await json(await api('/health'))).status, 'ok');

  // SSE: subscribe first, filtered to received events of the bulk lane; it shows addresses, so
  // with http.token set it needs a token, as do the queued messages and the suppression list
  const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
  for (const path of ['/api/v1/events', '/api/v1/queue/messages', '/api/v1/suppressions']) {
    const refused = await api(path);
    assert.equal(refused.status, 401, path);
    assert.equal((await json(refused)).error, 'missing or wrong bearer token');
    assert.equal((await api(path, bearer('wrong'))).status, 401, path);
  }
  assert.equal((await api('/api/v1/queue')).status, 200, 'counts show no addresses');
  const events = await api('/api/v1/events?event=received&lane=bulk', bearer(TOKEN));
  const reader = events.body!.getReader();

  const inject = (body: unknown, token = TOKEN) => api('/api/v1/messages', {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  assert.equal((await inject({ from: 'a@sender.test', to: ['b@dest.test'], subject: 's', text: 't' }, 'wrong')).status, 401);
  const bad = await inject({ from: 'a@sender.test', to: [], subject: 's', text: 't' });
  assert.equal(bad.status, 400);
  assert.match((await json(bad)).error, /^to: expected a non-empty list/);
  const unknownLane = await inject({ from: 'a@sender.test', to: ['b@dest.test'], lane: 'urgent', subject: 's', text: 't' });
  assert.equal(unknownLane.status, 422);
  assert.match((await json(unknownLane)).error, /550 5\.7\.0 Unknown lane "urgent"/);

  const accepted = await inject({ from: 'a@sender.test', to: ['b@dest.test', 'c@gmail.test'], lane: 'bulk', subject: 'Hello', text: 'Body' });
  assert.equal(accepted.status, 202);
  const { id, lane } = await json(accepted);
  assert.match(id, /^[0-9A-F]{8}$/);
  assert.equal(lane, 'bulk');
  const raw = await inject({ from: 'r@app.test', to: ['u@dest.test'], lane: 'transactional', raw: 'From: r@app.test\nSubject: Reset\n\nlink\n' });
  assert.equal(raw.status, 202);

  let sse = '';
  while (!sse.includes(`"id":"${id}"`)) sse += new TextDecoder().decode((await reader.read()).value);
  await reader.cancel();
  assert.doesNotMatch(sse, /"lane":"transactional"/);

  // wait until both messages have had their first (failed) attempt
  for (let i = 0; i < 200 && relay.events().filter((e) => e.event === 'deferred').length < 3; i++) await new Promise((r) => setTimeout(r, 20));
  const queue = await json(await api('/api/v1/queue'));
  assert.equal(queue.total, 2);
  assert.deepEqual(queue.lanes.bulk, { queued: 0, deferred: 2, active: 0, oldestAgeSeconds: queue.lanes.bulk.oldestAgeSeconds });
  assert.equal(queue.lanes.transactional.deferred, 1);
  assert.equal(queue.lanes.member.queued + queue.lanes.member.deferred, 0);

  const metrics = await (await api('/metrics')).text();
  assert.match(metrics, /^mailops_queue_recipients\{lane="bulk",state="deferred"\} 2$/m);
  assert.match(metrics, /^mailops_received_total\{lane="transactional"\} 1$/m);
  assert.match(metrics, /^mailops_deferred_total\{lane="bulk"\} 2$/m);
  assert.match(metrics, /^mailops_delivery_latency_seconds_count\{lane="bulk"\} 0$/m);
  assert.match(metrics, /^mailops_spool_wal_bytes [1-9]\d*$/m);

  // the queue commands, through the real CLI
  const node = ['--node', relay.httpUrl];
  const summary = await runCli(['queue', 'summary', ...node]);
  assert.equal(summary.code, 0, summary.stderr);
  assert.match(summary.stdout, /lane bulk/);
  assert.match(summary.stdout, /^gmail\.test\s+1\s+1/m);
  const list = JSON.parse((await runCli(['queue', 'list', '--lane', 'bulk', '--json', ...node], { env: { MAILOPS_TOKEN: TOKEN } })).stdout);
  assert.deepEqual(list.messages.map((m: { id: string }) => m.id), [id]);
  assert.equal(list.messages[0].recipients.length, 2);
  assert.match(list.messages[0].recipients[0].lastReply, /^451 4\.4\.1 /);

  const noToken = await runCli(['queue', 'delete', '--domain', 'gmail.test', ...node], { env: { MAILOPS_TOKEN: '' } });
  assert.equal(noToken.code, 2);
  assert.match(noToken.stderr, /needs --token or MAILOPS_TOKEN/);
  // the relay's own user, through its spool: the local admin token, accepted beside http.token
  const admin = JSON.parse(readFileSync(join(relay.dir, 'spool', 'admin.token'), 'utf8'));
  assert.equal(admin.node, relay.httpUrl);
  assert.equal((await api('/api/v1/queue/messages', bearer(admin.token))).status, 200);
  const listed = await runCli(['queue', 'list', '--json', '--spool', join(relay.dir, 'spool')], { env: { MAILOPS_TOKEN: '' } });
  assert.equal(listed.code, 0, listed.stderr);
  assert.equal(JSON.parse(listed.stdout).messages.length, 2);
  const deleted = await runCli(['queue', 'delete', '--domain', 'gmail.test', ...node], { env: { MAILOPS_TOKEN: TOKEN } });
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.match(deleted.stdout, /^1 recipient\(s\) deleted/);
  const retried = await runCli(['queue', 'retry', id, '--token', TOKEN, ...node]);
  assert.match(retried.stdout, /^1 recipient\(s\) due now/);
  const after = await json(await api('/api/v1/queue'));
  assert.equal(after.total, 2);
  assert.equal(after.lanes.bulk.queued + after.lanes.bulk.deferred + after.lanes.bulk.active, 1);
});

test('local administration on the defaults: the relay\'s own user retries and deletes without a token; a request without it is refused', async (t) => {
  // no http.token, the default spool (./var/spool of the relay's working directory); ports of its
  // own so as not to meet another relay, deliveries to a closed port: mail stays queued
  const dir = mkdtempSync(join(tmpdir(), 'mailops-local-'));
  const { child, output } = await startCli(['relay', 'start', '--smtp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--smarthost', '127.0.0.1:9'],
    /"event":"listening".*\n/, { cwd: dir });
  t.after(() => child.kill('SIGKILL'));
  const listening = JSON.parse(output().split('\n')[0]);
  const file = join(dir, 'var', 'spool', 'admin.token');
  assert.equal(statSync(file).mode & 0o777, 0o600, 'only the relay\'s user can read the admin token');
  const { node } = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(node, `http://${listening.http}`);
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: Number(listening.smtp[0].split(':').pop()), ignoreTLS: true });
  for (const to of ['a@dest.test', 'b@other.test']) await transport.sendMail({ from: 'news@sender.test', to, subject: 's', text: 't' });
  const local = { cwd: dir, env: { MAILOPS_TOKEN: '' } }; // no --node, no --spool, no token: the defaults
  const list = await runCli(['queue', 'list', '--json'], local);
  assert.equal(list.code, 0, list.stderr);
  const ids = JSON.parse(list.stdout).messages.map((m: { id: string }) => m.id);
  assert.equal(ids.length, 2);

  // a request that does not come through the spool: refused
  const retry = (init: RequestInit = {}) => fetch(`${node}/api/v1/queue/retry`, { method: 'POST', body: JSON.stringify({ id: ids[0] }), ...init });
  const refused = await retry();
  assert.equal(refused.status, 403);
  assert.match(((await refused.json()) as { error: string }).error, /no http\.token configured; changes through the API need the local admin token \(.*admin\.token/);
  assert.equal((await retry({ headers: { authorization: 'Bearer guessed' } })).status, 403);
  const remote = await runCli(['queue', 'retry', ids[0], '--node', node], { env: { MAILOPS_TOKEN: '' } });
  assert.equal(remote.code, 2);
  assert.match(remote.stderr, /needs --token or MAILOPS_TOKEN/);

  const retried = await runCli(['queue', 'retry', ids[0]], local);
  assert.equal(retried.code, 0, retried.stderr);
  assert.match(retried.stdout, /^1 recipient\(s\) due now/);
  const deleted = await runCli(['queue', 'delete', '--domain', 'other.test'], local);
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.match(deleted.stdout, /^1 recipient\(s\) deleted/);
  // from anywhere, naming the spool
  const named = await runCli(['queue', 'delete', ids[0], '--spool', join(dir, 'var', 'spool')], { env: { MAILOPS_TOKEN: '' } });
  assert.equal(named.code, 0, named.stderr);
  assert.equal(((await (await fetch(`${node}/api/v1/queue`)).json()) as { total: number }).total, 0);

  // an orderly stop takes the token away with it
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
  assert.equal(existsSync(file), false);
  transport.close();
});

test('SIGTERM: new sessions get 421, the node exits 0 and keeps its queue', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mailops-stop-'));
  const config = join(dir, 'relay.yaml');
  writeFileSync(config, `smtp: { listen: "127.0.0.1:0" }\nhttp: { listen: "127.0.0.1:0" }\nspool: { dir: "${join(dir, 'spool')}" }\ndelivery: { smarthost: "127.0.0.1:9" }\n`);
  const { child, output } = await startCli(['relay', 'start', '--config', config], /"event":"listening".*\n/);
  t.after(() => child.kill('SIGKILL'));
  const port = Number(JSON.parse(output().split('\n')[0]).smtp[0].split(':').pop());
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port, ignoreTLS: true });
  await transport.sendMail({ from: 'a@sender.test', to: 'b@dest.test', subject: 's', text: 't' });
  const idle = await RawSmtp.open(port); // an idle session when the signal arrives
  assert.match(await idle.reply(), /^220 /);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  assert.match(await idle.reply(), /^421 /);
  assert.equal(await exited, 0);
  assert.match(output(), /"event":"stopped","queued":1/);
});

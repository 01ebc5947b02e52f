// The delivery logs on one node (its local store): a record for every outcome, searched through
// the API and the real CLI; tenants kept apart everywhere a tenant token reads (records, summary,
// event stream, queue listing, live tail); `mailops logs --follow` sees a delivery within a
// second; the local store's retention; config and filter errors naming what was wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRelayConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { LocalStore } from '../../src/logs/local-store.ts';
import { rowsOf } from '../../src/logs/record.ts';
import { Tenants } from '../../src/logs/tenants.ts';
import { runCli, startCli } from '../helpers/cli.ts';
import { startReceiver } from '../helpers/receiver.ts';
import { startTestRelay, submit } from '../helpers/relay.ts';
import { until } from '../helpers/wait.ts';

const OPERATOR = 'operator-token-0123456789';
const ALPHA = 'alpha-token-0123456789ab';
const BETA = 'beta-token-0123456789abc';

const CONFIG = `http: { token: ${OPERATOR} }
tenants:
  - { name: alpha, senderDomains: [alpha.example], token: ${ALPHA} }
  - { name: beta, users: [app-beta], token: ${BETA} }
lanes:
  transactional: { retry: { initial: 200ms, max: 1s } }
  member: { retry: { initial: 300ms, max: 300ms }, lifetime: 3s }
  bulk: { retry: { initial: 200ms, max: 1s } }
delivery: { unreachableBackoff: 300ms, idleTimeout: 200ms }
`;

test('records for every outcome; tenants apart in the API, the event stream, the queue, the CLI and the live tail', async (t) => {
  const receiver = await startReceiver({
    rcpt: (a) => (a.startsWith('unknown@') ? [550, '5.1.1 user unknown'] : a.startsWith('later@') ? [451, '4.2.0 greylisted, try again later'] : undefined),
  });
  const relay = await startTestRelay(CONFIG, { smarthost: receiver.address });
  t.after(async () => { await relay.stop(); await receiver.close(); });
  const api = (path: string, token?: string) => fetch(`${relay.httpUrl}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  const records = async (query: string, token = OPERATOR) => {
    const res = await api(`/api/v1/logs?limit=1000&${query}`, token);
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json() as any).records as Record<string, any>[];
  };
  const seen = (event: string, rcpt: string) => relay.events().some((e) => e.event === event && (e.rcpt === rcpt || (Array.isArray(e.rcpt) && e.rcpt.includes(rcpt))));

  // alpha by its sender domain: delivered, failed (550), deferred then expired (451 past the lane's lifetime)
  await submit(relay.smtpPort, { from: 'news@alpha.example', to: ['ok1@dest.test', 'unknown@dest.test', 'later@dest.test'], subject: 'a', text: 'a' });
  // beta by the tenant header its generator sets
  await submit(relay.smtpPort, { from: 'app@beta.example', to: ['beta-secret@dest.test'], subject: 'b', text: 'b', headers: { 'X-Mailops-Tenant': 'beta' } });

  // while later@ waits for its retry, each tenant's queue listing shows its own messages only
  await until('a deferral', () => seen('deferred', 'later@dest.test'));
  const queued = async (token: string) => JSON.stringify(await (await api('/api/v1/queue/messages', token)).json());
  assert.match(await queued(ALPHA), /later@dest\.test/);
  assert.doesNotMatch(await queued(BETA), /later@dest\.test/);
  assert.equal((await api('/api/v1/queue/messages')).status, 401, 'addresses need a read token');
  assert.equal((await api('/api/v1/suppressions', ALPHA)).status, 403, 'the suppression list is every tenant\'s');
  const change = await fetch(`${relay.httpUrl}/api/v1/queue/retry`, { method: 'POST', headers: { authorization: `Bearer ${ALPHA}`, 'content-type': 'application/json' }, body: '{"domain":"dest.test"}' });
  assert.equal(change.status, 403);

  await until('every outcome', () => seen('delivered', 'ok1@dest.test') && seen('delivered', 'beta-secret@dest.test') && seen('failed', 'unknown@dest.test')
    && seen('expired', 'later@dest.test') && relay.events().filter((e) => e.event === 'dsn').length === 2, 15_000);
  // the address is suppressed now: the next message to it fails at once
  await submit(relay.smtpPort, { from: 'news@alpha.example', to: ['unknown@dest.test'], subject: 'again', text: 'a' });
  await until('suppressed', () => relay.events().some((e) => e.event === 'failed' && e.suppressed === true));
  await until('DSNs delivered', () => receiver.delivered.filter((m) => m.to[0] === 'news@alpha.example').length === 2);

  // every outcome has its record, with the fields of its log event
  const all = await records('');
  const events = new Set(all.map((r) => r.event));
  for (const e of ['received', 'deferred', 'delivered', 'failed', 'expired', 'suppressed', 'bounced']) assert.ok(events.has(e), `a ${e} record; have ${[...events]}`);
  const delivered = all.find((r) => r.event === 'delivered' && r.rcpt === 'ok1@dest.test')!;
  assert.equal(delivered.tenant, 'alpha');
  assert.equal(delivered.from, 'news@alpha.example');
  assert.equal(delivered.lane, 'member');
  assert.equal(delivered.mx, '127.0.0.1');
  assert.equal(delivered.ip, '127.0.0.1');
  assert.equal(delivered.egress, 'default');
  assert.equal(delivered.provider, 'dest.test', 'no named provider profile: the recipient domain');
  assert.equal(delivered.tls, false);
  assert.equal(delivered.attempt, 1);
  assert.equal(delivered.reply, '250 Ok: stored');
  assert.ok(delivered.queuedMs >= 0 && delivered.deliveryMs >= 0);
  assert.match(delivered.id, /^[0-9A-F]{8}$/);
  assert.ok(delivered.node);
  const failed = all.find((r) => r.event === 'failed')!;
  assert.deepEqual([failed.class, failed.code, failed.reply], ['bad-mailbox', '5.1.1', '550 5.1.1 user unknown']);
  const deferred = all.find((r) => r.event === 'deferred')!;
  assert.deepEqual([deferred.rcpt, deferred.class, deferred.code], ['later@dest.test', 'other', '4.2.0']);
  assert.ok(deferred.nextAttempt, 'fields without a column come back too');
  assert.equal(all.filter((r) => r.event === 'bounced').length, 2, 'a DSN for the failure and one for the expiry');
  assert.equal(all.find((r) => r.event === 'expired')!.attempt > 1, true);
  const received = all.filter((r) => r.event === 'received' && r.id === delivered.id);
  assert.deepEqual(received.map((r) => r.rcpt).sort(), ['later@dest.test', 'ok1@dest.test', 'unknown@dest.test'], 'a received record per recipient');
  assert.equal(received[0].client, '127.0.0.1');

  // a recipient's history, and the other filters
  // (sorted: a delivery may start before the intake's fsync ends, so an outcome can be logged before its `received`)
  const history = await records('recipient=unknown@dest.test');
  assert.deepEqual(history.map((r) => r.event).sort(), ['bounced', 'failed', 'received', 'received', 'suppressed']);
  assert.deepEqual((await records('event=failed,suppressed&class=bad-mailbox')).map((r) => r.event).sort(), ['failed', 'suppressed']);
  assert.equal((await records('reply=GREYLISTED')).every((r) => r.rcpt === 'later@dest.test'), true);
  assert.deepEqual((await records(`id=${delivered.id}&event=delivered`)).map((r) => r.rcpt), ['ok1@dest.test']);
  assert.equal((await records('since=1h&until=30m')).length, 0);
  const bad = await api('/api/v1/logs?since=soon', OPERATOR);
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as any).error, /^since: expected a duration back from now/);

  // a tenant's token: its own records, counts and graphs only, and no asking for another's
  const alphaRecords = await records('', ALPHA);
  assert.ok(alphaRecords.length > 10);
  assert.deepEqual([...new Set(alphaRecords.map((r) => r.tenant))], ['alpha']);
  assert.doesNotMatch(JSON.stringify(alphaRecords), /beta-secret/);
  assert.deepEqual((await records('', BETA)).map((r) => `${r.event} ${r.rcpt}`).sort(), ['delivered beta-secret@dest.test', 'received beta-secret@dest.test']);
  assert.equal((await api('/api/v1/logs?tenant=beta', ALPHA)).status, 403);
  assert.equal((await api('/api/v1/logs')).status, 401);
  assert.equal((await api('/api/v1/logs/status', ALPHA)).status, 403);
  const summary = async (token: string): Promise<any> => (await api('/api/v1/logs/summary?bucket=1m&since=1h', token)).json();
  const [alphaSummary, betaSummary, everything] = [await summary(ALPHA), await summary(BETA), await summary(OPERATOR)];
  assert.equal(betaSummary.totals.delivered, 1);
  assert.equal(alphaSummary.totals.delivered, 3, 'ok1 and the two DSNs');
  assert.equal(everything.totals.delivered, 4);
  const perMinute = (events: number[]) => events.reduce((a, b) => a + b, 0);
  assert.equal(perMinute(everything.series.events.delivered), 4, 'every record in a minute of the series');
  assert.equal(perMinute(everything.series.events.received), everything.totals.received);
  assert.ok(everything.series.times.length >= 60 && everything.series.times.length <= 61);
  assert.doesNotMatch(JSON.stringify(alphaSummary), /beta/);
  assert.ok(alphaSummary.reasons.bounced.some((r: { class: string; code: string }) => r.class === 'bad-mailbox' && r.code === '5.1.1'));
  assert.ok(alphaSummary.latency.lanes.member.delivered >= 1);

  // the event stream, narrowed the same way
  const stream = await api('/api/v1/events', ALPHA);
  const reader = stream.body!.getReader();
  await submit(relay.smtpPort, { from: 'app@beta.example', to: ['beta-secret2@dest.test'], subject: 'b', text: 'b', headers: { 'X-Mailops-Tenant': 'beta' } });
  await submit(relay.smtpPort, { from: 'news@alpha.example', to: ['ok2@dest.test'], subject: 'a', text: 'a' });
  let sse = '';
  while (!sse.includes('ok2@dest.test')) sse += new TextDecoder().decode((await reader.read()).value);
  await reader.cancel();
  assert.doesNotMatch(sse, /beta-secret2/);

  // the CLI: the same scope, errors naming the flag
  const node = ['logs', '--node', relay.httpUrl];
  const cliAlpha = await runCli([...node, '--token', ALPHA, '--json', '--limit', '1000']);
  assert.equal(cliAlpha.code, 0, cliAlpha.stderr);
  const lines = cliAlpha.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(lines.length > 10 && lines.every((r) => r.tenant === 'alpha'));
  const other = await runCli([...node, '--token', ALPHA, '--tenant', 'beta']);
  assert.equal(other.code, 1);
  assert.match(other.stderr, /HTTP 403: this token reads tenant alpha's records only/);
  const badFlag = await runCli([...node, '--since', 'soon']);
  assert.equal(badFlag.code, 2);
  assert.match(badFlag.stderr, /^mailops: --since: expected a duration back from now/m);
  const text = await runCli([...node, '--token', OPERATOR, '--recipient', 'unknown@dest.test']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, / failed [0-9A-F]{8} member tenant=alpha from=<news@alpha\.example> to=<unknown@dest\.test> relay=127\.0\.0\.1 tls=no attempt=1 delay=\S+ class=bad-mailbox reply="550 5\.1\.1 user unknown"/);
  const sum = await runCli([...node, '--token', OPERATOR, '--summary', '--since', '1h', '--bucket', '10m']);
  assert.equal(sum.code, 0, sum.stderr);
  for (const section of ['Grand totals', 'Per 10m', 'Per provider', 'Top deferral reasons', 'Top bounce reasons', 'Receipt to delivery per lane']) assert.ok(sum.stdout.includes(section), section);
  assert.match(sum.stdout, /^ {2}delivered +\d+$/m);
  assert.match(sum.stdout, /bad-mailbox 5\.1\.1 +550 5\.1\.1 user unknown/);
  assert.match(sum.stdout, /^ {2}dest\.test +\d+/m);

  // --follow: a new delivery within a second, and never another tenant's
  const follow = await startCli([...node, '--token', ALPHA, '--follow', '--json', '--limit', '0'], /mailops: following /);
  t.after(() => follow.child.kill());
  let arrived: { record: Record<string, any>; at: number } | undefined;
  let out = '';
  follow.child.stdout!.on('data', (d) => {
    out += d;
    for (const line of out.slice(0, out.lastIndexOf('\n') + 1).split('\n').filter(Boolean)) {
      const record = JSON.parse(line);
      if (!arrived && record.event === 'delivered' && record.rcpt === 'ok3@dest.test') arrived = { record, at: Date.now() };
    }
  });
  await submit(relay.smtpPort, { from: 'app@beta.example', to: ['beta-secret3@dest.test'], subject: 'b', text: 'b', headers: { 'X-Mailops-Tenant': 'beta' } });
  await submit(relay.smtpPort, { from: 'news@alpha.example', to: ['ok3@dest.test'], subject: 'a', text: 'a' });
  const got = await until('the delivery on --follow', () => arrived);
  const delay = got.at - Date.parse(got.record.time);
  assert.ok(delay < 1000, `--follow printed the delivery ${delay} ms after it happened`);
  await until('beta\'s delivery', () => seen('delivered', 'beta-secret3@dest.test'));
  assert.doesNotMatch(out, /beta-secret/);
  assert.match(out, /"event":"received".*ok3@dest\.test/);
});

test('the local store: retention by age and by size, a slice at a time', () => {
  const store = new LocalStore(join(mkdtempSync(join(tmpdir(), 'mailops-logstore-')), 'logs.sqlite'));
  const day = 86_400_000;
  const now = Date.now();
  let seq = 1;
  const add = (ago: number, n: number) => {
    const rows = [];
    for (let i = 0; i < n; i++) {
      rows.push(...rowsOf({ time: new Date(now - ago).toISOString(), event: 'delivered', id: '0000000A', rcpt: `r${seq}@x.test`, lane: 'bulk', reply: '250 ok' }, seq));
      seq++;
    }
    store.insert(rows);
  };
  add(10 * day, 30_000);
  add(1000, 500);
  assert.equal(store.status().records, 30_500);
  // first step: the oldest slice of what is past retention; then the rest; then nothing
  assert.deepEqual(store.trimStep(now - 7 * day, 1 << 30), { from: 1, to: 20_000 });
  assert.deepEqual(store.trimStep(now - 7 * day, 1 << 30), { from: 20_001, to: 30_000 });
  assert.equal(store.trimStep(now - 7 * day, 1 << 30), undefined);
  assert.equal(store.status().records, 500);
  assert.equal(store.query({}, 1000).length, 500);
  // over the size bound: the oldest go whatever their age
  assert.deepEqual(store.trimStep(0, 1), { from: 30_001, to: 30_500 });
  assert.equal(store.status().records, 0);
  store.close();
});

test('tenants: user before header before sender domain (and its parents); an unknown tenant header is refused', () => {
  const tenants = new Tenants([
    { name: 'alpha', senderDomains: ['alpha.example'], users: ['app-alpha'], token: 'x'.repeat(16) },
    { name: 'beta', senderDomains: ['beta.example'], users: [], token: 'y'.repeat(16) },
  ]);
  assert.equal(tenants.of({ sender: 'a@news.alpha.example' }), 'alpha');
  assert.equal(tenants.of({ sender: 'a@beta.example', user: 'app-alpha', header: 'beta' }), 'alpha');
  assert.equal(tenants.of({ sender: 'a@alpha.example', header: 'Beta' }), 'beta');
  assert.equal(tenants.of({ sender: 'a@other.example' }), undefined);
  assert.equal(tenants.of({ sender: '' }), undefined);
  assert.throws(() => tenants.of({ sender: 'a@alpha.example', header: 'gamma' }), /Unknown tenant "gamma"/);
  assert.equal(tenants.byBearer('y'.repeat(16)), 'beta');
  assert.equal(tenants.byBearer('y'.repeat(15)), undefined);
});

test('config: every mistake in tenants and log is reported with its key path', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mailops-logconf-'));
  const file = join(dir, 'relay.yaml');
  writeFileSync(file, `http: { token: operator-token-0123456789 }
tenants:
  - { name: alpha, senderDomains: [alpha.example], token: short }
  - { name: Beta!, senderDomains: [alpha.example], token: operator-token-0123456789 }
  - { name: gamma, users: [u], token: gamma-token-0123456789, colour: red }
log:
  tenantHeader: "X Tenant"
  store: { retention: 10m, maxSize: 10KB }
  postgres: { url: mysql://db, retention: 2h }
`);
  let error: ConfigError | undefined;
  try {
    loadRelayConfig(file);
  } catch (err) {
    error = err as ConfigError;
  }
  assert.ok(error instanceof ConfigError);
  const problems = error.problems.join('\n');
  for (const expected of [
    /tenants\[0\]\.token: expected a token of at least 16 characters/,
    /tenants\[1\]\.name: expected a tenant name/,
    /tenants\[1\]\.senderDomains\[0\]: the sender domain "alpha\.example" is already tenants\[0\]'s/,
    /tenants\[1\]\.token: is the same as http\.token/,
    /tenants\[2\]\.colour: unknown key/,
    /log\.tenantHeader: expected a header field name/,
    /log\.store\.retention: expected at least 1h, got "10m"/,
    /log\.store\.maxSize: expected at least 1MB, got "10KB"/,
    /log\.postgres\.url: expected a postgres:\/\/ URL/,
    /log\.postgres\.retention: expected at least 1d/,
  ]) assert.match(problems, expected);
  assert.doesNotMatch(problems, /operator-token/, 'a token is never shown');
});

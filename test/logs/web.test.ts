// The delivery logs' web page in headless Chromium (Debian's chromium, over the DevTools
// protocol), opened with a tenant's token: its four uPlot charts are drawn (checked in a
// screenshot: each chart's area has pixels of its series' colours), the live tail grows as mail
// is delivered, and another tenant's recipient never appears. Everything the page loads comes
// from the node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPage } from '../helpers/chromium.ts';
import { startCli } from '../helpers/cli.ts';
import { readPng, type Image } from '../helpers/png.ts';
import { startReceiver } from '../helpers/receiver.ts';
import { startTestRelay, submit } from '../helpers/relay.ts';
import { until } from '../helpers/wait.ts';

const ALPHA = 'alpha-token-0123456789ab';

const CONFIG = `tenants:
  - { name: alpha, senderDomains: [alpha.example], token: ${ALPHA} }
  - { name: beta, senderDomains: [beta.example], token: beta-token-0123456789abc }
lanes:
  member: { retry: { initial: 1h, max: 1h } }
delivery: { idleTimeout: 200ms }
`;

/** Pixels within `rect` whose colour is within `tolerance` of one of `colours` (hex). */
function countColour(image: Image, rect: { x: number; y: number; width: number; height: number }, colours: string[], tolerance = 40): number {
  const targets = colours.map((c) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)));
  let n = 0;
  for (let y = Math.max(0, Math.floor(rect.y)); y < Math.min(image.height, rect.y + rect.height); y++) {
    for (let x = Math.max(0, Math.floor(rect.x)); x < Math.min(image.width, rect.x + rect.width); x++) {
      const [r, g, b] = image.pixel(x, y);
      if (targets.some(([tr, tg, tb]) => Math.abs(r - tr) + Math.abs(g - tg) + Math.abs(b - tb) <= tolerance)) n++;
    }
  }
  return n;
}

test('the web page: charts drawn (screenshot), the live tail grows, another tenant\'s recipient never appears', async (t) => {
  const receiver = await startReceiver({
    rcpt: (a) => (a.startsWith('unknown@') ? [550, '5.1.1 user unknown'] : a.startsWith('busy@') ? [452, '4.2.2 mailbox full, try again later'] : undefined),
  });
  const relay = await startTestRelay(CONFIG, { smarthost: receiver.address });
  t.after(async () => { await relay.stop(); await receiver.close(); });
  await submit(relay.smtpPort, { from: 'news@alpha.example', to: ['ok-1@dest.test', 'ok-2@dest.test', 'busy@other.test', 'unknown@dest.test'], subject: 'a', text: 'a' });
  await submit(relay.smtpPort, { from: 'app@beta.example', to: ['beta-secret@dest.test'], subject: 'b', text: 'b' });
  await until('the first outcomes', () => ['delivered', 'deferred', 'failed'].every((e) => relay.events().some((x) => x.event === e))
    && relay.events().some((x) => x.event === 'delivered' && x.rcpt === 'beta-secret@dest.test'));

  const html = await (await fetch(`${relay.httpUrl}/logs`)).text();
  assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, 'everything from the node: no CDN');
  assert.match(html, /src="\/logs\/assets\/uPlot\.iife\.min\.js"/);

  const page = await openPage(`${relay.httpUrl}/logs?since=1h#token=${ALPHA}`);
  t.after(() => page.close());
  // (the page may still be loading: no body yet)
  const state = () => page.evaluate<{ charts?: string; following?: string; rows: number; leaked: boolean; text: string }>(`({
    charts: document.body?.dataset.charts, following: document.body?.dataset.following, rows: Number(document.body?.dataset.tailRows || 0),
    leaked: document.documentElement.outerHTML.includes('beta-secret'), text: document.getElementById('tail')?.innerText ?? '' })`);
  let s = await untilAsync('the page drawn and following', async () => {
    const now = await state();
    assert.equal(now.leaked, false, 'beta\'s recipient in alpha\'s page');
    return now.charts === '4' && now.following && now.rows >= 6 ? now : undefined;
  });
  const before = s.rows;
  assert.match(s.text, /ok-1@dest\.test/);

  // more mail: beta's first, then alpha's; alpha's rows arrive in order after beta's would have
  await submit(relay.smtpPort, { from: 'app@beta.example', to: ['beta-secret-live@dest.test'], subject: 'b', text: 'b' });
  await submit(relay.smtpPort, { from: 'news@alpha.example', to: ['ok-live-1@dest.test', 'ok-live-2@dest.test'], subject: 'a', text: 'a' });
  s = await untilAsync('the tail grown by the new deliveries', async () => {
    const now = await state();
    assert.equal(now.leaked, false, 'beta\'s recipient in alpha\'s page');
    return now.rows >= before + 4 && /delivered.*ok-live-2@dest\.test/.test(now.text) ? now : undefined;
  });
  assert.ok(relay.events().some((e) => e.event === 'delivered' && e.rcpt === 'beta-secret-live@dest.test'), 'beta\'s live mail was delivered (and not shown)');

  // the screenshot: each chart has drawn its series
  const png = await page.screenshot();
  const file = join(mkdtempSync(join(tmpdir(), 'mailops-logs-page-')), 'logs.png');
  writeFileSync(file, png);
  t.diagnostic(`screenshot: ${file}`);
  const image = readPng(readFileSync(file));
  const rects = await page.evaluate<Record<string, { x: number; y: number; width: number; height: number }>>(`Object.fromEntries(
    [...document.querySelectorAll('.chart')].map((el) => { const r = el.querySelector('canvas').getBoundingClientRect(); return [el.id, { x: r.x, y: r.y, width: r.width, height: r.height }]; }))`);
  const expectations: [string, string[]][] = [
    ['chart-outcomes', ['#1a7f37']], // delivered
    ['chart-reasons', ['#d97706']], // a deferral's bar
    ['chart-providers', ['#1a7f37']], // delivered bars
    ['chart-latency', ['#2563eb', '#0d9488']], // the lanes' lines
  ];
  for (const [id, colours] of expectations) {
    assert.ok(rects[id] && rects[id].width > 200 && rects[id].height > 100, `${id} has a canvas: ${JSON.stringify(rects[id])}`);
    const n = countColour(image, rects[id], colours);
    assert.ok(n >= 30, `${id}: ${n} pixels of ${colours} in the screenshot ${file}`);
  }
  assert.ok(countColour(image, rects['chart-reasons'], ['#db2777']) >= 30, 'the bounce\'s bar');
  assert.equal((await state()).leaked, false);

  // `mailops logs serve`: the same page from a process of its own, passing the browser's token on
  const serve = await startCli(['logs', 'serve', '--listen', '127.0.0.1:0', '--node', relay.httpUrl], /mailops logs serve: http:\/\/\S+\/logs/);
  t.after(() => serve.child.kill());
  const base = /mailops logs serve: (http:\/\/\S+)\/logs/.exec(serve.output())![1];
  assert.match(await (await fetch(`${base}/logs`)).text(), /<title>mailops delivery logs<\/title>/);
  assert.equal((await fetch(`${base}/api/v1/logs`)).status, 401, 'the node\'s answer, passed on');
  const viaServe = (await (await fetch(`${base}/api/v1/logs?limit=1000`, { headers: { authorization: `Bearer ${ALPHA}` } })).json()) as any;
  assert.ok(viaServe.records.length >= 10 && viaServe.records.every((r: { tenant: string }) => r.tenant === 'alpha'));
  const tail = await fetch(`${base}/api/v1/logs?follow=1&limit=3`, { headers: { authorization: `Bearer ${ALPHA}` } });
  const reader = tail.body!.getReader();
  let lines = '';
  while (!lines.includes('"following"')) lines += new TextDecoder().decode((await reader.read()).value);
  await reader.cancel();
  assert.equal(lines.trim().split('\n').filter((l) => JSON.parse(l).event).length, 3, 'three records, then following');
  assert.doesNotMatch(lines, /beta-secret/);
});

async function untilAsync<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

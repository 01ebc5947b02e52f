// report.html in a real browser: headless Chromium loads the file (no network) and the inline
// script stamps how many chart lines and bars it actually laid out with a non-zero size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseScenario } from '../../src/load/scenario/parse.ts';
import { runLoad } from '../../src/load/run.ts';
import { writeReport } from '../../src/load/report/write.ts';
import { startReceiver } from '../helpers/receiver.ts';

function dumpDom(file: string): Promise<string> {
  const profile = mkdtempSync(join(tmpdir(), 'mailops-chromium-'));
  const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, '--virtual-time-budget=2000', '--dump-dom', pathToFileURL(file).href];
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/chromium', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0 && out.includes('</html>')) resolve(out);
      else reject(new Error(`chromium exited ${code}: ${err.slice(-1000)}`));
    });
  });
}

test('report.html renders its charts in headless Chromium', async () => {
  const receiver = await startReceiver({ rcpt: (a) => (a.startsWith('unknown') ? [550, '5.1.1 user unknown'] : undefined) });
  let dir: string;
  try {
    const scenario = parseScenario({
      name: 'html-check', messages: 700, stages: [{ target: 300, duration: '1s' }, { target: 300, duration: '2s' }], connections: 4,
      transactional: { rate: 20 }, member: { rate: 20 }, bulk: { size: { median: '4KB', p95: '12KB' } }, recipients: { unknown: '3%' },
      thresholds: ['error_rate < 1%', 'send.transactional.p99 < 5s'],
    }, 'html-check.yaml');
    const report = await runLoad({ scenario, target: { kind: 'smtp', host: '127.0.0.1', port: receiver.port, url: `smtp://127.0.0.1:${receiver.port}` }, seed: 9 });
    dir = writeReport(report, mkdtempSync(join(tmpdir(), 'mailops-html-')));
  } finally {
    await receiver.close();
  }
  const html = readFileSync(join(dir, 'report.html'), 'utf8');
  assert.doesNotMatch(html, /(src|href)="https?:/, 'self-contained: nothing loaded from the network');
  const dom = await dumpDom(join(dir, 'report.html'));
  const lines = Number(/data-rendered-lines="(\d+)"/.exec(dom)?.[1]);
  const bars = Number(/data-rendered-bars="(\d+)"/.exec(dom)?.[1]);
  // throughput: accepted + failed; latency: p50 + p99 for each of three lanes; memory: rss + heap.
  assert.equal(lines, 10, `rendered chart lines: ${lines}`);
  assert.ok(bars >= 7 * 2 + 1, `rendered bars: ${bars} (phases p50/p99 and the error codes)`);
  for (const id of ['chart-throughput', 'chart-latency', 'chart-phases', 'chart-errors', 'chart-memory']) assert.match(dom, new RegExp(`<svg id="${id}"`));
  const points = [...dom.matchAll(/data-series="accepted\/s" data-points="(\d+)"/g)].map((m) => Number(m[1]));
  assert.ok(points[0] >= 3, `throughput points: ${points}`);
  assert.match(dom, /<td>550<\/td><td>5\.1\.1<\/td>/, 'the error table lists the refusal');
  assert.match(dom, /class="bad">FAIL</, 'error_rate above 1 % fails in the thresholds table');
});

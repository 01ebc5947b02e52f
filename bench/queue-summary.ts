// The queue summary (`mailops queue summary`, `mailops top`) with a large queue: N queued
// messages of 4 KB (default 500,000), one recipient each over 5,000 domains, spread over the
// last 24 hours. Reports how long a summary takes and the longest stall of the event loop
// meanwhile (the relay's receiving and delivering run there; the summary runs in a worker).
// Usage: node_modules/.bin/node bench/queue-summary.ts [MESSAGES]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Spool } from '../src/relay/spool/spool.ts';

const TOTAL = Number(process.argv[2] ?? 500_000);
const dir = mkdtempSync(join(tmpdir(), 'mailops-summary-bench-'));
const spool = new Spool(dir, { commitBatch: 5000, commitInterval: 0, lanes: ['bulk'] });
const body = Buffer.alloc(4096, 'x');
const now = Date.now();
let started = performance.now();
for (let i = 0; i < TOTAL; i += 5000) {
  const batch = [];
  for (let j = i; j < Math.min(TOTAL, i + 5000); j++) {
    const receivedAt = now - 86_400_000 + Math.floor((j / TOTAL) * 86_400_000);
    batch.push(spool.insert({ lane: 'bulk', sender: 'news@b.test', recipients: [`u${j}@d${j % 5000}.test`], client: '127.0.0.1', receivedAt, body }));
  }
  await Promise.all(batch);
}
console.log(`seeded ${TOTAL} messages in ${((performance.now() - started) / 1000).toFixed(1)} s`);

const delay = monitorEventLoopDelay({ resolution: 5 });
for (let run = 1; run <= 3; run++) {
  delay.reset();
  delay.enable();
  started = performance.now();
  const summary = await spool.summary(Date.now(), 20);
  delay.disable();
  console.log(`summary ${run}: ${summary.lanes.bulk.total} recipients in ${(performance.now() - started).toFixed(0)} ms; ` +
    `longest event-loop stall meanwhile ${(delay.max / 1e6).toFixed(1)} ms`);
}
await spool.close();
rmSync(dir, { recursive: true, force: true });

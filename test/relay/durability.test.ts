// An acknowledged message is never lost: kill -9 the relay process while it receives (receiver
// down) and again while it delivers, restart it on the same spool each time, and every message
// that got a 250 arrives. Duplicates (delivered but not yet marked when killed) are counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import nodemailer from 'nodemailer';
import { startCli } from '../helpers/cli.ts';
import { startReceiver } from '../helpers/receiver.ts';

async function startRelayProcess(config: string) {
  const { child, output } = await startCli(['relay', 'start', '--config', config], /"event":"listening".*\n/);
  const listening = JSON.parse(output().split('\n').find((line) => line.includes('"listening"'))!);
  return { child, smtpPort: Number(String(listening.smtp[0]).split(':').pop()), queued: Number(listening.queued), recoveredInFlight: Number(listening.recoveredInFlight) };
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

test('kill -9 while receiving and while delivering: every acknowledged message is delivered', { timeout: 90_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mailops-kill-'));
  const probe = await startReceiver();
  const receiverPort = probe.port;
  await probe.close(); // receiver down for the first phase
  const config = join(dir, 'relay.yaml');
  writeFileSync(config, `smtp: { listen: "127.0.0.1:0" }
http: { listen: "127.0.0.1:0" }
spool: { dir: "${join(dir, 'spool')}" }
delivery: { smarthost: "127.0.0.1:${receiverPort}", unreachableBackoff: 200ms, idleTimeout: 200ms }
lanes:
  member: { retry: { initial: 200ms, max: 500ms } }
`);

  // Phase 1: receiver down; several clients submit concurrently; kill -9 in the middle.
  let relay = await startRelayProcess(config);
  const acked = new Set<string>();
  let attempted = 0;
  const send = async (port: number, client: number) => {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port, ignoreTLS: true, pool: false });
    for (let i = 0; i < 200; i++) {
      const seq = `${client}-${i}`;
      attempted++;
      try {
        await transport.sendMail({ from: 'a@sender.test', to: 'b@dest.test', subject: `seq ${seq}`, text: 'x'.repeat(2000), headers: { 'X-Seq': seq } });
        acked.add(seq);
      } catch {
        return; // the relay died under us: this one was not acknowledged
      }
    }
  };
  const senders = [1, 2, 3, 4].map((c) => send(relay.smtpPort, c));
  while (acked.size < 150) await new Promise((r) => setTimeout(r, 5));
  await killed(relay.child);
  await Promise.all(senders);
  assert.ok(acked.size >= 150 && acked.size < attempted, `acked ${acked.size} of ${attempted} attempted`);

  // Phase 2: receiver up; restart on the same spool; kill -9 again once delivery is under way.
  const receiver = await startReceiver({ dataDelayMs: 2 }, receiverPort);
  relay = await startRelayProcess(config);
  // committed but killed before its 250 went out: at most one per client on top of the acknowledged
  assert.ok(relay.queued >= acked.size && relay.queued <= acked.size + 4, `spool holds ${relay.queued}, acknowledged ${acked.size}`);
  await receiver.waitFor(40);
  await killed(relay.child);

  // Phase 3: restart; everything acknowledged arrives.
  relay = await startRelayProcess(config);
  t.after(async () => {
    await killed(relay.child);
    await receiver.close();
  });
  const seqOf = (body: string) => /X-Seq: (\S+)/.exec(body)?.[1];
  const deadline = Date.now() + 30_000;
  for (;;) {
    const arrived = new Set(receiver.delivered.map((m) => seqOf(m.text)));
    const missing = [...acked].filter((seq) => !arrived.has(seq));
    if (missing.length === 0) break;
    if (Date.now() > deadline) assert.fail(`${missing.length} acknowledged messages never arrived: ${missing.slice(0, 10).join(', ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const seqs = receiver.delivered.map((m) => seqOf(m.text));
  const duplicates = seqs.length - new Set(seqs).size;
  t.diagnostic(`acknowledged ${acked.size}, arrived ${seqs.length} (${duplicates} duplicates after two kill -9)`);
  // A duplicate is a message delivered but not yet marked when killed: at most what was in flight,
  // which the restarted relay reports.
  assert.ok(duplicates <= relay.recoveredInFlight, `${duplicates} duplicates, ${relay.recoveredInFlight} recovered in flight`);
});

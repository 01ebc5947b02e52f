// Throughput of `mailops sink --profile accept-all` against Postfix's smtp-sink, both fed by
// Postfix's smtp-source in the same run, rounds interleaved (order alternating) so that load from
// other processes hits both alike. Prints msgs/s and CPU time per message of each server per run,
// the medians and the ratio of the rates.
//
//   node bench/sink-throughput.ts [--rounds 3] [--messages 50000] [--sessions 20] [--size 4096]
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from '../test/helpers/ports.ts';
import { cpuSeconds, rssMb } from './lib/proc.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    messages: { type: 'string', default: '50000' },
    sessions: { type: 'string', default: '20' },
    size: { type: 'string', default: '4096' },
  },
});
const rounds = Number(values.rounds);
const messages = Number(values.messages);
const SOURCE = '/usr/sbin/smtp-source';
const SINK = '/usr/sbin/smtp-sink';
const MAILOPS = fileURLToPath(new URL('../bin/mailops', import.meta.url));

async function startMailops(): Promise<{ child: ChildProcess; smtp: number; http: number }> {
  const child = spawn(process.execPath, [MAILOPS, 'sink', '--profile', 'accept-all', '--smtp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--quiet'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  for await (const chunk of child.stdout!) {
    out += chunk;
    const m = /SMTP on [^:]+:(\d+), HTTP on [^:]+:(\d+)/.exec(out);
    if (m) return { child, smtp: Number(m[1]), http: Number(m[2]) };
  }
  throw new Error(`mailops sink did not start: ${out}`);
}

async function startSmtpSink(port: number): Promise<ChildProcess> {
  const args = [...(process.getuid?.() === 0 ? ['-u', 'nobody'] : []), `127.0.0.1:${port}`, '1000'];
  const child = spawn(SINK, args, { stdio: 'inherit' });
  // smtp-sink prints nothing when ready: wait until it accepts a connection.
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1', () => {
        c.destroy();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (ok) return child;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('smtp-sink did not start');
}

async function source(port: number, pid: number): Promise<{ rate: number; cpuUsPerMsg: number }> {
  const cpu = cpuSeconds(pid);
  const rate = await timedSource(port);
  return { rate, cpuUsPerMsg: ((cpuSeconds(pid) - cpu) / messages) * 1e6 };
}

async function timedSource(port: number, count = messages): Promise<number> {
  const args = ['-d', '-s', values.sessions!, '-m', String(count), '-l', values.size!, `127.0.0.1:${port}`];
  const started = process.hrtime.bigint();
  const child = spawn(SOURCE, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`smtp-source ${args.join(' ')} exited with ${code}`);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return count / seconds;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const mailops = await startMailops();
const sinkPort = await freePort();
const postfix = await startSmtpSink(sinkPort);
const rates: Record<'mailops' | 'smtp-sink', number[]> = { mailops: [], 'smtp-sink': [] };
const cpus: Record<'mailops' | 'smtp-sink', number[]> = { mailops: [], 'smtp-sink': [] };
console.log(`smtp-source -d -s ${values.sessions} -m ${messages} -l ${values.size}; ${rounds} rounds, order alternating`);
try {
  // Warm-up, not counted: lets V8 optimise the sink's hot path before the first measured round.
  await timedSource(mailops.smtp, 5000);
  await timedSource(sinkPort, 5000);
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 ? (['mailops', 'smtp-sink'] as const) : (['smtp-sink', 'mailops'] as const);
    for (const target of order) {
      if (target === 'mailops') {
        await fetch(`http://127.0.0.1:${mailops.http}/api/v1/reset`, { method: 'POST' });
        const { rate, cpuUsPerMsg } = await source(mailops.smtp, mailops.child.pid!);
        const stats = (await (await fetch(`http://127.0.0.1:${mailops.http}/api/v1/stats`)).json()) as { received: number };
        if (stats.received !== messages) throw new Error(`mailops sink counted ${stats.received} of ${messages} messages`);
        rates.mailops.push(rate);
        cpus.mailops.push(cpuUsPerMsg);
        console.log(`round ${round} mailops sink  ${rate.toFixed(0).padStart(7)} msgs/s  ${cpuUsPerMsg.toFixed(1).padStart(5)} µs CPU/msg  (received ${stats.received}, rss ${rssMb(mailops.child.pid!).toFixed(0)} MB)`);
      } else {
        const { rate, cpuUsPerMsg } = await source(sinkPort, postfix.pid!);
        rates['smtp-sink'].push(rate);
        cpus['smtp-sink'].push(cpuUsPerMsg);
        console.log(`round ${round} smtp-sink     ${rate.toFixed(0).padStart(7)} msgs/s  ${cpuUsPerMsg.toFixed(1).padStart(5)} µs CPU/msg`);
      }
    }
  }
  const a = median(rates.mailops);
  const b = median(rates['smtp-sink']);
  console.log(`median: mailops sink ${a.toFixed(0)} msgs/s, smtp-sink ${b.toFixed(0)} msgs/s, ratio ${(a / b).toFixed(2)} (target >= 0.80)`);
  console.log(`median CPU per message: mailops sink ${median(cpus.mailops).toFixed(1)} µs, smtp-sink ${median(cpus['smtp-sink']).toFixed(1)} µs`);
} finally {
  mailops.child.kill('SIGTERM');
  postfix.kill('SIGTERM');
}

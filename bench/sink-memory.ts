// Memory of `mailops sink` over a long run: N messages (default 1 M), each with a unique
// X-Mailops-Load run+seq in one of three lanes, to a few thousand domains routed to every profile
// (accept-all forced, so nothing is refused). Prints the sink's RSS every 100 k messages; the
// counters, latency histograms and duplicate bitsets must keep it flat.
//
//   node bench/sink-memory.ts [--messages 1000000] [--connections 16] [--size 4096]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { messages: { type: 'string', default: '1000000' }, connections: { type: 'string', default: '16' }, size: { type: 'string', default: '4096' } },
});
const total = Number(values.messages);
const connections = Number(values.connections);
const body = `${'x'.repeat(76)}\r\n`.repeat(Math.ceil(Number(values.size) / 78));
const MAILOPS = fileURLToPath(new URL('../bin/mailops', import.meta.url));
const lanes = ['transactional', 'member', 'bulk'];
const domains = ['gmail.com', 'gmx.net', 'web.de', 't-online.de', 'outlook.com', 'yahoo.de'];

const child = spawn(process.execPath, [MAILOPS, 'sink', '--profile', 'accept-all', '--smtp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--quiet'], { stdio: ['ignore', 'pipe', 'inherit'] });
let banner = '';
let ports: RegExpExecArray | null = null;
for await (const chunk of child.stdout!) {
  banner += chunk;
  if ((ports = /SMTP on [^:]+:(\d+), HTTP on [^:]+:(\d+)/.exec(banner))) break;
}
if (!ports) throw new Error(`mailops sink did not start: ${banner}`);
const smtpPort = Number(ports[1]);

function rssMb(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

let next = 0;
let done = 0;
const samples: [number, number][] = [];
const started = Date.now();

/** One connection: MAIL+RCPT+DATA pipelined, then the message; counts final replies. */
function worker(): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(smtpPort, '127.0.0.1');
    let pending = '';
    let stage = 'greeting';
    const sendEnvelope = () => {
      if (next >= total) {
        stage = 'quit';
        socket.end('QUIT\r\n');
        return;
      }
      const seq = next++;
      stage = 'envelope';
      socket.write(`MAIL FROM:<bench@shop.test>\r\nRCPT TO:<u${seq}@${seq % 7 === 0 ? `d${seq % 3000}.test` : domains[seq % domains.length]}>\r\nDATA\r\n`);
      (socket as Socket & { seq?: number }).seq = seq;
    };
    let envelopeReplies = 0;
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      pending += d;
      let i;
      while ((i = pending.indexOf('\r\n')) >= 0) {
        const line = pending.slice(0, i);
        pending = pending.slice(i + 2);
        if (line[3] === '-') continue;
        const code = Number(line.slice(0, 3));
        if (stage === 'greeting') {
          stage = 'ehlo';
          socket.write('EHLO bench.test\r\n');
        } else if (stage === 'ehlo') {
          sendEnvelope();
          envelopeReplies = 0;
        } else if (stage === 'envelope') {
          if (++envelopeReplies === 3) {
            if (code !== 354) return reject(new Error(`DATA: ${line}`));
            const seq = (socket as Socket & { seq?: number }).seq!;
            const header = `X-Mailops-Load: run=bench; seq=${seq}; lane=${lanes[seq % 3]}; sent=${Date.now() - (seq % 50)}\r\nFrom: bench@shop.test\r\nSubject: ${seq}\r\n\r\n`;
            stage = 'data';
            socket.write(header + body + '.\r\n');
          }
        } else if (stage === 'data') {
          if (code !== 250) return reject(new Error(`end of data: ${line}`));
          done++;
          if (done % 100_000 === 0) {
            samples.push([done, rssMb()]);
            console.log(`${String(done).padStart(8)} messages  rss ${rssMb().toFixed(1)} MB  ${(done / ((Date.now() - started) / 1000)).toFixed(0)} msgs/s`);
          }
          envelopeReplies = 0;
          sendEnvelope();
        }
      }
    });
    socket.on('close', () => resolve());
    socket.on('error', reject);
  });
}

try {
  console.log(`start rss ${rssMb().toFixed(1)} MB; ${total} messages over ${connections} connections`);
  await Promise.all(Array.from({ length: connections }, worker));
  const stats = (await (await fetch(`http://127.0.0.1:${ports[2]}/api/v1/stats`)).json()) as { received: number; duplicates: number; byLane: Record<string, { count: number; latencyMs: Record<string, number> }> };
  console.log(`received ${stats.received}, duplicates ${stats.duplicates}, lanes ${JSON.stringify(stats.byLane)}`);
  const warm = samples[Math.min(1, samples.length - 1)];
  const last = samples[samples.length - 1];
  if (warm && last) console.log(`rss after ${warm[0]}: ${warm[1].toFixed(1)} MB, after ${last[0]}: ${last[1].toFixed(1)} MB (${(((last[1] - warm[1]) / warm[1]) * 100).toFixed(1)} %)`);
} finally {
  child.kill('SIGTERM');
}

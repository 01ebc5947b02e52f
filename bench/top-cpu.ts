// CPU used by `mailops top` itself at a 1 s refresh against 3 relay nodes with traffic: two nodes
// deliver into `mailops sink --profile accept-all`, one has its receiver down (a growing deferred
// queue), and every node gets a steady trickle of injected mail over its HTTP API while the
// dashboard runs in a 160x48 tmux pane. CPU = utime+stime of the dashboard's process from
// /proc/<pid>/stat over the measurement window, as a percentage of one core.
//
//   node_modules/.bin/node bench/top-cpu.ts [--seconds 30] [--warmup 5] [--rate 20] [--backlog 300] [--interval 1s]
//
// --rate: messages per second injected into each node during the run; --backlog: messages queued
// on each node before the dashboard starts; --profile DIR: write a V8 CPU profile of the dashboard
// there. All traffic stays on 127.0.0.1.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '5' },
    rate: { type: 'string', default: '20' },
    backlog: { type: 'string', default: '300' },
    interval: { type: 'string', default: '1s' },
    profile: { type: 'string' },
  },
});
const SECONDS = Number(values.seconds);
const WARMUP = Number(values.warmup);
const RATE = Number(values.rate);
const BACKLOG = Number(values.backlog);
const MAILOPS = fileURLToPath(new URL('../bin/mailops', import.meta.url));
const TOKEN = 'bench-token';
const LANES = ['transactional', 'member', 'bulk', 'bulk', 'bulk'];
const DOMAINS = ['gmail.com', 'gmx.de', 'web.de', 't-online.de', 'outlook.com', 'yahoo.com', 'firma-a.test', 'firma-b.test'];

const dir = mkdtempSync(join(tmpdir(), 'mailops-top-bench-'));
const children: ChildProcess[] = [];
const socket = `mailops-top-bench-${process.pid}`;
const tmux = (...args: string[]) => spawnSync('tmux', ['-L', socket, '-f', '/dev/null', ...args], { encoding: 'utf8' });

function cleanup(): void {
  tmux('kill-server');
  for (const child of children) child.kill('SIGTERM');
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

/** Starts `mailops ARGS`; resolves with the first output match of `ready`. */
async function start(args: string[], ready: RegExp): Promise<RegExpExecArray> {
  const child = spawn(process.execPath, [MAILOPS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  for await (const chunk of child.stdout!) {
    out += chunk;
    const m = ready.exec(out);
    if (m) {
      clearTimeout(timer);
      child.stdout!.resume();
      child.stderr!.resume();
      return m;
    }
  }
  throw new Error(`mailops ${args.join(' ')} did not start:\n${out}`);
}

async function startRelay(name: string, smarthost: string): Promise<string> {
  const config = join(dir, `${name}.yaml`);
  writeFileSync(config, `smtp: { listen: "127.0.0.1:0" }\nhttp: { listen: "127.0.0.1:0", token: ${TOKEN} }\nspool: { dir: "${join(dir, name)}" }\n` +
    `delivery: { smarthost: "${smarthost}" }\nlog: { file: "${join(dir, `${name}.log`)}" }\n`);
  // with log.file set, the listening line still goes to the file: read the port from there
  const child = spawn(process.execPath, [MAILOPS, 'relay', 'start', '--config', config], { stdio: 'ignore' });
  children.push(child);
  const deadline = Date.now() + 20_000;
  for (;;) {
    let text = '';
    try {
      text = readFileSync(join(dir, `${name}.log`), 'utf8');
    } catch {}
    const m = /"event":"listening".*?"http":"([^"]+)"/.exec(text);
    if (m) return `http://${m[1]}`;
    if (Date.now() > deadline) throw new Error(`relay ${name} did not start:\n${text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let seq = 0;
async function inject(node: string): Promise<void> {
  const n = seq++;
  const res = await fetch(`${node}/api/v1/messages`, {
    method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ from: 'news@sender.test', to: [`u${n}@${DOMAINS[n % DOMAINS.length]}`, `v${n}@${DOMAINS[(n + 3) % DOMAINS.length]}`], lane: LANES[n % LANES.length], subject: `m${n}`, text: 'x'.repeat(2000) }),
  });
  await res.arrayBuffer();
  if (res.status !== 202) throw new Error(`inject into ${node}: HTTP ${res.status}`);
}

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
  return Number(fields[11]) + Number(fields[12]); // utime (14) + stime (15)
}

const sinkMatch = await start(['sink', '--profile', 'accept-all', '--smtp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--no-tls', '--quiet'], /SMTP on [^:]+:(\d+)/);
const sink = `127.0.0.1:${sinkMatch[1]}`;
const nodes = [await startRelay('n1', sink), await startRelay('n2', sink), await startRelay('n3', '127.0.0.1:1')];
for (const node of nodes) for (let i = 0; i < BACKLOG; i += 20) await Promise.all(Array.from({ length: Math.min(20, BACKLOG - i) }, () => inject(node)));

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const args = ['top', '--interval', values.interval!, '--token', TOKEN, ...nodes.flatMap((n) => ['--node', n])]; // the token: the event streams need it
tmux('new-session', '-d', '-x', '160', '-y', '48', '-s', 'top',
  `exec env NCURSES_NO_UTF8_ACS=1 TERM=xterm-256color ${values.profile ? `NODE_OPTIONS=${quote(`--cpu-prof --cpu-prof-dir=${values.profile}`)} ` : ''}${quote(process.execPath)} ${quote(MAILOPS)} ${args.map(quote).join(' ')} 2>${quote(join(dir, 'top.err'))}`);
const pid = Number(tmux('display', '-p', '-t', 'top', '#{pane_pid}').stdout.trim());
const deadline = Date.now() + 20_000;
while (!tmux('capture-pane', '-p', '-t', 'top').stdout.includes('3/3 node(s) up')) {
  if (Date.now() > deadline) throw new Error(`dashboard did not show 3 nodes up:\n${tmux('capture-pane', '-p', '-t', 'top').stdout}`);
  await new Promise((r) => setTimeout(r, 100));
}

// steady trickle into every node for warm-up and measurement
let injecting = true;
const trickle = nodes.map(async (node) => {
  const started = Date.now();
  let sent = 0;
  while (injecting) {
    const due = Math.floor(((Date.now() - started) / 1000) * RATE);
    while (sent < due && injecting) {
      await inject(node);
      sent++;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return sent;
});

await new Promise((r) => setTimeout(r, WARMUP * 1000));
const hz = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
const t0 = process.hrtime.bigint();
const c0 = cpuTicks(pid);
await new Promise((r) => setTimeout(r, SECONDS * 1000));
const c1 = cpuTicks(pid);
const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
injecting = false;
const sent = (await Promise.all(trickle)).reduce((a, b) => a + b, 0);
const screen = tmux('capture-pane', '-p', '-t', 'top').stdout;
const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
const cpu = ((c1 - c0) / hz / elapsed) * 100;
if (values.profile) {
  tmux('send-keys', '-t', 'top', 'q'); // a clean exit writes the profile
  const until = Date.now() + 10_000;
  while (Date.now() < until && spawnSync('kill', ['-0', String(pid)]).status === 0) await new Promise((r) => setTimeout(r, 100));
}

process.stdout.write(`${screen}\n`);
process.stdout.write(`mailops top --interval ${values.interval} against 3 nodes: ${cpu.toFixed(2)} % of one core over ${elapsed.toFixed(1)} s ` +
  `(${c1 - c0} ticks at ${hz} Hz), RSS ${rss.toFixed(0)} MB; ${sent} messages injected during warm-up and measurement, backlog ${BACKLOG} per node\n`);
process.stdout.write(JSON.stringify({ cpuPercent: Number(cpu.toFixed(2)), seconds: Number(elapsed.toFixed(1)), ticks: c1 - c0, hz, rssMb: Math.round(rss), nodes: 3, interval: values.interval, rate: RATE, backlog: BACKLOG, injected: sent }) + '\n');
cleanup();
rmSync(dir, { recursive: true, force: true });
process.exit(cpu < 5 ? 0 : 1);

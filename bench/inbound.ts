// The inbound MX's figures (issue "Inbound MX mode"), on loopback against a real
// `bin/mailops relay start` with an `inbound:` section, a DNS server in this process (TTL 300 s,
// like a real zone) and a raw-socket mailbox server (bench/lib/seq-mail.ts):
//  throughput  messages/s the MX accepts with the DNSBL screen (three sites, every client not
//              listed) and SPF, DKIM and DMARC on (every message DKIM-signed by its sender domain,
//              whose SPF allows the client and whose DMARC policy is p=reject), from --clients
//              concurrent sessions of --messages in all (a session sends many, as an MTA with
//              queued mail does); counted from the first MAIL after every greeting to the last 250,
//              with the relay process's CPU per message; the messages are delivered on to the
//              mailbox server and counted there. With --rspamd, every message is also scored by a
//              real rspamd (Debian's, started here as the tests start it: test/helpers/rspamd.ts).
//  idle        how many idle bot connections a node holds without hurting legitimate mail: --bots
//              connections from many addresses that never speak (and a tenth that talk before the
//              greeting), reconnecting 1 s after they are refused or cut, against a node whose
//              smtp.maxConnections is --max-connections; meanwhile a legitimate MTA sends one
//              message a second, each on a new connection (it waits for the greeting once, then is
//              known good). Reports the bots' sessions held, what they got, the relay's RSS, and the
//              legitimate MTA's connect-to-250 times without and with the bots.
// Usage: node_modules/.bin/node bench/inbound.ts [--part throughput|idle|both] [--rspamd] [--messages 4000]
//        [--clients 20] [--bots 900] [--max-connections 1000] [--seconds 40]
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import type { DKIMSignOptions } from 'mailauth';
import { startDnsServer, type DnsServer } from '../src/util/dns-server.ts';
import { startSeqReceiver, type SeqReceiver } from './lib/seq-mail.ts';
import { freePort } from '../test/helpers/ports.ts';
import { cpuSeconds, rssMb } from './lib/proc.ts';
import { startRspamd } from '../test/helpers/rspamd.ts';
import { RawSmtp } from '../test/helpers/smtp-client.ts';

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const PART = option('part', 'both');
const MESSAGES = Number(option('messages', '4000'));
const CLIENTS = Number(option('clients', '20'));
const BOTS = Number(option('bots', '900'));
const MAX_CONNECTIONS = Number(option('max-connections', '1000'));
const SECONDS = Number(option('seconds', '40'));
const RSPAMD = args.includes('--rspamd');

const MAILOPS = new URL('../bin/mailops', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'mailops-inbound-bench-'));
const children = new Set<ChildProcess>();
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
function percentile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] : NaN;
}

interface Mx { child: ChildProcess; port: number; http: number; pid: number }

async function startMx(name: string, inbound: string, mailboxPort: number, dns: DnsServer, smtpExtra = ''): Promise<Mx> {
  const [port, relayPort, http] = [await freePort(), await freePort(), await freePort()];
  const config = join(dir, `${name}.yaml`);
  writeFileSync(config, `smtp: { listen: "127.0.0.1:${relayPort}", hostname: mx1.mx.bench${smtpExtra} }
http: { listen: "127.0.0.1:${http}" }
spool: { dir: "${join(dir, `${name}-spool`)}" }
log: { file: "${join(dir, `${name}.log`)}" }
delivery: { dnsServers: ["${dns.address}"] }
inbound:
  listen: "127.0.0.1:${port}"
  domains: [mx.bench]
  deliver: [{ domain: mx.bench, to: "127.0.0.1:${mailboxPort}" }]
  recipients: ["@mx.bench"]
${inbound}`);
  const child = spawn(process.execPath, [MAILOPS, 'relay', 'start', '--config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  for (let i = 0; ; i++) {
    if (await fetch(`http://127.0.0.1:${http}/health`).then((r) => r.ok, () => false)) break;
    if (i > 400) throw new Error(`${name} did not start`);
    await sleep(50);
  }
  return { child, port, http, pid: child.pid! };
}

async function stopMx(mx: Mx): Promise<void> {
  mx.child.kill('SIGTERM');
  await new Promise((r) => mx.child.once('exit', r));
}

async function metrics(mx: Mx, prefix: RegExp): Promise<string[]> {
  const text = await (await fetch(`http://127.0.0.1:${mx.http}/metrics`)).text();
  return text.split('\n').filter((l) => prefix.test(l) && !l.startsWith('#') && !l.endsWith(' 0'));
}

/** A line-reading SMTP session on a raw socket. */

async function throughput(): Promise<void> {
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicKey = (keys.publicKey.export({ type: 'spki', format: 'der' }) as Buffer).toString('base64');
  const dns = await startDnsServer({
    'sender.bench': { TXT: ['v=spf1 ip4:127.0.0.0/8 -all'] },
    '_dmarc.sender.bench': { TXT: ['v=DMARC1; p=reject'] },
    's1._domainkey.sender.bench': { TXT: [`v=DKIM1; k=rsa; p=${publicKey}`] },
  }, { ttl: 300 });
  const mailbox = await startSeqReceiver();
  const rspamd = RSPAMD ? await startRspamd() : undefined;
  const mx = await startMx('throughput', `  greeting: { delay: 1s }
  dnsbl: { sites: ["zen.dnsbl.bench*2", "bl.dnsbl.bench*1", "wl.dnsbl.bench*-1"], threshold: 2 }
  greylist: { enabled: false }
${rspamd ? `  scan: { rspamd: { url: "${rspamd.url}" } }\n` : ''}`, mailbox.port, dns);

  // one message per client, signed once by its sender domain (verification costs the same every time)
  const filler = `${'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.'}\r\n`.repeat(25);
  const unsigned = `From: News <news@sender.bench>\r\nTo: <reader@mx.bench>\r\nSubject: Weekly news\r\nDate: Mon, 30 Nov 2026 12:00:00 +0000\r\nMessage-ID: <bench@sender.bench>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${filler}`;
  const signature = await dkimSign(unsigned, { signatureData: [{ signingDomain: 'sender.bench', selector: 's1', privateKey: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string }] } as unknown as DKIMSignOptions); // signatureData is what mailauth reads (its types say otherwise)
  const message = `${signature.signatures}${unsigned}.\r\n`;

  const sessions = await Promise.all(Array.from({ length: CLIENTS }, async (_, i) => {
    const s = await RawSmtp.open(mx.port, '127.0.0.1', `127.0.5.${i + 1}`);
    const greeting = await s.reply();
    if (!greeting.startsWith('220')) throw new Error(`client ${i}: ${greeting}`);
    await s.command('EHLO mta.sender.bench');
    return s;
  }));
  let next = 0;
  let accepted = 0;
  const refused = new Map<string, number>();
  const cpu0 = cpuSeconds(mx.pid);
  const t0 = performance.now();
  await Promise.all(sessions.map(async (s) => {
    while (next < MESSAGES) {
      const n = next++;
      const replies = [await s.command('MAIL FROM:<news@sender.bench>'), await s.command(`RCPT TO:<reader${n}@mx.bench>`), await s.command('DATA')];
      let final = replies.find((r) => !/^(250|354)/.test(r));
      if (!final) {
        s.send(message);
        final = await s.reply();
      }
      if (final.startsWith('250')) accepted++;
      else {
        refused.set(final.slice(0, 40), (refused.get(final.slice(0, 40)) ?? 0) + 1);
        await s.command('RSET');
      }
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(mx.pid) - cpu0;
  for (let i = 0; mailbox.arrived < accepted && i < 600; i++) await sleep(100);
  const shown = await metrics(mx, /^mailops_inbound_/);
  sessions.forEach((s) => s.close());
  await stopMx(mx);
  mailbox.close();
  await dns.close();
  await rspamd?.stop();
  console.log(`\n=== throughput: ${MESSAGES} messages (${Buffer.byteLength(message)} bytes, DKIM-signed), ${CLIENTS} sessions, DNSBL (3 sites) + SPF + DKIM + DMARC${rspamd ? ' + rspamd' : ''} on ===`);
  console.log(`accepted ${accepted} in ${seconds.toFixed(1)} s: ${(accepted / seconds).toFixed(0)} msgs/s; relay CPU ${cpu.toFixed(1)} s (${((cpu * 1000) / Math.max(1, accepted)).toFixed(2)} ms per message, ${(cpu / seconds * 100).toFixed(0)} % of one core)`);
  console.log(`delivered to the mailbox server: ${mailbox.arrived}; DNS queries answered: ${dns.queries}`);
  for (const [reply, n] of refused) console.log(`  refused ${n}: ${reply}`);
  for (const line of shown) console.log(`  ${line}`);
}

async function idle(): Promise<void> {
  const dns = await startDnsServer({}, { ttl: 300 });
  const mailbox: SeqReceiver = await startSeqReceiver();
  const perIp = 50;
  const mx = await startMx('idle', '  greylist: { enabled: false }\n', mailbox.port, dns,
    `, maxConnections: ${MAX_CONNECTIONS}, reservedConnections: 0, maxConnectionsPerIp: ${perIp}, maxConnectionsPerNetwork: ${perIp * 4}`);

  // the legitimate MTA: one message a second, a new connection each
  const legit = async (count: number): Promise<{ ms: number[]; failed: string[] }> => {
    const ms: number[] = [];
    const failed: string[] = [];
    for (let i = 0; i < count; i++) {
      const t0 = performance.now();
      try {
        const s = await RawSmtp.open(mx.port, '127.0.0.1', '127.0.9.1');
        const replies = [await s.reply(), await s.command('EHLO mta.friend.bench'), await s.command('MAIL FROM:<friend@friend.bench>'),
          await s.command('RCPT TO:<reader@mx.bench>'), await s.command('DATA')];
        const bad = replies.find((r) => !/^(220|250|354)/.test(r));
        if (bad) failed.push(bad);
        else {
          s.send('From: <friend@friend.bench>\r\nSubject: hi\r\n\r\nhello\r\n.\r\n');
          const final = await s.reply();
          if (final.startsWith('250')) ms.push(performance.now() - t0);
          else failed.push(final);
        }
        s.close();
      } catch (err) {
        failed.push((err as Error).message);
      }
      await sleep(Math.max(0, 1000 - (performance.now() - t0)));
    }
    return { ms, failed };
  };
  // first contact pays the greeting wait once; then the baseline without bots
  await legit(1);
  const baseline = await legit(10);

  const addresses = Math.ceil(BOTS / (perIp - 5));
  const sources = Array.from({ length: addresses }, (_, i) => `127.0.${20 + Math.floor(i / 4)}.${1 + (i % 4)}`);
  let flooding = true;
  let open = 0;
  let maxOpen = 0;
  const got = new Map<string, number>();
  const sockets = new Set<Socket>();
  const bot = (from: string, pregreet: boolean) => {
    if (!flooding) return;
    const socket = connect({ port: mx.port, host: '127.0.0.1', localAddress: from });
    sockets.add(socket);
    let greeted = false;
    let buffer = '';
    socket.on('connect', () => { if (pregreet) socket.write('EHLO bot\r\n'); });
    socket.on('data', (d) => {
      buffer += d.toString('latin1');
      let i: number;
      while ((i = buffer.indexOf('\r\n')) !== -1) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        if (!greeted && line.startsWith('220 ')) {
          greeted = true;
          open++;
          maxOpen = Math.max(maxOpen, open);
        } else {
          const kind = `${greeted ? 'cut' : 'refused'}: ${line.replace(/\d+\.\d+\.\d+\.\d+(\/\d+)?/g, '<ip>').slice(0, 90)}`;
          got.set(kind, (got.get(kind) ?? 0) + 1);
        }
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      sockets.delete(socket);
      if (greeted) open--;
      if (flooding) setTimeout(() => bot(from, pregreet), 1000);
    });
  };
  let started = 0;
  for (const from of sources) {
    for (let i = 0; i < perIp - 5 && started < BOTS; i++, started++) bot(from, started % 10 === 9);
  }
  await sleep(8000); // the bots wait out their greeting and settle in their slots
  const rssBefore = Math.round(rssMb(mx.pid));
  const cpu0 = cpuSeconds(mx.pid);
  const t0 = performance.now();
  const flooded = await legit(Math.max(5, SECONDS - 8));
  const cpu = cpuSeconds(mx.pid) - cpu0;
  const seconds = (performance.now() - t0) / 1000;
  const heldAtEnd = open;
  const rss = Math.round(rssMb(mx.pid));
  flooding = false;
  for (const s of sockets) s.destroy();
  await sleep(500);
  const shown = await metrics(mx, /^mailops_inbound_/);
  await stopMx(mx);
  mailbox.close();
  await dns.close();

  const show = (name: string, r: { ms: number[]; failed: string[] }) => {
    const sorted = [...r.ms].sort((a, b) => a - b);
    console.log(`${name}: ${r.ms.length} of ${r.ms.length + r.failed.length} accepted; connect to 250: p50 ${percentile(sorted, 0.5).toFixed(0)} ms, p99 ${percentile(sorted, 0.99).toFixed(0)} ms, max ${sorted.at(-1)?.toFixed(0)} ms`);
    for (const f of r.failed) console.log(`  failed: ${f}`);
  };
  console.log(`\n=== idle bots: ${BOTS} bot connections (a tenth talk before the greeting) from ${addresses} addresses, smtp.maxConnections ${MAX_CONNECTIONS}, greeting wait 6 s ===`);
  console.log(`bot sessions holding a slot: at most ${maxOpen}, ${heldAtEnd} at the end; relay RSS ${rssBefore} MB with the bots settled, ${rss} MB at the end; relay CPU ${(cpu / seconds * 100).toFixed(0)} % of one core`);
  show('legitimate MTA without bots', baseline);
  show('legitimate MTA with the bots', flooded);
  console.log('what the bots got:');
  for (const [kind, n] of [...got].sort((a, b) => b[1] - a[1])) console.log(`  ${n} ${kind}`);
  for (const line of shown) console.log(`  ${line}`);
}

if (PART === 'throughput' || PART === 'both') await throughput();
if (PART === 'idle' || PART === 'both') await idle();
process.exit(0);

// A real rspamd (Debian's package) for a test: Debian's rules and modules, with one normal worker
// on a loopback port and every directory it writes (database, run, logs) in a temp directory.
// Its DNS goes to a DNS server the helper starts on loopback, which answers the test's zone and
// NXDOMAIN for every other name: the RBL and URL-list modules then get quick answers instead of
// waiting on an internet that the test machine does not have. No Redis: the modules that need it stay off. The GTUBE
// test patterns are enabled, so a test can ask for each action by the message's content.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDnsServer, type DnsServer, type RecordSet } from './dns-server.ts';
import { freePort } from './ports.ts';

export const RSPAMD = '/usr/bin/rspamd';

/** rspamd's GTUBE patterns: each asks for one action (the reject one always works, the others with enable_test_patterns). */
export const GTUBE = {
  reject: 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X',
  addHeader: 'YJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X',
  rewriteSubject: 'ZJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X',
};

export interface TestRspamd {
  port: number;
  url: string;
  /** How long it took from spawn to answering /ping, ms. */
  startMs: number;
  log(): string;
  stop(): Promise<void>;
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/ping', agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(res.statusCode === 200 && body.trim() === 'pong'));
    });
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** `zone`: what rspamd's DNS answers besides NXDOMAIN (a test's sender domains, its client's PTR). */
export async function startRspamd(zone: Record<string, RecordSet> = {}): Promise<TestRspamd> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'mailops-rspamd-'));
  const dns: DnsServer = await startDnsServer(zone);
  const logFile = join(dir, 'rspamd.log');
  const conf = join(dir, 'rspamd.conf');
  // The public suffix list, compiled into one matcher at start, costs rspamd about 20 s of CPU:
  // the suffixes a test's mail uses are enough, and it starts in a few seconds.
  // (options.inc sets url_tld and dns: the test's values go in with a higher priority to win over its)
  const tlds = join(dir, 'tlds.dat');
  writeFileSync(tlds, `${['com', 'net', 'org', 'de', 'uk', 'co.uk', 'io', 'example', 'test', 'invalid'].join('\n')}\n`);
  const overrides = join(dir, 'options-override.inc');
  writeFileSync(overrides, `url_tld = "${tlds}";\ndns {\n  nameserver = ["127.0.0.1:${dns.port}"];\n  timeout = 1s;\n  retransmits = 1;\n}\n`);
  writeFileSync(conf, `
.include "$CONFDIR/common.conf"
options {
  pidfile = "${dir}/rspamd.pid";
  .include "$CONFDIR/options.inc"
  enable_test_patterns = true;
  # no hyperscan: its helper process would compile the rules for tens of seconds in the background
  disable_hyperscan = true;
  .include(priority=10) "${overrides}"
}
logging {
  type = "file";
  filename = "${logFile}";
  level = "warning";
}
worker "normal" {
  bind_socket = "127.0.0.1:${port}";
  count = 1;
  .include "$CONFDIR/worker-normal.inc"
}
`);
  const log = () => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  const started = performance.now();
  // LOCAL_CONFDIR away from /etc/rspamd: the machine's own local.d settings stay out of the test
  const child: ChildProcess = spawn(RSPAMD, ['-f', '-u', 'root', '-g', 'root', '-c', conf,
    '--var', `DBDIR=${dir}`, '--var', `RUNDIR=${dir}`, '--var', `LOGDIR=${dir}`, '--var', `LOCAL_CONFDIR=${dir}`],
  { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        // the main process takes its workers down with it on TERM
        child.kill('SIGTERM');
      });
    }
    await dns.close();
  };
  const deadline = Date.now() + 60_000;
  while (!(await ping(port))) {
    if (child.exitCode !== null) {
      await dns.close();
      throw new Error(`rspamd exited with ${child.exitCode}:\n${output}\n${log()}`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`rspamd did not answer /ping on port ${port}:\n${output}\n${log()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { port, url: `http://127.0.0.1:${port}`, startMs: Math.round(performance.now() - started), log, stop };
}

// Benchmark: a full `audit domain` (3 selectors, 4 IPs, HELO, one DNSBL zone) against a local
// DNS server serving the test fixture zone. Target: under 1 s.
//   node bench/audit-domain.ts [--runs N]
// Prints the in-process audit time (fresh resolver each run, so nothing is cached) and the
// end-to-end time of the real CLI (`mailops audit domain ... --json`), process start included.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startDnsServer } from '../test/helpers/dns-server.ts';
import { CLEAN_IPS, CLEAN_SELECTORS, fixtureZone } from '../test/audit/fixtures/zones.ts';
import { createResolver } from '../src/audit/resolver.ts';
import { auditDomain } from '../src/audit/domain.ts';

const runsArg = process.argv.indexOf('--runs');
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 10;
const server = await startDnsServer(fixtureZone());
const options = { domain: 'clean.example', selectors: CLEAN_SELECTORS, ips: CLEAN_IPS, helo: 'mta1.clean.example', dnsbl: ['bl.test'], fetch: false };

const times: number[] = [];
let queries = 0;
let results = 0;
for (let i = 0; i < runs; i++) {
  const dns = createResolver({ servers: [server.address] });
  const start = performance.now();
  const report = await auditDomain({ dns, ...options });
  times.push(performance.now() - start);
  queries = dns.queries;
  results = report.results.length;
  if (Object.values(report.verdicts).some((v) => v !== 'pass')) throw new Error(`unexpected verdicts ${JSON.stringify(report.verdicts)}`);
}
times.sort((a, b) => a - b);
const ms = (x: number) => `${x.toFixed(1)} ms`;
console.log(`in-process audit (${runs} runs, ${results} results, ${queries} DNS questions): min ${ms(times[0])}, median ${ms(times[Math.floor(runs / 2)])}, max ${ms(times[runs - 1])}`);

const bin = fileURLToPath(new URL('../bin/mailops', import.meta.url));
const args = [bin, 'audit', 'domain', 'clean.example', '--dns', server.address, '--dnsbl', 'bl.test', '--helo', 'mta1.clean.example', '--no-fetch', '--json',
  ...CLEAN_SELECTORS.flatMap((s) => ['--selector', s]), ...CLEAN_IPS.flatMap((ip) => ['--ip', ip])];
const cli: number[] = [];
for (let i = 0; i < 3; i++) {
  const start = performance.now();
  const code = await new Promise<number | null>((resolve) => spawn(process.execPath, args, { stdio: 'ignore' }).on('close', resolve));
  cli.push(performance.now() - start);
  if (code !== 0) throw new Error(`mailops audit domain exited ${code}`);
}
console.log(`CLI end to end (3 runs, node start included): ${cli.map(ms).join(', ')}`);
await server.close();

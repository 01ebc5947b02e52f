// `mailops load newsletter`: replays a newsletter scenario against a relay (or a sink) and reports
// like k6; `mailops load inbound`: plays the clients an MX meets (load/inbound/); `mailops report
// compare A B`: the deltas between two runs.
import type { Command } from 'commander';
import { ConfigError } from '../config/errors.ts';
import { collect, examples, positiveInt } from './usage.ts';

function rateOption(value: string): number | 'max' {
  if (value === 'max') return 'max';
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new ConfigError(`--rate: expected "max" or messages per second > 0, got ${JSON.stringify(value)}`);
  return n;
}

function seedOption(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new ConfigError(`--seed: expected an integer from 0 to 4294967295, got ${JSON.stringify(value)}`);
  return n;
}

export function registerLoad(program: Command): void {
  const load = program.command('load').description('generate load against a relay: newsletter scenarios with k6-like reports, inbound MX scenarios');
  load
    .command('newsletter')
    .description('replay a newsletter scenario (bulk + transactional + member mail) against an SMTP or HTTP target')
    .option('--scenario <name|file>', 'shipped scenario name (scenarios/NAME.yaml) or a YAML file', 'newsletter-smoke')
    .option('--target <url>', 'smtp://HOST:PORT (pipelining SMTP engine) or http://HOST:PORT (relay POST /api/v1/messages)')
    .option('--token <token>', 'bearer token for an http:// target (default: $MAILOPS_TOKEN)')
    .option('--sink <url>', 'mailops sink HTTP API (http://HOST:PORT): wait for arrival and account for every message')
    .option('--sink-reset', 'POST /api/v1/reset to the sink before the run (arrival percentiles then cover only this run)')
    .option('--messages <n>', 'bulk messages (overrides the scenario)', (v: string) => (v === '0' ? 0 : positiveInt('--messages')(v)))
    .option('--rate <n|max>', 'constant open-loop rate in msgs/s, or max (closed loop)', rateOption)
    .option('--size <bytes>', 'fixed message size for every lane, e.g. 4096 or 40KB')
    .option('--connections <n>', 'SMTP connections (HTTP: autocannon connections)', positiveInt('--connections'))
    .option('--duration <d>', 'stop sending after this long, e.g. 30s or 5m')
    .option('--threshold <expr>', 'extra threshold, e.g. "error_rate < 1%" (repeatable)', collect)
    .option('--report <dir>', 'parent directory of the report directory', 'reports')
    .option('--no-report', 'do not write report files')
    .option('--seed <n>', 'random seed: same seed, same recipients, sizes and arrival times', seedOption, 1)
    .option('--json', 'print nothing but JSON lines: progress events and the final report')
    .addHelpText('after', `\nExit status: 0 all thresholds passed, 1 a threshold failed or the target was unreachable, 2 usage error.\n${examples([
      'mailops load newsletter --scenario newsletter-smoke --target smtp://127.0.0.1:2525 --sink http://127.0.0.1:8026',
      'mailops load newsletter --target smtp://127.0.0.1:2526 --rate max --size 4096 --messages 200000',
      'mailops load newsletter --scenario reminders-during-newsletter --target smtp://127.0.0.1:2525 --sink http://127.0.0.1:8026 --json',
      'mailops load newsletter --scenario ./my-scenario.yaml --target http://127.0.0.1:8025 --token secret --rate 500',
      'mailops load newsletter --scenario newsletter-1m --target smtp://127.0.0.1:2525 --threshold "arrival.transactional.p99 < 1s"',
    ])}`)
    .action(async (options) => {
      const { loadNewsletter } = await import('../load/cli-run.ts');
      process.exitCode = await loadNewsletter(options);
    });

  load
    .command('inbound')
    .description('play an inbound scenario against an MX: well-behaved MTAs, pregreeting and non-retrying bots, listed IPs, DMARC forgeries, EICAR attachments')
    .option('--scenario <name|file>', 'shipped scenario name (scenarios/NAME.yaml, type: inbound) or a YAML file', 'inbound-smoke')
    .option('--target <url>', 'smtp://HOST:PORT of the relay\'s inbound listener (inbound.listen)')
    .option('--dns <host:port>', 'where this run serves the senders\' DNS (SPF, DKIM, DMARC, PTR, the DNSBL zone): the relay\'s resolver must ask there', '127.0.0.1:5354')
    .option('--messages <n>', 'messages (overrides the scenario)', positiveInt('--messages'))
    .option('--rate <n>', 'new messages per second (overrides the scenario)', (v: string) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) throw new ConfigError(`--rate: expected messages per second > 0, got ${JSON.stringify(v)}`);
      return n;
    })
    .option('--report <dir>', 'parent directory of the report directory', 'reports')
    .option('--no-report', 'do not write report files')
    .option('--seed <n>', 'random seed: same seed, same classes, addresses and names', seedOption, 1)
    .option('--json', 'print nothing but JSON lines: progress events and the final report')
    .addHelpText('after', `\nThe clients bind addresses of 127.0.0.0/8 (Linux routes all of it to loopback), so the MX sees many clients.\nExit status: 0 no legitimate message lost, 1 one was (or the run could not start), 2 usage error.\n${examples([
      'mailops load inbound --target smtp://127.0.0.1:2500 --dns 127.0.0.1:5354',
      'mailops load inbound --scenario ./my-inbound.yaml --target smtp://127.0.0.1:25 --messages 1000 --rate 50 --json',
    ])}`)
    .action(async (options) => {
      const { loadInbound } = await import('../load/inbound/cli-run.ts');
      process.exitCode = await loadInbound(options);
    });

  const report = program.command('report').description('work with load reports');
  report
    .command('compare')
    .description('print the deltas between two load runs (report directories or report.json files)')
    .argument('<a>', 'baseline run')
    .argument('<b>', 'run to compare with the baseline')
    .option('--json', 'print the comparison as JSON')
    .addHelpText('after', examples([
      'mailops report compare reports/2026-11-22T10-00-00Z-newsletter-1m-ab12cd34 reports/2026-11-22T11-00-00Z-newsletter-1m-ef56ab78',
      'mailops report compare old/report.json new/report.json --json',
    ]))
    .action(async (a: string, b: string, options: { json?: boolean }) => {
      const { compareReports, readReport, renderComparison } = await import('../load/report/compare.ts');
      const rows = compareReports(readReport(a), readReport(b));
      process.stdout.write(options.json ? `${JSON.stringify(rows, null, 2)}\n` : renderComparison(rows, a, b));
    });
}

// The action behind `mailops load inbound`: flags → an inbound run → progress lines (or JSON
// lines with --json) → the report on stdout and in the report directory. Exit status 0 when no
// legitimate message was lost, 1 when one was (or the run could not start), 2 for usage errors.
import { ConfigError } from '../../config/errors.ts';
import { parseHostPort } from '../../util/units.ts';
import { parseTarget } from '../cli-run.ts';
import { readScenarioFile } from '../scenario/load.ts';
import { renderInboundSummary, writeInboundReport } from './report.ts';
import { runInbound, type InboundProgress } from './run.ts';
import { parseInboundScenario } from './scenario.ts';

export interface InboundFlags {
  scenario: string;
  target?: string;
  dns: string;
  messages?: number;
  rate?: number;
  report: string | false;
  seed: number;
  json?: boolean;
}

function progressLine(p: InboundProgress): string {
  return `[${p.elapsed.toFixed(0).padStart(5)}s] started ${p.started}  sessions ${p.sessions}  queued ${p.queued}  waiting for retry ${p.waitingForRetry}  accepted ${p.accepted}`;
}

export async function loadInbound(f: InboundFlags): Promise<number> {
  const target = parseTarget(f.target);
  if (target.kind !== 'smtp') throw new ConfigError(`--target: expected smtp://HOST:PORT of the relay's inbound listener (inbound.listen), got ${JSON.stringify(f.target)}`);
  const dns = parseHostPort(f.dns);
  if (!dns || dns.port === 0) throw new ConfigError(`--dns: expected HOST:PORT where this run serves the senders' DNS (the relay's resolver must ask there), got ${JSON.stringify(f.dns)}`);
  const { path, doc } = readScenarioFile(f.scenario);
  const scenario = parseInboundScenario(doc, path);
  if (f.messages !== undefined) scenario.messages = f.messages;
  if (f.rate !== undefined) scenario.rate = f.rate;

  const out = process.stdout;
  const abort = new AbortController();
  const onSigint = () => abort.abort();
  process.once('SIGINT', onSigint);
  let report;
  try {
    report = await runInbound({
      scenario, target: { host: target.host, port: target.port }, dns, seed: f.seed, signal: abort.signal,
      onProgress: (p) => out.write(f.json ? `${JSON.stringify({ event: 'progress', ...p })}\n` : `${progressLine(p)}\n`),
    });
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const message = (err as Error).message;
    if (f.json) out.write(`${JSON.stringify({ event: 'error', message })}\n`);
    else process.stderr.write(`mailops load inbound: ${message}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSigint);
  }
  const dir = f.report === false ? null : writeInboundReport(report, f.report);
  if (f.json) out.write(`${JSON.stringify({ event: 'result', reportDir: dir, report })}\n`);
  else {
    out.write(`\n${renderInboundSummary(report)}`);
    if (dir) out.write(`\nreport: ${dir}/summary.md\n`);
  }
  return report.legitimateLost === 0 ? 0 : 1;
}

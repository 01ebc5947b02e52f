// End-to-end load benchmark: starts a mailops sink and a relay node in this process (ephemeral
// loopback ports, temporary spool), then runs a scenario generator → relay → sink and prints the
// summary. Usage:
//   node bench/load-e2e.ts [SCENARIO] [--messages N] [--rate N|max] [--profile accept-all] [--report DIR]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startSink } from '../src/sink/index.ts';
import { loadRelayConfig } from '../src/config/load.ts';
import { startRelay } from '../src/relay/node.ts';
import { applyOverrides, loadScenario } from '../src/load/scenario/load.ts';
import { runLoad } from '../src/load/run.ts';
import { writeReport } from '../src/load/report/write.ts';
import { renderSummary } from '../src/load/report/summary-md.ts';
import { plainProgress } from '../src/load/progress/plain.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    messages: { type: 'string' }, rate: { type: 'string' }, profile: { type: 'string' }, report: { type: 'string' },
    connections: { type: 'string' }, http: { type: 'boolean' },
  },
});
const dir = mkdtempSync(join(tmpdir(), 'mailops-bench-'));
const sink = await startSink({ smtp: '127.0.0.1:0', http: '127.0.0.1:0', profile: values.profile, greylistDelayMs: 2000, tls: false });
const relay = await startRelay(loadRelayConfig(undefined, {
  smtp: '127.0.0.1:0', http: '127.0.0.1:0', spool: join(dir, 'spool'), smarthost: `127.0.0.1:${sink.smtpPort}`,
}));
const scenario = applyOverrides(loadScenario(positionals[0] ?? 'newsletter-smoke'), {
  messages: values.messages === undefined ? undefined : Number(values.messages),
  rate: values.rate === undefined ? undefined : values.rate === 'max' ? 'max' : Number(values.rate),
  connections: values.connections === undefined ? undefined : Number(values.connections),
});
const target = values.http
  ? { kind: 'http' as const, host: '127.0.0.1', port: relay.httpAddress.port, url: `http://127.0.0.1:${relay.httpAddress.port}`, token: relay.config.http.token }
  : { kind: 'smtp' as const, host: '127.0.0.1', port: relay.smtpAddresses[0].port, url: `smtp://127.0.0.1:${relay.smtpAddresses[0].port}` };
const started = Date.now();
const report = await runLoad({ scenario, target, sink: `http://127.0.0.1:${sink.httpPort}`, seed: 1, onProgress: plainProgress(process.stderr) });
process.stdout.write(renderSummary(report));
process.stdout.write(`\nwall time including drain: ${((Date.now() - started) / 1000).toFixed(1)} s; generator max RSS ${report.generator.rssMaxMB} MB (whole process: generator + relay + sink)\n`);
if (values.report) process.stdout.write(`report: ${writeReport(report, values.report)}\n`);
await relay.stop();
await sink.close();
rmSync(dir, { recursive: true, force: true });
process.exit(report.passed ? 0 : 1);

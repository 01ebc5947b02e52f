// The action behind `mailops load newsletter`: turns flags into a run, shows progress the way the
// output wants it (ink on a terminal, lines otherwise, JSON lines with --json), writes the report
// and returns the exit status.
import { ConfigError } from '../config/errors.ts';
import { parseDuration, parseSize } from '../util/units.ts';
import { applyOverrides, loadScenario } from './scenario/load.ts';
import { parseThreshold } from './measure/threshold-parse.ts';
import { runLoad, type Progress, type Target } from './run.ts';
import { writeReport } from './report/write.ts';
import { plainProgress, jsonProgress } from './progress/plain.ts';
import { renderSummary } from './report/summary-md.ts';

export interface NewsletterFlags {
  scenario: string; target?: string; token?: string; sink?: string; sinkReset?: boolean; messages?: number;
  rate?: number | 'max'; size?: string; connections?: number; duration?: string; threshold?: string[];
  report: string | false; seed: number; json?: boolean;
}

export function parseTarget(value: string | undefined, token?: string): Target {
  if (!value) throw new ConfigError('--target: required, e.g. smtp://127.0.0.1:2525 or http://127.0.0.1:8025');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`--target: expected smtp://HOST:PORT or http://HOST:PORT, got ${JSON.stringify(value)}`);
  }
  const kind = url.protocol === 'smtp:' ? 'smtp' : url.protocol === 'http:' ? 'http' : undefined;
  if (!kind || !url.hostname) throw new ConfigError(`--target: expected smtp://HOST:PORT or http://HOST:PORT, got ${JSON.stringify(value)}`);
  const port = Number(url.port || (kind === 'smtp' ? 25 : 80));
  return { kind, host: url.hostname.replace(/^\[|\]$/g, ''), port, url: value, token };
}

function parseSink(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!/^https?:\/\/[^/\s]+\/?$/.test(value)) throw new ConfigError(`--sink: expected http://HOST:PORT of a mailops sink, got ${JSON.stringify(value)}`);
  return value;
}

export async function loadNewsletter(f: NewsletterFlags): Promise<number> {
  const target = parseTarget(f.target, f.token ?? process.env.MAILOPS_TOKEN);
  const sink = parseSink(f.sink);
  const size = f.size === undefined ? undefined : parseSize(f.size);
  if (f.size !== undefined && size === undefined) throw new ConfigError(`--size: expected a size such as 4096 or 40KB, got ${JSON.stringify(f.size)}`);
  const duration = f.duration === undefined ? undefined : parseDuration(f.duration);
  if (f.duration !== undefined && !duration) throw new ConfigError(`--duration: expected a duration such as 30s or 5m, got ${JSON.stringify(f.duration)}`);
  const scenario = applyOverrides(loadScenario(f.scenario), { messages: f.messages, rate: f.rate, size, connections: f.connections, duration });
  for (const expr of f.threshold ?? []) {
    const t = parseThreshold(expr);
    if (typeof t === 'string') throw new ConfigError(`--threshold: ${t}, got ${JSON.stringify(expr)}`);
    scenario.thresholds = [...scenario.thresholds, t];
  }

  const out = process.stdout;
  let onProgress: (p: Progress) => void;
  let stopProgress = () => {};
  if (f.json) onProgress = jsonProgress(out);
  else if (out.isTTY) {
    const { inkProgress } = await import('./progress/ink.ts');
    const ink = inkProgress(scenario.name);
    onProgress = ink.update;
    stopProgress = ink.stop;
  } else onProgress = plainProgress(out);

  const abort = new AbortController();
  const onSigint = () => abort.abort();
  process.once('SIGINT', onSigint);
  let report;
  try {
    report = await runLoad({ scenario, target, sink, sinkReset: f.sinkReset, seed: f.seed, onProgress, signal: abort.signal });
  } catch (err) {
    stopProgress();
    const message = (err as Error).message;
    if (f.json) out.write(`${JSON.stringify({ event: 'error', message })}\n`);
    else process.stderr.write(`mailops load: ${message}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSigint);
  }
  stopProgress();
  const dir = f.report === false ? null : writeReport(report, f.report);
  if (f.json) out.write(`${JSON.stringify({ event: 'result', reportDir: dir, passed: report.passed, report })}\n`);
  else {
    out.write(`\n${renderSummary(report)}`);
    if (dir) out.write(`\nreport: ${dir}/report.html\n`);
  }
  return report.passed ? 0 : 1;
}

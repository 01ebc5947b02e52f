// summary.md: the run in a page of Markdown, for a PR comment or a closing note; `mailops load`
// also prints it on the terminal at the end of a run, so its first lines carry the findings.
import { LANES } from '../scenario/types.ts';
import { PHASES } from '../measure/metrics.ts';
import type { Report } from './model.ts';
import { bytes, drainText, int, ms, pct, replyText, thresholdValue, worstArrivalLine } from './format.ts';

/** Deferral reasons in the header list; the table further down has more. */
const TOP_REASONS = 3;
const TABLE_REASONS = 10;

const cell = (s: string) => s.replace(/[|\n]/g, ' ');

export function renderSummary(r: Report): string {
  const out: string[] = [];
  out.push(`# Load run ${r.runId}: ${r.scenario.name} — ${r.passed ? 'PASSED' : 'FAILED'}`, '');
  if (r.interrupted) out.push('**Interrupted**: sending was stopped early; the numbers cover what was sent until then.', '');
  out.push(`- target: \`${r.target}\` (${r.engine} engine)${r.sink ? `, sink \`${r.sink}\`` : ''}`);
  out.push(`- started ${r.startedAt}, sending took ${r.totals.sendSeconds.toFixed(1)} s, seed ${r.seed}`);
  out.push(`- accepted ${int(r.totals.accepted)} of ${int(r.totals.attempted)} (${pct(r.totals.errorRate)} errors), ${bytes(r.totals.bytes)}`);
  out.push(`- throughput ${r.totals.throughput.toFixed(1)} msgs/s on average, peak ${int(r.totals.peakThroughput)} msgs/s in a 1 s bucket`);
  if (r.arrival) {
    out.push(`- arrived at the sink ${int(r.arrival.arrived)}, refused by it ${int(r.arrival.refused)}, ` +
      `deferred by it ${int(r.arrival.deferred)} (held by the relay after a 4xx), duplicates ${int(r.arrival.duplicates)}, ` +
      `**missing ${int(r.arrival.missing)}**; drain took ${drainText(r.arrival)}`);
    if (r.arrival.unexpected) out.push(`- **${int(r.arrival.unexpected)} more arrivals than injections**: another run was still draining into this sink; arrival figures are not this run's alone`);
    const worst = worstArrivalLine(r, 'transactional');
    if (worst) out.push(`- ${worst}`);
    if (r.arrival.refusals.length) {
      out.push('- top deferrals and refusals at the sink:');
      for (const x of r.arrival.refusals.slice(0, TOP_REASONS)) out.push(`  - ${int(x.count)} × ${x.profile} ${x.phase}: ${replyText(x)}`);
    }
  }
  out.push('', '## Lanes', '', '| lane | planned | accepted | failed | send p50 | send p99 | send max | arrival p50 | arrival p99 | arrival max |', '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const lane of LANES) {
    const l = r.lanes[lane];
    if (l.planned === 0) continue;
    const a = l.arrival?.latencyMs;
    out.push(`| ${lane} | ${int(l.planned)} | ${int(l.accepted)} | ${int(l.failed)} | ${ms(l.send.p50)} | ${ms(l.send.p99)} | ${ms(l.send.max)} | ${a ? ms(a.p50) : '-'} | ${a ? ms(a.p99) : '-'} | ${a ? ms(a.max) : '-'} |`);
  }
  out.push('', 'Send latency runs from the intended send time (open loop, coordinated-omission corrected) to the 250 after DATA; arrival from the `sent=` stamp to arrival at the sink.');
  out.push('', '## SMTP phases', '', '| phase | count | p50 | p90 | p99 | max |', '|---|---:|---:|---:|---:|---:|');
  for (const p of PHASES) {
    const h = r.phases[p];
    if (h.count) out.push(`| ${p} | ${int(h.count)} | ${ms(h.p50)} | ${ms(h.p90)} | ${ms(h.p99)} | ${ms(h.max)} |`);
  }
  if (r.thresholds.length) {
    out.push('', '## Thresholds', '', '| threshold | actual | result |', '|---|---:|---|');
    for (const t of r.thresholds) out.push(`| \`${t.expression}\` | ${thresholdValue(t.metric, t.actual)} | ${t.ok === null ? 'no data' : t.ok ? 'pass' : '**FAIL**'} |`);
  }
  if (r.errors.entries.length || Object.keys(r.errors.connections).length) {
    out.push('', '## Errors', '', '| phase | code | enhanced | provider | lane | count | sample |', '|---|---|---|---|---|---:|---|');
    for (const e of r.errors.entries.slice(0, 20)) out.push(`| ${e.phase} | ${e.code} | ${e.enhanced || '-'} | ${e.provider} | ${e.lane} | ${int(e.count)} | ${cell(e.sample).slice(0, 80)} |`);
    for (const [reason, n] of Object.entries(r.errors.connections)) out.push(`| connection | ${reason} | - | - | - | ${int(n)} | connection failed before EHLO |`);
  }
  if (r.arrival?.refusals.length) {
    out.push('', '## Deferrals and refusals by provider and reply', '', 'What the sink answered with 4xx (deferred) and 5xx (refused) during the run; addresses and IPs are placeholders.',
      '', '| profile | phase | reply | count |', '|---|---|---|---:|');
    for (const x of r.arrival.refusals.slice(0, TABLE_REASONS)) out.push(`| ${cell(x.profile)} | ${x.phase} | ${cell(replyText(x))} | ${int(x.count)} |`);
    if (r.arrival.refusals.length > TABLE_REASONS) out.push('', `${r.arrival.refusals.length - TABLE_REASONS} more replies in report.json and report.html.`);
  }
  return `${out.join('\n')}\n`;
}

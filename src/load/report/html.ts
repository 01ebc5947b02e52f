// report.html: one self-contained page (inline CSS and SVG, no network) with throughput over
// time, latency percentiles per lane over time, SMTP phase latencies, errors and thresholds, and
// with a sink: arrival latency per lane over time and the sink's deferrals and refusals.
// A few lines of inline script stamp how many chart lines the browser actually laid out, which is
// what the headless-Chromium test reads back.
import { LANES, type Lane } from '../scenario/types.ts';
import { PHASES } from '../measure/metrics.ts';
import type { Report } from './model.ts';
import { bytes, drainText, int, ms, pct, replyText, thresholdValue, worstArrivalLine } from './format.ts';
import { barChart, esc, lineChart, type Series } from './svg.ts';

const LANE_COLOR: Record<Lane, string> = { transactional: '#d62728', member: '#2ca02c', bulk: '#1f77b4' };

function table(head: string[], rows: string[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${
    rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

export function renderHtml(r: Report): string {
  const tl = r.timeline;
  // A bucket may be shorter or longer than a second: plot a rate, not its raw count.
  const span = (i: number) => Math.max(tl[i].span, 0.1);
  const throughput = lineChart({
    id: 'chart-throughput', xLabel: 'seconds since start', yLabel: 'messages per second',
    series: [
      { name: 'accepted/s', color: '#1f77b4', points: tl.map((p, i) => [p.t, p.sent / span(i)]) },
      { name: 'failed/s', color: '#d62728', points: tl.map((p, i) => [p.t, p.failed / span(i)]) },
    ],
  });
  const latencySeries: Series[] = [];
  for (const lane of LANES) {
    const pts = tl.filter((p) => p.lanes[lane]);
    if (pts.length === 0) continue;
    latencySeries.push({ name: `${lane} p50`, color: LANE_COLOR[lane], dashed: true, points: pts.map((p) => [p.t, p.lanes[lane]!.p50]) });
    latencySeries.push({ name: `${lane} p99`, color: LANE_COLOR[lane], points: pts.map((p) => [p.t, p.lanes[lane]!.p99]) });
  }
  const latency = lineChart({ id: 'chart-latency', xLabel: 'seconds since start', yLabel: 'send latency (ms)', yFormat: (v) => ms(v), series: latencySeries });
  const arrivalSeries: Series[] = [];
  for (const lane of LANES) {
    const pts = r.arrival?.timeline.filter((p) => p.lanes[lane]) ?? [];
    if (pts.length === 0) continue;
    arrivalSeries.push({ name: `${lane} p99`, color: LANE_COLOR[lane], dashed: true, points: pts.map((p) => [p.t, p.lanes[lane]!.p99]) });
    arrivalSeries.push({ name: `${lane} max`, color: LANE_COLOR[lane], points: pts.map((p) => [p.t, p.lanes[lane]!.max]) });
  }
  const worstArrival = worstArrivalLine(r, 'transactional');
  const arrivalChart = arrivalSeries.length
    ? `${lineChart({ id: 'chart-arrival', xLabel: 'seconds since start', yLabel: 'arrival latency (ms)', yFormat: (v) => ms(v), series: arrivalSeries })}
${worstArrival ? `<p>${esc(worstArrival)}</p>` : ''}`
    : '<p>No arrival timeline: the sink reported no timed arrivals in this run, or predates the timeline.</p>';
  const refusalRows = (r.arrival?.refusals ?? []).map((x) => [esc(x.profile), esc(x.phase), esc(replyText(x)), int(x.count)]);
  const memPoints = tl.filter((p) => p.rssMB !== undefined);
  const memory = memPoints.length ? lineChart({
    id: 'chart-memory', xLabel: 'seconds since start', yLabel: 'MB',
    series: [
      { name: 'resident set', color: '#9467bd', points: memPoints.map((p) => [p.t, p.rssMB!]) },
      { name: 'V8 heap in use', color: '#8c564b', points: memPoints.map((p) => [p.t, p.heapMB!]) },
    ],
  }) : '<p>No memory samples (run shorter than a second).</p>';
  const phases = barChart({
    id: 'chart-phases', format: ms,
    rows: PHASES.filter((p) => r.phases[p].count > 0).map((p) => ({
      label: p, values: [{ name: 'p50', color: '#9ecae1', value: r.phases[p].p50 }, { name: 'p99', color: '#3182bd', value: r.phases[p].p99 }],
    })),
  });
  const errorRows = Object.entries(r.errors.byCode).sort((a, b) => b[1] - a[1]);
  const errors = errorRows.length
    ? barChart({ id: 'chart-errors', format: int, rows: errorRows.slice(0, 12).map(([code, n]) => ({ label: code, values: [{ name: 'count', color: '#d62728', value: n }] })) })
    : '<p class="ok">No failed messages.</p>';

  const laneRows = LANES.filter((l) => r.lanes[l].planned > 0).map((l) => {
    const x = r.lanes[l];
    const a = x.arrival?.latencyMs;
    return [l, int(x.planned), int(x.accepted), int(x.failed), ms(x.send.p50), ms(x.send.p90), ms(x.send.p99), ms(x.send.max), a ? ms(a.p50) : '-', a ? ms(a.p99) : '-', a ? ms(a.max) : '-'];
  });
  const thresholdRows = r.thresholds.map((t) => [`<code>${esc(t.expression)}</code>`, thresholdValue(t.metric, t.actual),
    t.ok === null ? '<span class="na">no data</span>' : t.ok ? '<span class="ok">pass</span>' : '<span class="bad">FAIL</span>']);
  const errorEntries = r.errors.entries.slice(0, 30).map((e) => [e.phase, e.code, e.enhanced || '-', e.provider, e.lane, int(e.count), esc(e.sample.slice(0, 120))]);
  for (const [reason, n] of Object.entries(r.errors.connections)) errorEntries.push(['connection', esc(reason), '-', '-', '-', int(n), 'failed before EHLO']);
  const a = r.arrival;

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mailops load ${esc(r.scenario.name)} ${esc(r.runId)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1000px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
.chart text{font-size:11px;fill:#444}.chart .label{font-size:12px}.chart .grid{stroke:#eee}.small{font-size:10px}
.ok{color:#2a7d2a;font-weight:600}.bad{color:#c00;font-weight:700}.na{color:#888}
.kpi{display:inline-block;margin:4px 18px 4px 0}.kpi b{display:block;font-size:20px}
</style></head><body>
<h1>${esc(r.scenario.name)} — run ${esc(r.runId)} — <span class="${r.passed ? 'ok' : 'bad'}">${r.passed ? 'PASSED' : 'FAILED'}</span></h1>
<p>${esc(r.scenario.description)}</p>
${r.interrupted ? '<p class="bad">Interrupted: sending was stopped early; the numbers cover what was sent until then.</p>' : ''}
<p>Target <code>${esc(r.target)}</code> (${r.engine} engine)${r.sink ? `, sink <code>${esc(r.sink)}</code>` : ''}; started ${esc(r.startedAt)}; seed ${r.seed}.</p>
<div>
<span class="kpi"><b>${int(r.totals.accepted)}</b>accepted</span>
<span class="kpi"><b>${pct(r.totals.errorRate)}</b>errors (${int(r.totals.failed)})</span>
<span class="kpi"><b>${r.totals.throughput.toFixed(1)}/s</b>average throughput</span>
<span class="kpi"><b>${ms(r.send.p99)}</b>send p99</span>
<span class="kpi"><b>${bytes(r.totals.bytes)}</b>sent</span>
${a ? `<span class="kpi"><b>${int(a.missing)}</b>missing (arrived ${int(a.arrived)}, refused ${int(a.refused)}, deferred ${int(a.deferred)})</span>` : ''}
</div>
<h2>Thresholds</h2>
${thresholdRows.length ? table(['threshold', 'actual', 'result'], thresholdRows) : '<p>No thresholds in this scenario.</p>'}
<h2>Throughput over time</h2>
${throughput}
<h2>Send latency per lane over time (p50 dashed, p99 solid)</h2>
<p>From the intended send time to the 250 after DATA: the open-loop schedule makes stalls visible (coordinated omission corrected).</p>
${latency}
${a ? `<h2>Arrival latency per lane over time (p99 dashed, max solid)</h2>
<p>From the <code>sent=</code> stamp to arrival at the sink, per second of arrival: a message held up on the way shows as a spike when it finally arrives.</p>
${arrivalChart}` : ''}
<h2>Lanes</h2>
${table(['lane', 'planned', 'accepted', 'failed', 'send p50', 'send p90', 'send p99', 'send max', 'arrival p50', 'arrival p99', 'arrival max'], laneRows)}
<h2>SMTP phases</h2>
${phases}
${table(['phase', 'count', 'p50', 'p90', 'p99', 'max'], PHASES.filter((p) => r.phases[p].count).map((p) => [p, int(r.phases[p].count), ms(r.phases[p].p50), ms(r.phases[p].p90), ms(r.phases[p].p99), ms(r.phases[p].max)]))}
<h2>Errors</h2>
${errors}
${errorEntries.length ? table(['phase', 'code', 'enhanced', 'provider', 'lane', 'count', 'sample'], errorEntries) : ''}
${a ? `<h2>Deferrals and refusals by provider and reply</h2>
<p>What the sink answered with 4xx (deferred) and 5xx (refused) during the run, most frequent first; addresses and IPs are placeholders.</p>
${refusalRows.length ? table(['profile', 'phase', 'reply', 'count'], refusalRows) : '<p class="ok">None.</p>'}` : ''}
<h2>Generator memory</h2>
<p>Messages are generated on the fly: memory should stay flat however many are sent. Body templates held: ${bytes(r.generator.templateBytes)}.</p>
${memory}
${a ? `<h2>Arrival at the sink</h2>${table(['arrived', 'refused (5xx)', 'deferred (4xx, held by the relay)', 'duplicates', 'missing', 'drain'], [[int(a.arrived), int(a.refused), int(a.deferred), int(a.duplicates), int(a.missing), esc(drainText(a))]])}
${table(['sink profile', 'messages'], Object.entries(a.byProfile).map(([k, v]) => [esc(k), int(v)]))}` : ''}
<script>
document.body.dataset.renderedLines = String([...document.querySelectorAll('polyline.series')].filter((p) => p.getTotalLength() > 0).length);
document.body.dataset.renderedBars = String([...document.querySelectorAll('rect.bar')].filter((b) => b.getBBox().width > 0).length);
</script>
</body></html>
`;
}

// Human output with ink: verdicts first, then the results grouped as in the checklist, each with
// its status, id, finding and source. Rendered once to a string (ink's renderToString), so it
// works the same on a terminal and in a pipe, and nothing keeps the process alive afterwards.
import React from 'react';
import { Box, Text, renderToString } from 'ink';
import { CATALOG, GROUP_ORDER } from './catalog.ts';
import type { AuditReport, CheckResult, Status, Verdict } from './types.ts';

const h = React.createElement;

const STATUS: Record<Status, { label: string; color: string }> = {
  pass: { label: 'PASS', color: 'green' },
  warn: { label: 'WARN', color: 'yellow' },
  fail: { label: 'FAIL', color: 'red' },
  info: { label: 'INFO', color: 'cyan' },
  skip: { label: 'SKIP', color: 'gray' },
  temperror: { label: 'TEMP', color: 'magenta' },
};
const VERDICT: Record<Verdict, string> = { pass: 'green', warn: 'yellow', incomplete: 'magenta', fail: 'red' };
const PROFILE_NAME: Record<string, string> = { csa: 'CSA', gmail: 'Gmail', yahoo: 'Yahoo', microsoft: 'Microsoft' };

function Row({ r }: { r: CheckResult }): React.ReactElement {
  const s = STATUS[r.status];
  return h(Box, { flexDirection: 'row', paddingLeft: 1 },
    h(Box, { width: 6, flexShrink: 0 }, h(Text, { color: s.color, bold: true }, s.label)),
    h(Box, { width: 16, flexShrink: 0 }, h(Text, null, r.id)),
    h(Box, { flexDirection: 'column', flexGrow: 1, flexShrink: 1 },
      h(Text, { wrap: 'wrap' }, r.summary),
      h(Text, { dimColor: true, wrap: 'truncate-end' }, r.source)));
}

function Report({ report, title }: { report: AuditReport; title: string }): React.ReactElement {
  const verdicts = Object.entries(report.verdicts).map(([p, v], i) =>
    h(Text, { key: p }, i ? '  ' : '', `${PROFILE_NAME[p]} `, h(Text, { color: VERDICT[v as Verdict], bold: true }, v)));
  const groups = GROUP_ORDER.map((g) => ({ g, rows: report.results.filter((r) => CATALOG[r.id].group === g) })).filter((x) => x.rows.length);
  const counts = (Object.keys(STATUS) as Status[]).map((s) => [s, report.results.filter((r) => r.status === s).length] as const).filter(([, n]) => n);
  return h(Box, { flexDirection: 'column' },
    h(Text, { bold: true }, `${title} `, h(Text, { color: 'blue' }, report.domain)),
    h(Box, { flexWrap: 'wrap' }, h(Text, null, 'Verdict  '), ...verdicts),
    ...groups.map(({ g, rows }) => h(Box, { key: g, flexDirection: 'column', marginTop: 1 },
      h(Text, { bold: true, underline: true }, g),
      ...rows.map((r, i) => h(Row, { key: `${r.id}-${i}`, r })))),
    h(Box, { marginTop: 1 }, h(Text, { dimColor: true }, `${report.results.length} results: ${counts.map(([s, n]) => `${n} ${s}`).join(', ')}`)));
}

export function renderReport(report: AuditReport, title: string, columns = 80): string {
  return renderToString(h(Report, { report, title }), { columns });
}

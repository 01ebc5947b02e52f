// Writes reports/<timestamp>-<scenario>/{report.json,report.html,summary.md}.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Report } from './model.ts';
import { renderHtml } from './html.ts';
import { renderSummary } from './summary-md.ts';

export function writeReport(r: Report, baseDir: string): string {
  const stamp = r.startedAt.replace(/[:.]/g, '-').replace(/-\d+Z$/, 'Z');
  const dir = join(baseDir, `${stamp}-${r.scenario.name.replace(/[^a-z0-9-]/gi, '_')}-${r.runId}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'report.json'), `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(join(dir, 'report.html'), renderHtml(r));
  writeFileSync(join(dir, 'summary.md'), renderSummary(r));
  return dir;
}

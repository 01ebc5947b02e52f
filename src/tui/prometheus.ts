// A small reader for the Prometheus text format, enough for the relay's /metrics: one sample per
// `name{labels} value` line; comments, blank lines and lines it cannot read are skipped, so a
// half-written or foreign answer never throws.

export interface PromSample { name: string; labels: Record<string, string>; value: number }

const LINE = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\s+(\S+)/;
const LABEL = /(\w+)="((?:[^"\\]|\\.)*)"/g;

export function parsePrometheus(text: string, prefix = ''): PromSample[] {
  const out: PromSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#') || !line.startsWith(prefix)) continue;
    const match = LINE.exec(line);
    if (!match) continue;
    const value = match[3] === '+Inf' ? Infinity : Number(match[3]);
    if (Number.isNaN(value)) continue;
    const labels: Record<string, string> = {};
    for (const [, key, raw] of (match[2] ?? '').matchAll(LABEL)) labels[key] = raw.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: match[1], labels, value });
  }
  return out;
}

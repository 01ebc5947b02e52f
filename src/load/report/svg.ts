// Minimal SVG charts for the self-contained HTML report: line charts over time and horizontal
// bars. No library, no network: the numbers are baked into the markup.

export interface Series { name: string; color: string; points: [number, number][]; dashed?: boolean }

const W = 760;
const H = 260;
const PAD = { left: 64, right: 16, top: 16, bottom: 36 };
const LEGEND_PER_ROW = 5;

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const mag = 10 ** Math.floor(Math.log10(v));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * mag >= v) return step * mag;
  return 10 * mag;
}

/** Keeps at most `max` points by taking the max of each group, so peaks stay visible. */
function thin(points: [number, number][], max = 1200): [number, number][] {
  if (points.length <= max) return points;
  const group = Math.ceil(points.length / max);
  const out: [number, number][] = [];
  for (let i = 0; i < points.length; i += group) {
    const slice = points.slice(i, i + group);
    out.push([slice[slice.length - 1][0], Math.max(...slice.map((p) => p[1]))]);
  }
  return out;
}

export function lineChart(o: { id: string; series: Series[]; xLabel: string; yLabel: string; yFormat?: (v: number) => string }): string {
  const all = o.series.flatMap((s) => s.points);
  const xMax = Math.max(1, ...all.map((p) => p[0]));
  const yMax = niceMax(Math.max(0, ...all.map((p) => p[1])));
  const fmt = o.yFormat ?? ((v: number) => String(Math.round(v * 100) / 100));
  // The legend wraps: LEGEND_PER_ROW entries per row above the plot.
  const legendRows = Math.ceil(o.series.length / LEGEND_PER_ROW);
  const top = 12 + legendRows * 14;
  const x = (v: number) => PAD.left + (v / xMax) * (W - PAD.left - PAD.right);
  const y = (v: number) => H - PAD.bottom - (v / yMax) * (H - top - PAD.bottom);
  const parts: string[] = [];
  for (let i = 0; i <= 4; i++) {
    const v = (yMax / 4) * i;
    parts.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(v)}" y2="${y(v)}" class="grid"/>`,
      `<text x="${PAD.left - 6}" y="${y(v) + 4}" text-anchor="end">${esc(fmt(v))}</text>`);
  }
  for (let i = 0; i <= 5; i++) {
    const v = (xMax / 5) * i;
    parts.push(`<text x="${x(v)}" y="${H - PAD.bottom + 16}" text-anchor="middle">${Math.round(v)}</text>`);
  }
  parts.push(`<text x="${(W + PAD.left) / 2}" y="${H - 4}" text-anchor="middle" class="label">${esc(o.xLabel)}</text>`,
    `<text transform="translate(12 ${(H - PAD.bottom) / 2}) rotate(-90)" text-anchor="middle" class="label">${esc(o.yLabel)}</text>`);
  o.series.forEach((s, i) => {
    const pts = thin(s.points);
    if (pts.length === 0) return;
    // A single point still gets a visible segment.
    const drawn = pts.length === 1 ? [[0, pts[0][1]] as [number, number], pts[0]] : pts;
    parts.push(`<polyline class="series" data-series="${esc(s.name)}" data-points="${pts.length}" fill="none" stroke="${s.color}" stroke-width="1.6"${s.dashed ? ' stroke-dasharray="5 3"' : ''} points="${drawn.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ')}"/>`);
    const lx = PAD.left + 8 + (i % LEGEND_PER_ROW) * 135;
    const ly = 4 + Math.floor(i / LEGEND_PER_ROW) * 14;
    parts.push(`<rect x="${lx}" y="${ly}" width="10" height="10" fill="${s.color}"/><text x="${lx + 14}" y="${ly + 9}">${esc(s.name)}</text>`);
  });
  return `<svg id="${o.id}" class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" xmlns="http://www.w3.org/2000/svg">${parts.join('')}</svg>`;
}

export function barChart(o: { id: string; rows: { label: string; values: { name: string; color: string; value: number }[] }[]; format: (v: number) => string }): string {
  const rowH = 22;
  const height = PAD.top + o.rows.length * rowH * 1.2 + 20;
  const max = niceMax(Math.max(0, ...o.rows.flatMap((r) => r.values.map((v) => v.value))));
  const left = 120;
  const width = W - left - 90;
  const parts: string[] = [];
  o.rows.forEach((row, i) => {
    const top = PAD.top + i * rowH * 1.2;
    parts.push(`<text x="${left - 8}" y="${top + rowH / 2 + 4}" text-anchor="end">${esc(row.label)}</text>`);
    const h = rowH / row.values.length;
    row.values.forEach((v, j) => {
      const w = Math.max(1, (v.value / max) * width);
      parts.push(`<rect class="bar" x="${left}" y="${top + j * h}" width="${w.toFixed(1)}" height="${(h - 1).toFixed(1)}" fill="${v.color}"><title>${esc(`${row.label} ${v.name}: ${o.format(v.value)}`)}</title></rect>`,
        `<text x="${left + w + 4}" y="${top + j * h + h - 2}" class="small">${esc(`${v.name} ${o.format(v.value)}`)}</text>`);
    });
  });
  return `<svg id="${o.id}" class="chart" viewBox="0 0 ${W} ${height}" width="${W}" height="${height}" role="img" xmlns="http://www.w3.org/2000/svg">${parts.join('')}</svg>`;
}

// Number formatting shared by the Markdown, HTML and terminal renderers.

export function ms(value: number): string {
  if (value >= 10_000) return `${(value / 1000).toFixed(1)} s`;
  if (value >= 1000) return `${(value / 1000).toFixed(2)} s`;
  if (value >= 10) return `${value.toFixed(0)} ms`;
  return `${value.toFixed(2)} ms`;
}

export function int(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

export function pct(fraction: number): string {
  return `${(fraction * 100).toFixed(fraction < 0.001 && fraction > 0 ? 3 : 2)} %`;
}

export function bytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${n} B`;
}

/** Threshold values in the unit the metric is written in. */
export function thresholdValue(metric: string, value: number | null): string {
  if (value === null) return 'n/a';
  if (metric === 'error_rate') return pct(value);
  if (/^(send|phase|arrival)\./.test(metric)) return ms(value);
  if (metric === 'throughput') return `${value.toFixed(1)}/s`;
  return int(value);
}

// Parsing of the human units used in config files and flags: durations, byte sizes, HOST:PORT.
// Each parser returns undefined on bad input so that the caller can name the key that held it.

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "250ms", "30s", "5m", "2h", "5d", or a plain number of seconds → milliseconds. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
  if (typeof value !== 'string') return undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(value);
  if (!match) return undefined;
  return Number(match[1]) * DURATION_UNITS[match[2] ?? 's'];
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3 };

/** "25MB", "512k", 4096 → bytes. */
export function parseSize(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value > 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = match && SIZE_UNITS[match[2].toLowerCase()];
  return match && unit ? Math.round(Number(match[1]) * unit) : undefined;
}

export interface HostPort { host: string; port: number }

/** "127.0.0.1:2525", "[::1]:25", "mx.example.com:25", ":2525" (all interfaces). */
export function parseHostPort(value: unknown, defaultPort?: number): HostPort | undefined {
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s\[\]]*))(?::(\d{1,5}))?$/.exec(value.trim());
  if (!match) return undefined;
  const host = match[1] ?? match[2] ?? '';
  const port = match[3] === undefined ? defaultPort : Number(match[3]);
  if (port === undefined || port > 65535) return undefined;
  return { host: host === '' ? '0.0.0.0' : host, port };
}

export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

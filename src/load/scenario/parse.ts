// Scenario YAML → Scenario. Every error names the file, the key path and the value found
// (`scenarios/x.yaml: stages[1].duration: expected a duration ..., got "abc"`).
import { ConfigError } from '../../config/errors.ts';
import { Reader, isDoc } from '../../config/reader.ts';
import { parseSize } from '../../util/units.ts';
import { parseThreshold } from '../measure/threshold-parse.ts';
import type { Scenario, SizeDist, Stage, StreamSpec } from './types.ts';

const TOP_KEYS = ['type', 'name', 'description', 'messages', 'rate', 'stages', 'startRate', 'duration', 'connections',
  'messagesPerConnection', 'pipelining', 'bulk', 'transactional', 'member', 'recipients', 'unsubscribeBase',
  'thresholds', 'drainTimeout'];

function fraction(r: Reader, name: string, fallback: number): number {
  const value = r.doc[name];
  if (value === undefined) return fallback;
  const n = typeof value === 'string' && value.trim().endsWith('%') ? Number(value.trim().slice(0, -1)) / 100 : value;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0 || n > 1) r.fail(name, 'a share such as 0.5% or 0.005');
  return n;
}

function sizeDist(r: Reader, name: string, fallback: SizeDist): SizeDist {
  const value = r.doc[name];
  if (value === undefined) return fallback;
  if (!isDoc(value)) {
    const bytes = parseSize(value);
    if (bytes === undefined) r.fail(name, 'a size such as 4096 or 40KB, or {median, p95}');
    return { median: bytes, p95: bytes };
  }
  const s = r.child(name);
  s.only(['median', 'p95']);
  const median = s.size('median');
  const p95 = s.doc.p95 === undefined ? median : s.size('p95');
  if (p95 < median) s.fail('p95', `a size >= median (${median} bytes)`);
  return { median, p95 };
}

function email(r: Reader, name: string, fallback: string): string {
  const value = r.optionalString(name) ?? fallback;
  if (!/^[^@\s<>]+@[^@\s<>]+$/.test(value)) r.fail(name, 'an address like news@example.com');
  return value;
}

function stream(r: Reader, name: string, defaults: StreamSpec): StreamSpec | undefined {
  if (r.doc[name] === undefined) return undefined;
  const s = r.child(name);
  s.only(['rate', 'size', 'from']);
  return { rate: s.number('rate', 0), size: sizeDist(s, 'size', defaults.size), from: email(s, 'from', defaults.from) };
}

function stages(r: Reader): Stage[] {
  return r.readers('stages').map((s) => {
    s.only(['target', 'duration']);
    return { target: s.number('target', 0), duration: s.duration('duration') };
  });
}

/** Validates a parsed YAML document; `source` is the file name used in errors. */
export function parseScenario(doc: unknown, source: string): Scenario {
  const r = new Reader(doc, '', source);
  r.only(TOP_KEYS);
  // one scenario directory for every kind of run: the type says which command plays it
  if (r.doc.type === 'inbound') throw new ConfigError(`${source}: type: an inbound scenario: run it with mailops load inbound`);
  if (r.doc.type !== undefined && r.doc.type !== 'newsletter') r.fail('type', '"newsletter" (or leave it out)');
  const rateValue = r.doc.rate;
  if (rateValue !== undefined && rateValue !== 'max' && !(typeof rateValue === 'number' && rateValue > 0)) {
    r.fail('rate', '"max" or a positive number of messages per second');
  }
  if (rateValue !== undefined && r.doc.stages !== undefined) {
    throw new ConfigError(`${source}: rate: give either rate or stages, not both`);
  }
  const stageList = r.doc.stages !== undefined ? stages(r) : [];
  if (r.doc.stages !== undefined && stageList.length === 0) r.fail('stages', 'at least one stage');
  const rate: Scenario['rate'] = rateValue === 'max' ? 'max'
    : typeof rateValue === 'number' ? [{ target: rateValue, duration: 0 }]
    : stageList.length ? stageList : 'max';

  const bulk = r.child('bulk');
  bulk.only(['from', 'size', 'campaign']);
  const rcpt = r.child('recipients');
  rcpt.only(['providers', 'corporate', 'unknown']);
  const providersDoc = rcpt.doc.providers ?? { 'gmail.com': 12, 'gmx.de': 6, 'web.de': 6, 't-online.de': 5, 'outlook.com': 4, 'yahoo.com': 1 };
  if (!isDoc(providersDoc)) rcpt.fail('providers', 'a mapping of domain: weight');
  const providers = Object.entries(providersDoc).map(([domain, weight]) => {
    if (typeof weight !== 'number' || !(weight >= 0)) rcpt.child('providers').fail(domain, 'a weight >= 0');
    if (!/^[a-z0-9.-]+\.[a-z]{2,}$/i.test(domain)) throw new ConfigError(`${source}: recipients.providers.${domain}: not a domain name`);
    return { domain: domain.toLowerCase(), weight };
  });
  const corp = rcpt.child('corporate');
  corp.only(['weight', 'domains', 'zipf']);
  const corporate = {
    weight: corp.doc.weight === undefined ? 60 : corp.number('weight', 0),
    domains: corp.doc.domains === undefined ? 20_000 : corp.int('domains', 1, 1_000_000),
    zipf: corp.doc.zipf === undefined ? 1.07 : corp.number('zipf', 0),
  };
  if (corporate.weight + providers.reduce((sum, p) => sum + p.weight, 0) <= 0) {
    rcpt.fail('providers', 'weights that do not all add up to 0 (with corporate.weight)');
  }

  const thresholds = r.list('thresholds').map((item, i) => {
    const t = typeof item === 'string' ? parseThreshold(item) : 'expected a string like "error_rate < 1%"';
    if (typeof t === 'string') throw new ConfigError(`${source}: thresholds[${i}]: ${t}, got ${JSON.stringify(item)}`);
    return t;
  });

  const pipelining = r.doc.pipelining ?? true;
  if (typeof pipelining !== 'boolean') r.fail('pipelining', 'true or false');
  const unsubscribeBase = r.optionalString('unsubscribeBase') ?? 'https://news.mailops.test/unsubscribe';
  if (!unsubscribeBase.startsWith('https://')) r.fail('unsubscribeBase', 'an https:// URI (RFC 8058 one-click needs HTTPS)');

  return {
    name: r.optionalString('name') ?? source.replace(/^.*\//, '').replace(/\.ya?ml$/, ''),
    description: r.optionalString('description') ?? '',
    source,
    messages: r.doc.messages === undefined ? 10_000 : r.int('messages', 0),
    rate,
    startRate: r.doc.startRate === undefined ? 0 : r.number('startRate', 0),
    duration: r.doc.duration === undefined ? 0 : r.duration('duration'),
    connections: r.doc.connections === undefined ? 20 : r.int('connections', 1, 10_000),
    messagesPerConnection: r.doc.messagesPerConnection === undefined ? 100 : r.int('messagesPerConnection', 1),
    pipelining: pipelining as boolean,
    bulk: {
      from: email(bulk, 'from', 'newsletter@news.mailops.test'),
      size: sizeDist(bulk, 'size', { median: 40 * 1024, p95: 90 * 1024 }),
      campaign: bulk.optionalString('campaign') ?? 'newsletter',
    },
    transactional: stream(r, 'transactional', { rate: 5, size: { median: 6 * 1024, p95: 10 * 1024 }, from: 'noreply@account.mailops.test' }),
    member: stream(r, 'member', { rate: 20, size: { median: 12 * 1024, p95: 30 * 1024 }, from: 'notifications@members.mailops.test' }),
    recipients: { providers, corporate, unknown: fraction(rcpt, 'unknown', 0) },
    unsubscribeBase,
    thresholds,
    drainTimeout: r.doc.drainTimeout === undefined ? 300_000 : r.duration('drainTimeout'),
  };
}

// An inbound scenario (`type: inbound`, run by `mailops load inbound`): a mix of the clients an MX
// meets, each class a behaviour (src/load/inbound/world.ts gives them addresses, names and DNS):
//
//   legitimate  well-behaved MTAs: wait for the greeting, SPF and DKIM pass, retry after a 4xx
//   pregreet    bots that talk before the greeting and never retry
//   noretry     bots that speak SMTP properly but never come back after a 4xx (greylisting's catch)
//   listed      MTAs on an address the DNSBL zone lists; they retry like legitimate ones
//   forgery     mail From: a domain whose DMARC policy is reject, sent from an address its SPF
//               does not allow and without its DKIM signature; retried like legitimate mail
//   virus       a legitimate MTA (SPF, DKIM pass) carrying the EICAR test file as an attachment
//
// Every duration in ms here; the YAML takes human units. Every error names the file, the key
// path and the value found. Touches nothing but its arguments.
import { ConfigError } from '../../config/errors.ts';
import { Reader } from '../../config/reader.ts';
import { parseDuration } from '../../util/units.ts';

export const INBOUND_CLASSES = ['legitimate', 'pregreet', 'noretry', 'listed', 'forgery', 'virus'] as const;
export type InboundClass = (typeof INBOUND_CLASSES)[number];

/** The classes that retry after a temporary refusal, as an MTA's queue does. */
export const RETRYING: ReadonlySet<InboundClass> = new Set(['legitimate', 'listed', 'forgery', 'virus']);

export interface InboundScenario {
  name: string;
  description: string;
  source: string;
  /** Messages (each one a first attempt; retries come on top). */
  messages: number;
  /** New messages per second. */
  rate: number;
  /** SMTP sessions open at once, at most (first attempts and retries alike). */
  connections: number;
  /** Class → weight. */
  mix: Record<InboundClass, number>;
  /** Valid recipients at the MX under test; each message goes to one, in turn. */
  recipients: string[];
  /** The retrying classes come back this long after each temporary refusal; once the list is used up they give up. */
  retry: number[];
  /** The DNSBL zone the run serves; the relay's inbound.dnsbl.sites should name it. */
  dnsblZone: string;
  /** Body size of each message, bytes (before the attachment, if any). */
  size: number;
  /** One SMTP reply may take this long (the greeting wait included). */
  commandTimeout: number;
  /** The run ends after this, retries still pending or not. */
  timeout: number;
}

const TOP_KEYS = ['type', 'name', 'description', 'messages', 'rate', 'connections', 'mix', 'recipients', 'retry', 'dnsblZone', 'size', 'commandTimeout', 'timeout'];

const DEFAULT_MIX: Record<InboundClass, number> = { legitimate: 50, pregreet: 10, noretry: 10, listed: 10, forgery: 10, virus: 10 };

/** Validates a parsed YAML document of `type: inbound`; `source` is the file name used in errors. */
export function parseInboundScenario(doc: unknown, source: string): InboundScenario {
  const r = new Reader(doc, '', source);
  r.only(TOP_KEYS);
  if (r.doc.type !== 'inbound') r.fail('type', '"inbound" (this is `mailops load inbound`)');

  const mixReader = r.child('mix');
  mixReader.only([...INBOUND_CLASSES]);
  const mix = { ...DEFAULT_MIX };
  if (r.doc.mix !== undefined) {
    // given: the classes it names, the others off
    for (const name of INBOUND_CLASSES) mix[name] = mixReader.doc[name] === undefined ? 0 : mixReader.number(name, 0);
    if (INBOUND_CLASSES.every((name) => mix[name] === 0)) r.fail('mix', 'at least one class with a weight above 0');
  }

  const recipients = r.doc.recipients === undefined ? ['postmaster@mx.mailops.test'] : r.stringList('recipients');
  if (recipients.length === 0) r.fail('recipients', 'at least one address the MX accepts');
  recipients.forEach((address, i) => {
    if (!/^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$/.test(address)) throw new ConfigError(`${source}: recipients[${i}]: expected an address like postmaster@example.com, got ${JSON.stringify(address)}`);
  });

  const retry = r.doc.retry === undefined ? [6 * 60_000, 15 * 60_000, 30 * 60_000] : r.list('retry').map((item, i) => {
    const ms = parseDuration(item);
    if (!ms) throw new ConfigError(`${source}: retry[${i}]: expected a duration above zero, such as 5m, got ${JSON.stringify(item)}`);
    return ms;
  });

  const dnsblZone = (r.optionalString('dnsblZone') ?? 'dnsbl.mailops.test').toLowerCase().replace(/\.$/, '');
  if (!/^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(dnsblZone)) r.fail('dnsblZone', 'a DNS zone such as dnsbl.mailops.test');

  return {
    name: r.optionalString('name') ?? source.replace(/^.*\//, '').replace(/\.ya?ml$/, ''),
    description: r.optionalString('description') ?? '',
    source,
    messages: r.doc.messages === undefined ? 100 : r.int('messages', 1),
    rate: r.doc.rate === undefined ? 10 : positiveNumber(r, 'rate'),
    connections: r.doc.connections === undefined ? 20 : r.int('connections', 1, 10_000),
    mix,
    recipients: recipients.map((a) => a.toLowerCase()),
    retry,
    dnsblZone,
    size: r.doc.size === undefined ? 4096 : r.size('size'),
    commandTimeout: r.doc.commandTimeout === undefined ? 60_000 : positiveDuration(r, 'commandTimeout'),
    timeout: r.doc.timeout === undefined ? 2 * 3_600_000 : positiveDuration(r, 'timeout'),
  };
}

function positiveNumber(r: Reader, name: string): number {
  const n = r.number(name, 0);
  if (n <= 0) r.fail(name, 'a number above 0');
  return n;
}

function positiveDuration(r: Reader, name: string): number {
  const ms = r.duration(name);
  if (ms <= 0) r.fail(name, 'a duration above zero, such as 30s');
  return ms;
}

// Reads `inbound`: the MX listener for the local domains (relay/inbound/), its recipient
// validation, the defences before the mail is read (greeting wait, DNSBL/DNSWL), greylisting,
// the SPF/DKIM/DMARC verdicts and, through config/inbound-scan.ts, the content scanners. Absent
// (or null), the node has no MX listener. Every bad value is named by its key path
// (inbound.greylist.delay); values that must fit together (a deliver entry for every domain, the
// recipients within the domains) are checked here too.
//
// Besides its own keys it adds to the document it reads: the lane "inbound" when `inbound.lane`
// is "inbound" (the default) and `lanes` has none of that name, placed right after the first lane
// (withInboundLane), and one route per `inbound.deliver` entry (read() in load.ts puts them after
// `routes`), so that inbound mail travels through the spool, lanes and delivery like any other.
// May touch: nothing but the Readers and documents it is given.
import { isIP } from 'node:net';
import { validDomain } from '../relay/receive/policy.ts';
import { cidrList } from '../util/network.ts';
import type { HostPort } from '../util/units.ts';
import { readScanConfig, type ScanConfig } from './inbound-scan.ts';
import { isDoc, merge, type Reader } from './reader.ts';

/** What a verdict leads to: refuse with 550 5.7.1, accept with a header saying why, or accept. */
export type AuthAction = 'reject' | 'tag' | 'accept';

/** One DNSBL/DNSWL site as Postfix's postscreen_dnsbl_sites writes it: `zone[=filter][*weight]`. */
export interface DnsblSite {
  /** As written in the config, for logs and replies. */
  text: string;
  zone: string;
  /** Added to the client's score when the zone lists it; negative for allowlists (DNSWL). */
  weight: number;
  /** The answers that count, one list of [low, high] ranges per octet; undefined: any 127.x answer but 127.255.255.x. */
  filter?: [number, number][][];
}

export interface InboundConfig {
  listen: HostPort[];
  /** Lower case; mail for other domains is refused at RCPT (no relaying through the MX). */
  domains: string[];
  /** The mailbox server of each domain (also added to `routes`). */
  deliver: { domain: string; to: HostPort }[];
  lane: string;
  /** `list`: inbound.recipients; `callout`: an RCPT probe to the domain's mailbox server, cached. */
  verify: 'list' | 'callout';
  /** Lower-case addresses, and `@domain` for every address of a domain. */
  recipients: string[];
  callout: { timeout: number; positiveTtl: number; negativeTtl: number };
  /** Greeting wait for clients not yet known good (0: none, no pregreet test); a pass is remembered for `ttl`. */
  greeting: { delay: number; ttl: number };
  dnsbl: {
    sites: DnsblSite[];
    /** A score at or above this refuses the client (554 5.7.1). */
    threshold: number;
    /** A score at or below this (DNSWL) skips the greeting wait and greylisting. */
    allowThreshold: number;
    /** Each answer is remembered for its TTL, held within these. */
    minTtl: number;
    maxTtl: number;
    timeout: number;
  };
  greylist: {
    enabled: boolean;
    delay: number;
    window: number;
    /** Passed triplets and auto-allowed clients unseen this long are forgotten. */
    maxAge: number;
    /** Passes (at most one an hour) after which a client network skips greylisting; 0: never. */
    autoAllow: number;
    /** CIDR networks, and domains matched against the client's forward-confirmed reverse name. */
    allow: string[];
  };
  auth: { enabled: boolean; dmarcReject: AuthAction; dmarcQuarantine: AuthAction; spfFail: AuthAction };
  scan: ScanConfig;
}

/** The keys of `inbound`, with their defaults in the units of a YAML file. */
const INBOUND_DEFAULTS = {
  lane: 'inbound',
  recipients: [],
  callout: { timeout: '10s', positiveTtl: '1d', negativeTtl: '1h' },
  greeting: { delay: '6s', ttl: '1d' },
  dnsbl: { sites: [], threshold: 2, allowThreshold: -1, minTtl: '60s', maxTtl: '1h', timeout: '5s' },
  greylist: { enabled: true, delay: '300s', window: '2d', maxAge: '35d', autoAllow: 5, allow: [] },
  auth: { enabled: true, dmarcReject: 'reject', dmarcQuarantine: 'tag', spfFail: 'accept' },
  scan: {},
};

/** What a lane added for inbound mail starts from (the member defaults). */
const INBOUND_LANE = { concurrency: 50, reserve: 0, retry: { initial: '1m', max: '1h', factor: 2 }, lifetime: '5d' };

function inboundDoc(root: Record<string, unknown>): Record<string, unknown> | undefined {
  const given = root.inbound;
  return isDoc(given) ? merge(INBOUND_DEFAULTS, given) : undefined;
}

/**
 * The `lanes` document with the inbound lane added when inbound is configured and no lane has its
 * name: right after the first lane, so that the last lane stays the one intake pacing holds back.
 */
export function withInboundLane(root: Record<string, unknown>): unknown {
  const lanes = root.lanes;
  const inbound = inboundDoc(root);
  // only for the default name: a lane of another name must exist (a typo must not make a lane)
  if (!inbound || !isDoc(lanes) || inbound.lane !== INBOUND_DEFAULTS.lane || lanes[INBOUND_DEFAULTS.lane] !== undefined) return lanes;
  const names = Object.keys(lanes);
  const out: Record<string, unknown> = {};
  names.forEach((name, i) => {
    out[name] = lanes[name];
    if (i === 0) out[INBOUND_DEFAULTS.lane] = INBOUND_LANE;
  });
  if (names.length === 0) out[INBOUND_DEFAULTS.lane] = INBOUND_LANE;
  return out;
}

/** `inbound`: undefined when absent or null. */
export function readInbound(root: Reader, laneNames: string[]): InboundConfig | undefined {
  if (root.doc.inbound === undefined || root.doc.inbound === null) return undefined;
  const inbound = root.readerFor(inboundDoc(root.doc) ?? root.doc.inbound, root.key('inbound'));
  inbound.only(['listen', 'domains', 'deliver', 'lane', 'verify', 'recipients', 'callout', 'greeting', 'dnsbl', 'greylist', 'auth', 'scan']);

  const listenValue = inbound.doc.listen;
  const listen = Array.isArray(listenValue)
    ? listenValue.map((value, i) => inbound.readerFor({ [`listen[${i}]`]: value }, inbound.path).hostPort(`listen[${i}]`))
    : [inbound.hostPort('listen', 25)];

  const domains = inbound.stringList('domains').map((d) => d.toLowerCase());
  if (inbound.doc.domains === undefined || (Array.isArray(inbound.doc.domains) && domains.length === 0)) inbound.report('domains', 'a list of the domains this MX receives mail for');
  domains.forEach((domain, i) => {
    if (!validDomain(domain)) inbound.reportText(`domains[${i}]`, `${JSON.stringify(domain)} is not a domain name`);
  });

  const deliver = inbound.readers('deliver').map((entry) => {
    entry.only(['domain', 'to']);
    const domain = entry.string('domain').toLowerCase();
    if (domain && !domains.includes(domain)) entry.report('domain', `one of inbound.domains (${domains.join(', ')})`);
    return { domain, to: entry.hostPort('to', 25) };
  });
  const undelivered = domains.filter((domain) => !deliver.some((d) => d.domain === domain));
  if (undelivered.length) inbound.reportText('deliver', `no mailbox server for ${undelivered.join(', ')}: every domain in inbound.domains needs a { domain, to: HOST:PORT } entry`);

  const lane = inbound.string('lane');
  if (lane && !laneNames.includes(lane)) inbound.report('lane', `one of the lanes (${laneNames.join(', ')})`);

  const recipients = inbound.stringList('recipients').map((r) => r.toLowerCase());
  recipients.forEach((address, i) => {
    const at = address.lastIndexOf('@');
    const domain = address.slice(at + 1);
    if (at < 0 || !domains.includes(domain)) inbound.reportText(`recipients[${i}]`, `expected local@domain or @domain with a domain of inbound.domains, got ${JSON.stringify(address)}`);
  });
  const verifyValue = inbound.doc.verify ?? (recipients.length ? 'list' : undefined);
  if (verifyValue !== 'list' && verifyValue !== 'callout') {
    // accepting every address and letting the mailbox server refuse later would bounce to forged senders
    inbound.report('verify', 'list (with inbound.recipients) or callout: unknown recipients must be refused at RCPT, not bounced later');
  } else if (verifyValue === 'list' && recipients.length === 0) {
    inbound.report('recipients', 'the list of valid addresses (local@domain, or @domain for all of a domain) for inbound.verify: list');
  }

  const callout = inbound.child('callout');
  callout.only(['timeout', 'positiveTtl', 'negativeTtl']);
  const greeting = inbound.child('greeting');
  greeting.only(['delay', 'ttl']);

  return {
    listen,
    domains,
    deliver,
    lane,
    verify: verifyValue === 'callout' ? 'callout' : 'list',
    recipients,
    callout: { timeout: positive(callout, 'timeout'), positiveTtl: callout.duration('positiveTtl'), negativeTtl: callout.duration('negativeTtl') },
    greeting: { delay: greeting.duration('delay'), ttl: greeting.duration('ttl') },
    dnsbl: readDnsbl(inbound.child('dnsbl')),
    greylist: readGreylist(inbound.child('greylist')),
    auth: readAuth(inbound.child('auth')),
    scan: readScanConfig(inbound.child('scan')),
  };
}

function readDnsbl(dnsbl: Reader): InboundConfig['dnsbl'] {
  dnsbl.only(['sites', 'threshold', 'allowThreshold', 'minTtl', 'maxTtl', 'timeout']);
  const sites = dnsbl.stringList('sites').flatMap((text, i) => {
    const site = parseDnsblSite(text);
    if (typeof site === 'string') {
      dnsbl.reportText(`sites[${i}]`, `${JSON.stringify(text)}: ${site} (expected zone[=127.0.0.[2..11]][*weight], as in postscreen_dnsbl_sites)`);
      return [];
    }
    return [site];
  });
  const threshold = dnsbl.int('threshold', 1);
  const allowThreshold = integer(dnsbl, 'allowThreshold');
  if (allowThreshold >= threshold) dnsbl.report('allowThreshold', `an integer below threshold (${threshold}), such as -1`);
  const minTtl = dnsbl.duration('minTtl');
  const maxTtl = dnsbl.duration('maxTtl');
  if (maxTtl < minTtl) dnsbl.report('maxTtl', 'a duration no shorter than minTtl');
  return { sites, threshold, allowThreshold, minTtl, maxTtl, timeout: positive(dnsbl, 'timeout') };
}

function readGreylist(greylist: Reader): InboundConfig['greylist'] {
  greylist.only(['enabled', 'delay', 'window', 'maxAge', 'autoAllow', 'allow']);
  const enabled = greylist.doc.enabled;
  if (typeof enabled !== 'boolean') greylist.report('enabled', 'true or false');
  const delay = greylist.duration('delay');
  const window = greylist.duration('window');
  if (window <= delay) greylist.report('window', 'a duration longer than inbound.greylist.delay (the time a client has to come back)');
  const maxAge = greylist.duration('maxAge');
  if (maxAge < window) greylist.report('maxAge', 'a duration no shorter than inbound.greylist.window');
  const allow = greylist.stringList('allow').map((entry) => entry.toLowerCase());
  allow.forEach((entry, i) => {
    const network = isIP(entry.split('/')[0]) !== 0;
    if (network ? 'bad' in cidrList([entry]) : !validDomain(entry.replace(/^\./, ''))) {
      greylist.reportText(`allow[${i}]`, `expected an address or CIDR network (192.0.2.0/24) or a domain (example.com), got ${JSON.stringify(entry)}`);
    }
  });
  return { enabled: enabled !== false, delay, window, maxAge, autoAllow: greylist.int('autoAllow', 0), allow };
}

function readAuth(auth: Reader): InboundConfig['auth'] {
  auth.only(['enabled', 'dmarcReject', 'dmarcQuarantine', 'spfFail']);
  if (typeof auth.doc.enabled !== 'boolean') auth.report('enabled', 'true or false');
  const action = (name: string): AuthAction => {
    const value = auth.doc[name];
    if (value === 'reject' || value === 'tag' || value === 'accept') return value;
    auth.report(name, 'reject (550 5.7.1), tag (accept with a header) or accept');
    return 'accept';
  };
  return { enabled: auth.doc.enabled !== false, dmarcReject: action('dmarcReject'), dmarcQuarantine: action('dmarcQuarantine'), spfFail: action('spfFail') };
}

/** An integer of either sign (a DNSWL score is negative). */
function integer(reader: Reader, name: string): number {
  const value = reader.doc[name];
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  reader.report(name, 'an integer');
  return 0;
}

function positive(reader: Reader, name: string): number {
  const ms = reader.duration(name);
  if (ms <= 0) reader.report(name, 'a duration above zero, such as 10s');
  return ms;
}

const OCTET = /^(?:\d{1,3}|\[[\d.;]+\])$/;

/** `zone[=filter][*weight]` → the site, or what is wrong with it. */
export function parseDnsblSite(text: string): DnsblSite | string {
  const match = /^([^=*\s]+)(?:=([^*\s]+))?(?:\*(-?\d+))?$/.exec(text.trim());
  if (!match) return 'not a site';
  const [, zoneText, filterText, weightText] = match;
  const zone = zoneText.toLowerCase().replace(/\.$/, '');
  if (!validDomain(zone)) return `${JSON.stringify(zone)} is not a domain name`;
  const weight = weightText === undefined ? 1 : Number(weightText);
  if (weight === 0) return 'a weight of 0 would never count';
  if (filterText === undefined) return { text, zone, weight };
  const octets = filterText.split(/\.(?![^[]*\])/);
  if (octets.length !== 4 || !octets.every((o) => OCTET.test(o))) return `the filter ${JSON.stringify(filterText)} is not four octets (a number, [2..11] or [2;4;6] each)`;
  const filter: [number, number][][] = [];
  for (const octet of octets) {
    const parts = octet.startsWith('[') ? octet.slice(1, -1).split(';') : [octet];
    const ranges: [number, number][] = [];
    for (const part of parts) {
      const [low, high = low] = part.split('..').map(Number);
      if (!Number.isInteger(low) || !Number.isInteger(high) || low > high || high > 255 || part.split('..').length > 2) return `bad octet ${JSON.stringify(octet)} in the filter`;
      ranges.push([low, high]);
    }
    filter.push(ranges);
  }
  return { text, zone, weight, filter };
}

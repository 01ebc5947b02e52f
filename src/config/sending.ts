// Defaults and validation for the sending-quality keys: `dkim`, `bounces`, `shaping` and a lane's
// `egress`. Provider profiles ship with the shaping used by high-volume MTAs toward the big
// mailbox providers (see docs/sending.md); a config file overrides any value of a profile or
// adds profiles of its own (matched in order, before `default`).
import { isIP } from 'node:net';
import { merge, type Reader } from './reader.ts';
import type { BackoffAction, BackoffRule, BouncesConfig, DkimAlgorithm, DkimKeyConfig, LaneEgress, ShapingConfig, ShapingProfile } from './sending-types.ts';

const FEWER = { match: 'Too many connections|4\\.7\\.652|exceeded the maximum number of connections', action: 'reduce' };

/**
 * Built-in provider profiles (docs/sending.md lists where the values come from). Rates are per
 * egress path (one sending address to one provider) and deliberately below what the providers
 * tolerate from an address without a long reputation (the sink's profiles model those limits): a
 * relay that sends just under a provider's limit never meets the pause its throttle reply brings.
 */
export function shapingDefaults(): Record<string, unknown> {
  return {
    rampStep: '1m',
    profiles: {
      google: {
        mx: ['google.com', 'googlemail.com'], maxConnections: 5, messagesPerConnection: 50, rate: { perSecond: 40 },
        backoff: [{ match: '4\\.7\\.28', action: 'pause', for: '15m' }, FEWER],
      },
      outlook: {
        mx: ['outlook.com', 'hotmail.com', 'protection.outlook.com'], maxConnections: 5, messagesPerConnection: 50, rate: { perSecond: 20 },
        backoff: [{ match: '4\\.7\\.650', action: 'pause', for: '15m' }, FEWER],
      },
      yahoo: {
        mx: ['yahoodns.net', 'yahoo.com', 'aol.com'], maxConnections: 10, messagesPerConnection: 20, rate: { perSecond: 12 },
        backoff: [{ match: '\\[TSS04\\]', action: 'suspend', for: '2h' }, FEWER],
      },
      'united-internet': {
        mx: ['gmx.net', 'gmx.de', 'web.de', 'kundenserver.de'], maxConnections: 4, messagesPerConnection: 20, rate: { perSecond: 8 },
        backoff: [{ match: 'Too many messages|reduce the sending rate', action: 'pause', for: '10m' }, FEWER],
      },
      telekom: {
        mx: ['t-online.de'], maxConnections: 10, messagesPerConnection: 100, rate: { perSecond: 12 },
        backoff: [{ match: 'NOWL|bad reputation', action: 'suspend', for: '1h' }, { match: 'Too many messages from', action: 'pause', for: '1m' }, FEWER],
      },
      icloud: { mx: ['icloud.com', 'me.com', 'mac.com'], maxConnections: 10, messagesPerConnection: 5, backoff: [FEWER] },
      default: { mx: [], maxConnections: 10, messagesPerConnection: 100, backoff: [FEWER] },
    },
  };
}

const PROFILE_BASE = { mx: [], maxConnections: 10, messagesPerConnection: 100, rate: { perSecond: 0, perHour: 0 }, backoff: [] };

export function readDkim(root: Reader): DkimKeyConfig[] {
  return root.readers('dkim').map((entry) => {
    entry.only(['domain', 'selector', 'privateKey', 'algorithm']);
    const algorithm = entry.doc.algorithm ?? 'rsa-sha256';
    if (algorithm !== 'rsa-sha256' && algorithm !== 'ed25519-sha256') entry.report('algorithm', 'rsa-sha256 or ed25519-sha256');
    const domain = entry.string('domain').toLowerCase().replace(/\.$/, '');
    const selector = entry.string('selector');
    if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(selector)) entry.report('selector', 'a selector made of DNS labels');
    return { domain, selector, privateKey: entry.string('privateKey'), algorithm: algorithm as DkimAlgorithm };
  });
}

export function readBounces(root: Reader, laneNames: string[]): BouncesConfig {
  const bounces = root.child('bounces');
  bounces.only(['dsn', 'lane', 'suppress']);
  const flag = (key: string) => {
    const value = bounces.doc[key] ?? true;
    if (typeof value !== 'boolean') bounces.report(key, 'true or false');
    return value as boolean;
  };
  const lane = bounces.doc.lane === undefined ? laneNames[0] : bounces.string('lane');
  if (!laneNames.includes(lane)) bounces.report('lane', `one of the lanes (${laneNames.join(', ')})`);
  return { dsn: flag('dsn'), suppress: flag('suppress'), lane };
}

function readRule(rule: Reader): BackoffRule {
  rule.only(['match', 'action', 'for', 'connections']);
  const match = rule.string('match');
  let regex = /(?!)/; // stands in for a bad expression, which is reported
  try {
    regex = new RegExp(match, 'i');
  } catch (err) {
    rule.report('match', `a regular expression (${(err as Error).message})`);
  }
  const action = rule.string('action') as BackoffAction;
  if (!['reduce', 'pause', 'suspend'].includes(action)) rule.report('action', 'reduce, pause or suspend');
  if (action === 'pause' && rule.doc.for === undefined) rule.report('for', 'a duration for a pause (such as 10m)');
  return {
    match, regex, action,
    duration: rule.doc.for === undefined ? undefined : rule.duration('for'),
    connections: rule.doc.connections === undefined ? undefined : rule.int('connections', 1),
  };
}

/** `deliveryIdle` (delivery.idleTimeout) is a profile's idle timeout unless it sets its own. */
export function readShaping(root: Reader, deliveryIdle: number): ShapingConfig {
  const shaping = root.child('shaping');
  shaping.only(['rampStep', 'profiles']);
  const profiles = shaping.child('profiles');
  const names = Object.keys(profiles.doc).filter((name) => profiles.doc[name] !== null);
  const ordered = [...names.filter((n) => n !== 'default'), ...names.filter((n) => n === 'default')];
  if (!ordered.includes('default')) profiles.reportText('default', 'a default profile is required');
  const out = ordered.map((name): ShapingProfile => {
    const given = profiles.doc[name];
    const profile = profiles.readerFor(typeof given === 'object' && given !== null && !Array.isArray(given) ? merge(PROFILE_BASE, given as Record<string, unknown>) : given, profiles.key(name));
    profile.only(['mx', 'maxConnections', 'messagesPerConnection', 'rate', 'idleTimeout', 'backoff']);
    const rate = profile.child('rate');
    rate.only(['perSecond', 'perHour']);
    const mx = profile.stringList('mx').map((s) => s.toLowerCase().replace(/^\.|\.$/g, ''));
    if (name !== 'default' && mx.length === 0) profile.report('mx', 'at least one MX host suffix');
    return {
      name, mx,
      maxConnections: profile.int('maxConnections', 1),
      messagesPerConnection: profile.int('messagesPerConnection', 1),
      ratePerSecond: rate.number('perSecond', 0),
      ratePerHour: rate.number('perHour', 0),
      idleTimeout: profile.doc.idleTimeout === undefined ? deliveryIdle : profile.duration('idleTimeout'),
      backoff: profile.readers('backoff').map(readRule),
    };
  });
  return { profiles: out, rampStep: shaping.duration('rampStep') };
}

export function readEgress(lane: Reader): LaneEgress | undefined {
  if (lane.doc.egress === undefined) return undefined;
  const egress = lane.child('egress');
  egress.only(['address', 'helo']);
  const address = egress.optionalString('address');
  if (address !== undefined && !isIP(address)) egress.report('address', 'an IPv4 or IPv6 address of this host');
  const helo = egress.optionalString('helo');
  if (helo !== undefined && !/^[a-z0-9.-]+$/i.test(helo)) egress.report('helo', 'a host name');
  return { address, helo };
}

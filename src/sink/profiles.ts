// Loads the provider profiles (YAML data): the built-in profiles.yaml, optionally deep-merged with a
// user's file, `extends` resolved, every key validated with its path. Also the routes' `mx` and the
// `dns` section (the simulated internet of `mailops sink --dns`, parsed by internet.ts). Reads
// only the profile files it is given.
import { readFileSync } from 'node:fs';
import { BlockList } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { ConfigError } from '../config/errors.ts';
import { isDoc, merge, Reader } from '../config/reader.ts';
import { cidrList } from '../util/network.ts';
import { domainGlob, readInternet, readMx, type InternetData, type MxTemplate } from './internet.ts';
import { lognormal, type Latency } from './random.ts';
import { replyTemplate, type ReplyTemplate } from './reply.ts';

export const BUILTIN_PROFILES = fileURLToPath(new URL('./profiles.yaml', import.meta.url));

export const PHASES = ['connect', 'ehlo', 'mail', 'rcpt', 'data', 'dataEnd'] as const;
export type Phase = (typeof PHASES)[number];

export interface Profile {
  name: string;
  latency: Partial<Record<Phase, Latency>>;
  maxConnections?: { limit: number; reply: ReplyTemplate };
  maxMessagesPerConnection?: { limit: number; action: 'close' | 'reply'; reply?: ReplyTemplate };
  rate?: { messages: number; windowMs: number; phase: 'mail' | 'rcpt' | 'dataEnd'; reply: ReplyTemplate };
  unknownUsers?: { share: number; prefix?: string; reply: ReplyTemplate };
  mailboxFull?: { share: number; reply: ReplyTemplate };
  tlsRequired?: { reply: ReplyTemplate };
  refuseConnect?: { allow: BlockList; reply: ReplyTemplate };
  greylist?: { delayMs: number; windowMs: number; maxEntries: number; reply: ReplyTemplate };
}

export interface Route {
  /** The domain patterns as written (lower case). */
  domains: string[];
  pattern: RegExp;
  profile: string;
  /** The route's mail exchangers in the simulated internet (`--dns`). */
  mx?: MxTemplate[];
  /** Where the route was defined ("routes[2]"), for errors found later. */
  key: string;
}

export interface ProfileSet {
  profiles: Map<string, Profile>;
  routes: Route[];
  defaultProfile: string;
  /** The `dns` section: the simulated internet of `mailops sink --dns`. */
  internet: InternetData;
}

type Doc = Record<string, unknown>;

function readYaml(file: string, what: string): Doc {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${file}: cannot read ${what} (${(err as Error).message})`);
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length) throw new ConfigError(`${file}: invalid YAML: ${doc.errors[0].message}`);
  const value = doc.toJS() ?? {};
  if (!isDoc(value)) throw new ConfigError(`${file}: ${what} must be a YAML mapping`);
  return value;
}

/** Built-in profiles, with `file` (or an already parsed document) merged over them. */
export function loadProfiles(override?: string | Doc): ProfileSet {
  let doc = readYaml(BUILTIN_PROFILES, 'built-in profiles');
  let source = BUILTIN_PROFILES;
  if (typeof override === 'string') {
    doc = mergeProfiles(doc, readYaml(override, 'profiles file'));
    source = override;
  } else if (override) {
    doc = mergeProfiles(doc, override);
    source = 'profiles option';
  }
  return validate(doc, source);
}

/** Deep merge, except that a latency phase is replaced whole (median/p99 and min/max do not mix). */
function mergeProfile(base: unknown, over: unknown): unknown {
  if (!isDoc(base) || !isDoc(over)) return over;
  const out = merge(base, over);
  if (isDoc(base.latency) && isDoc(over.latency)) out.latency = { ...base.latency, ...over.latency };
  return out;
}

function mergeProfiles(base: Doc, over: Doc): Doc {
  const out = merge(base, over);
  if (isDoc(base.profiles) && isDoc(over.profiles)) {
    const profiles: Doc = { ...base.profiles };
    for (const [name, value] of Object.entries(over.profiles)) profiles[name] = mergeProfile(base.profiles[name], value);
    out.profiles = profiles;
  }
  return out;
}

function validate(doc: Doc, source: string): ProfileSet {
  const root = new Reader(doc, '', source);
  root.only(['routes', 'default', 'profiles', 'dns']);
  const defs = root.child('profiles');
  const names = Object.keys(defs.doc);
  const profiles = new Map<string, Profile>();
  for (const name of names) profiles.set(name, profile(resolveExtends(defs, name, []), name));

  const known = (reader: Reader, key: string): string => {
    const name = reader.string(key);
    if (!profiles.has(name)) reader.fail(key, `a profile name (${names.join(', ')})`);
    return name;
  };
  const routes = root.readers('routes').map((route): Route => {
    route.only(['domains', 'profile', 'mx']);
    const domains = route.stringList('domains');
    if (domains.length === 0) route.fail('domains', 'a non-empty list of domain patterns');
    const mx = route.doc.mx === undefined || route.doc.mx === null ? undefined : readMx(route, 'mx', ['domain', 'domain-dashed']);
    return { domains: domains.map((d) => d.toLowerCase()), pattern: domainGlob(domains), profile: known(route, 'profile'), mx, key: route.path };
  });
  return { profiles, routes, defaultProfile: known(root, 'default'), internet: readInternet(root, names) };
}

/** The profile's own keys over those of the profile it extends (recursively). */
function resolveExtends(defs: Reader, name: string, chain: string[]): Reader {
  const own = defs.child(name);
  const parent = own.doc.extends;
  if (parent === undefined) return own;
  if (typeof parent !== 'string') return own.fail('extends', 'a profile name');
  if (!isDoc(defs.doc[parent])) own.fail('extends', `a profile name (${Object.keys(defs.doc).join(', ')})`);
  if (chain.includes(parent)) throw new ConfigError(`${defs.source}: ${own.key('extends')}: circular extends (${[...chain, name, parent].join(' → ')})`);
  const base = resolveExtends(defs, parent, [...chain, name]);
  const { extends: _, ...rest } = own.doc;
  return new Reader(mergeProfile(base.doc, rest), own.path, own.source);
}

/** null or false switches off a behaviour inherited through `extends`. */
function present(r: Reader, key: string): boolean {
  const value = r.doc[key];
  return value !== undefined && value !== null && value !== false;
}

function reply(r: Reader, key: string, range?: [number, number]): ReplyTemplate {
  return replyTemplate(r.string(key), `${r.source}: ${r.key(key)}`, range);
}

function share(r: Reader, key: string): number {
  const value = r.doc[key];
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) r.fail(key, 'a share from 0 to 1');
  return value;
}

function latency(r: Reader, key: string): Latency {
  const value = r.doc[key];
  if (!isDoc(value)) return { kind: 'fixed', ms: r.duration(key) };
  const l = r.child(key);
  if ('median' in value) {
    l.only(['median', 'p99', 'max']);
    const median = l.duration('median');
    const p99 = l.doc.p99 === undefined ? median : l.duration('p99');
    if (p99 < median) l.fail('p99', `a duration >= median (${median}ms)`);
    return lognormal(median, p99, l.doc.max === undefined ? p99 * 3 : l.duration('max'));
  }
  l.only(['min', 'max']);
  const min = l.duration('min');
  const max = l.duration('max');
  if (max < min) l.fail('max', `a duration >= min (${min}ms)`);
  return { kind: 'uniform', min, max };
}

function profile(r: Reader, name: string): Profile {
  r.only(['extends', 'latency', 'maxConnections', 'maxMessagesPerConnection', 'rate', 'unknownUsers', 'mailboxFull',
    'tlsRequired', 'refuseConnect', 'greylist']);
  const p: Profile = { name, latency: {} };
  if (present(r, 'latency')) {
    const l = r.child('latency');
    l.only([...PHASES]);
    for (const phase of PHASES) if (l.doc[phase] !== undefined) p.latency[phase] = latency(l, phase);
  }
  if (present(r, 'maxConnections')) {
    const c = r.child('maxConnections');
    c.only(['limit', 'reply']);
    p.maxConnections = { limit: c.int('limit', 1), reply: reply(c, 'reply', [400, 599]) };
  }
  if (present(r, 'maxMessagesPerConnection')) {
    const c = r.child('maxMessagesPerConnection');
    c.only(['limit', 'action', 'reply']);
    const action = (c.doc.action ?? 'reply') as string;
    if (action !== 'close' && action !== 'reply') c.fail('action', '"close" (drop the connection silently) or "reply"');
    p.maxMessagesPerConnection = { limit: c.int('limit', 1), action: action as 'close' | 'reply', reply: action === 'reply' ? reply(c, 'reply', [400, 599]) : undefined };
  }
  if (present(r, 'rate')) {
    const c = r.child('rate');
    c.only(['messages', 'window', 'phase', 'reply']);
    const phase = (c.doc.phase ?? 'rcpt') as string;
    if (phase !== 'mail' && phase !== 'rcpt' && phase !== 'dataEnd') c.fail('phase', 'mail, rcpt or dataEnd');
    const windowMs = c.duration('window');
    if (windowMs <= 0) c.fail('window', 'a duration > 0');
    p.rate = { messages: c.int('messages', 1), windowMs, phase: phase as 'mail' | 'rcpt' | 'dataEnd', reply: reply(c, 'reply', [400, 599]) };
  }
  if (present(r, 'unknownUsers')) {
    const c = r.child('unknownUsers');
    c.only(['share', 'prefix', 'reply']);
    const prefix = c.optionalString('prefix')?.toLowerCase();
    p.unknownUsers = { share: c.doc.share === undefined ? 0 : share(c, 'share'), prefix, reply: reply(c, 'reply', [500, 599]) };
  }
  if (present(r, 'mailboxFull')) {
    const c = r.child('mailboxFull');
    c.only(['share', 'reply']);
    p.mailboxFull = { share: share(c, 'share'), reply: reply(c, 'reply', [400, 599]) };
  }
  if (present(r, 'tlsRequired')) {
    const c = r.doc.tlsRequired === true ? new Reader({ reply: '530 5.7.0 Must issue a STARTTLS command first' }, r.key('tlsRequired'), r.source) : r.child('tlsRequired');
    c.only(['reply']);
    p.tlsRequired = { reply: reply(c, 'reply', [400, 599]) };
  }
  if (present(r, 'refuseConnect')) {
    const c = r.child('refuseConnect');
    c.only(['allow', 'reply']);
    const cidrs = cidrList(c.stringList('allow'));
    if ('bad' in cidrs) throw new ConfigError(`${c.source}: ${c.key('allow')}: ${JSON.stringify(cidrs.bad)} is not a CIDR network`);
    p.refuseConnect = { allow: cidrs.list, reply: reply(c, 'reply', [400, 599]) };
  }
  if (present(r, 'greylist')) {
    const c = r.child('greylist');
    c.only(['delay', 'window', 'maxEntries', 'reply']);
    p.greylist = {
      delayMs: c.duration('delay'),
      windowMs: c.doc.window === undefined ? 2 * 86_400_000 : c.duration('window'),
      maxEntries: c.doc.maxEntries === undefined ? 100_000 : c.int('maxEntries', 1),
      reply: reply(c, 'reply', [400, 499]),
    };
  }
  return p;
}

/** The profile for a recipient domain (lower case). */
export function profileFor(set: ProfileSet, domain: string): Profile {
  for (const route of set.routes) if (route.pattern.test(domain)) return set.profiles.get(route.profile)!;
  return set.profiles.get(set.defaultProfile)!;
}

// Greylisting with postgrey's semantics, asked at RCPT for each recipient that is valid:
//  - the triplet is (client network, envelope sender, recipient): the client's /24 for IPv4, its
//    /64 for IPv6 (a sender's pool of outbound servers retries from a neighbour address), the
//    sender normalised as postgrey does (lower case, +extension dropped, digit runs as '#', so
//    that VERP and BATV senders that change with every try still match);
//  - a new triplet gets 450 4.2.0 until `delay` after its first try; a try after that and within
//    `window` of the first passes, and the triplet then passes at once until unseen for
//    `maxAge`; a triplet not retried within `window` starts over;
//  - a client network that passed `autoAllow` times (at most one pass counted an hour, as
//    postgrey counts) skips greylisting until unseen for `maxAge`;
//  - `allow`: networks (CIDR), and domains matched against the client's forward-confirmed
//    reverse name (example.com matches mx1.example.com), skip it; so do clients the DNSWL
//    vouched for (the screen says so).
// The records live in a GreylistStore: the spool's tables on a single node
// (spool/greylist.ts), Redis in a cluster (RedisGreylistStore below, so that a retry landing on
// another node is recognised), with the spool's tables standing in while Redis is away. Time
// comes from the `now` given to the constructor, so tests need not wait five minutes.
// May touch: its store; nothing else.
import { isIP, type BlockList } from 'node:net';
import type { InboundConfig } from '../../config/inbound.ts';
import { cidrList, inList, networkOf, plainAddress } from '../../util/network.ts';
import { PREFIX, type RedisLink } from '../cluster/link.ts';

export interface TripletRecord { firstSeen: number; lastSeen: number; passed: boolean }
export interface ClientRecord { passes: number; lastPass: number }

/** Where greylisting keeps its records; a record read after its keepUntil is gone. */
export interface GreylistStore {
  triplet(key: string, now: number): Promise<TripletRecord | undefined>;
  putTriplet(key: string, record: TripletRecord, keepUntil: number, now: number): Promise<void>;
  client(network: string, now: number): Promise<ClientRecord | undefined>;
  putClient(network: string, record: ClientRecord, keepUntil: number, now: number): Promise<void>;
}

export type GreylistVerdict =
  | { pass: true; why: 'disabled' | 'allowed' | 'auto-allowed' | 'passed' | 'retried' }
  | { pass: false; retryIn: number; network: string };

/** Passes of a client network are counted at most this often (postgrey's auto-whitelist does the same). */
const COUNT_EVERY_MS = 3_600_000;

export interface GreylistOptions {
  config: InboundConfig['greylist'];
  store: GreylistStore;
  /** The client's forward-confirmed reverse name, for allow entries that are domains. */
  verifiedName: (ip: string) => Promise<string | undefined>;
  now?: () => number;
}

/** A sender as postgrey compares it: `Bounce-1234+x@Example.com` → `bounce-#@example.com`. */
export function normalSender(sender: string): string {
  const lower = sender.toLowerCase();
  const at = lower.lastIndexOf('@');
  if (at < 0) return lower;
  const local = lower.slice(0, at).replace(/\+.*$/, '').replace(/\d+/g, '#');
  return `${local}${lower.slice(at)}`;
}

export class Greylist {
  private readonly config: InboundConfig['greylist'];
  private readonly store: GreylistStore;
  private readonly verifiedName: (ip: string) => Promise<string | undefined>;
  private readonly now: () => number;
  private readonly allowNetworks: BlockList;
  private readonly allowDomains: string[];

  constructor(options: GreylistOptions) {
    this.config = options.config;
    this.store = options.store;
    this.verifiedName = options.verifiedName;
    this.now = options.now ?? Date.now;
    const isNetwork = (entry: string) => isIP(entry.split('/')[0]) !== 0;
    const networks = cidrList(this.config.allow.filter(isNetwork));
    if ('bad' in networks) throw new Error(`inbound.greylist.allow: bad network ${networks.bad}`);
    this.allowNetworks = networks.list;
    this.allowDomains = this.config.allow.filter((entry) => !isNetwork(entry)).map((d) => d.replace(/^\./, ''));
  }

  /** Whether mail from `client` for `recipient` may go on now; `vouched`: the DNSWL score allowed the client. */
  async check(client: string, sender: string, recipient: string, vouched = false): Promise<GreylistVerdict> {
    const config = this.config;
    if (!config.enabled) return { pass: true, why: 'disabled' };
    const ip = plainAddress(client);
    if (vouched || inList(this.allowNetworks, ip) || (await this.allowedName(ip))) return { pass: true, why: 'allowed' };
    const now = this.now();
    const network = networkOf(ip);
    const counted = config.autoAllow > 0 ? await this.store.client(network, now) : undefined;
    if (counted && counted.passes >= config.autoAllow) {
      // still in use: it stays allowed for another maxAge (written at most once an hour)
      if (now - counted.lastPass >= COUNT_EVERY_MS) await this.store.putClient(network, { passes: counted.passes + 1, lastPass: now }, now + config.maxAge, now);
      return { pass: true, why: 'auto-allowed' };
    }

    const key = `${network}|${normalSender(sender)}|${recipient.toLowerCase()}`;
    const seen = await this.store.triplet(key, now);
    if (!seen || (!seen.passed && now - seen.firstSeen > config.window)) {
      await this.store.putTriplet(key, { firstSeen: now, lastSeen: now, passed: false }, now + config.window, now);
      return { pass: false, retryIn: config.delay, network };
    }
    if (!seen.passed && now - seen.firstSeen < config.delay) {
      // an early retry does not move the first try: the wait still ends `delay` after it
      await this.store.putTriplet(key, { ...seen, lastSeen: now }, seen.firstSeen + config.window, now);
      return { pass: false, retryIn: seen.firstSeen + config.delay - now, network };
    }
    await this.store.putTriplet(key, { firstSeen: seen.firstSeen, lastSeen: now, passed: true }, now + config.maxAge, now);
    if (config.autoAllow > 0 && (!counted || now - counted.lastPass >= COUNT_EVERY_MS)) {
      await this.store.putClient(network, { passes: (counted?.passes ?? 0) + 1, lastPass: now }, now + config.maxAge, now);
    }
    return { pass: true, why: seen.passed ? 'passed' : 'retried' };
  }

  private async allowedName(ip: string): Promise<boolean> {
    if (this.allowDomains.length === 0) return false;
    const name = await this.verifiedName(ip);
    return name !== undefined && this.allowDomains.some((domain) => name === domain || name.endsWith(`.${domain}`));
  }
}

const tripletKey = (key: string) => `${PREFIX}greylist:${key}`;
const clientKey = (network: string) => `${PREFIX}greylist-client:${network}`;

/**
 * The cluster's greylisting records in Redis, one key each with the record's lifetime as its
 * expiry, so that every node sees every try. While Redis is away (or slow) the node reads and
 * writes its own spool tables instead: a retry may then be greylisted once more, never lost.
 */
export class RedisGreylistStore implements GreylistStore {
  private readonly link: RedisLink;
  private readonly local: GreylistStore;

  constructor(link: RedisLink, local: GreylistStore) {
    this.link = link;
    this.local = local;
  }

  async triplet(key: string, now: number): Promise<TripletRecord | undefined> {
    if (!this.link.up) return this.local.triplet(key, now);
    try {
      const text = await this.link.command((c) => c.get(tripletKey(key)));
      return text ? (JSON.parse(text) as TripletRecord) : undefined;
    } catch {
      return this.local.triplet(key, now);
    }
  }

  async putTriplet(key: string, record: TripletRecord, keepUntil: number, now: number): Promise<void> {
    if (!this.link.up) return this.local.putTriplet(key, record, keepUntil, now);
    try {
      await this.link.command((c) => c.set(tripletKey(key), JSON.stringify(record), { PX: Math.max(1, Math.ceil(keepUntil - now)) }));
    } catch {
      await this.local.putTriplet(key, record, keepUntil, now);
    }
  }

  async client(network: string, now: number): Promise<ClientRecord | undefined> {
    if (!this.link.up) return this.local.client(network, now);
    try {
      const text = await this.link.command((c) => c.get(clientKey(network)));
      return text ? (JSON.parse(text) as ClientRecord) : undefined;
    } catch {
      return this.local.client(network, now);
    }
  }

  async putClient(network: string, record: ClientRecord, keepUntil: number, now: number): Promise<void> {
    if (!this.link.up) return this.local.putClient(network, record, keepUntil, now);
    try {
      await this.link.command((c) => c.set(clientKey(network), JSON.stringify(record), { PX: Math.max(1, Math.ceil(keepUntil - now)) }));
    } catch {
      await this.local.putClient(network, record, keepUntil, now);
    }
  }
}

// Cluster-wide limits per egress path, so that several nodes sending from one address together
// respect what a provider allows that address (5 connections, 600 messages a minute):
//
// - Connections are leases in a sorted set per path (member: lease id, score: expiry on Redis's
//   clock), taken by one script that drops expired leases, counts, and adds one only under the
//   limit (KumoMTA's approach). A node renews all of its leases in one script call every third of
//   the lease time and gives one back when its connection closes; a node that dies leaves leases
//   that expire by themselves. Renewing also puts back leases a restarted Redis forgot.
// - Message rate is GCRA on Redis's own clock (one "theoretical arrival time" per limit), but a
//   round trip per message would be far too slow: a node takes tokens in batches of a tenth of a
//   second's worth and spends them locally; tokens it does not spend within a second lapse (the
//   cluster then sends a little under the limit, never over it).
//
// Redis unavailable (or too slow for one call): the node keeps sending on local limits, each node
// its share of the path's limit (limit ÷ live nodes last seen, at least one connection); leases
// and tokens resume through Redis as soon as it answers again.
// May touch: its keys in Redis (through the link); callers get leases and rate answers.
import { PREFIX, script, type RedisLink } from './link.ts';
import type { NodeRegistry } from './registry.ts';
import { SiteRate, type RateLimiter } from '../shape/rate.ts';

const LEASE = script(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`);

/** KEYS: the paths' lease sets; ARGV: the lease time, then one lease id per key. */
const RENEW = script(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + ttl, ARGV[i + 1])
  redis.call('PEXPIRE', key, ttl)
end
return #KEYS
`);

/**
 * KEYS: one "theoretical arrival time" per limit; ARGV: tokens wanted, then interval and
 * tolerance (ms) per limit. Grants what every limit allows now (up to the wish) and answers how
 * long until the next token when none is free.
 */
const TAKE = script(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local grant = tonumber(ARGV[1])
local wait = 0
local tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i])
  local tolerance = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  tats[i] = tat
  local free = math.floor((now + tolerance - tat) / interval) + 1
  if free < grant then grant = free end
  if free <= 0 and tat - tolerance - now > wait then wait = tat - tolerance - now end
end
if grant <= 0 then return {0, tostring(math.ceil(wait))} end
for i, key in ipairs(KEYS) do
  local tat = tats[i] + grant * tonumber(ARGV[2 * i])
  redis.call('SET', key, tostring(tat), 'PX', math.ceil(tat - now + tonumber(ARGV[2 * i + 1])) + 1000)
end
return {grant, '0'}
`);

/** Tokens taken from Redis but not spent within this time lapse. */
const TOKEN_LIFE_MS = 1_000;
/**
 * A closed connection's lease is given back this long after the close: the receiver counts the
 * connection until it has processed the close itself, and a new connection from another node in
 * that moment would be one too many for it.
 */
const RELEASE_GRACE_MS = 50;
/** After a failed call, how long the node stays on its local share before asking Redis again. */
const LOCAL_AFTER_FAILURE_MS = 1_000;

export interface Lease { release(): void }

/** What a connection holds on a path whose limit is this node's alone (deliver/egress-path.ts keeps it). */
export const OWN_LIMIT: Lease = { release() {} };

const leaseKey = (path: string) => `${PREFIX}conn:${path}`;

export class ClusterLimits {
  private readonly link: RedisLink;
  private readonly registry: NodeRegistry;
  private readonly ttl: number;
  /** Connections this node holds per path: lease id → whether Redis has it (false: taken on the local share). */
  private readonly held = new Map<string, Map<string, boolean>>();
  private nextId = 0;
  private timer?: NodeJS.Timeout;
  /** Leases refused because the cluster was at the path's limit (for /metrics). */
  refused = 0;

  constructor(link: RedisLink, registry: NodeRegistry, leaseTtl: number) {
    this.link = link;
    this.registry = registry;
    this.ttl = leaseTtl;
  }

  start(): void {
    this.timer = setInterval(() => void this.renew(), Math.max(100, Math.floor(this.ttl / 3)));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** This node's share of a limit while Redis cannot be asked. */
  share(limit: number): number {
    return limit / this.registry.liveNodes;
  }

  /** A lease for one more connection on `path` if the cluster is under `limit`; undefined when not. */
  async acquire(path: string, limit: number): Promise<Lease | undefined> {
    const id = `${this.link.node}:${++this.nextId}`;
    let shared = false;
    if (this.link.up) {
      try {
        if (Number(await this.link.eval(LEASE, [leaseKey(path)], [limit, this.ttl, id])) !== 1) {
          this.refused++;
          return undefined;
        }
        shared = true;
      } catch {
        // no answer: this node's share below
      }
    }
    if (!shared && this.holding(path) >= Math.max(1, Math.floor(this.share(limit)))) return undefined;
    let mine = this.held.get(path);
    if (!mine) this.held.set(path, (mine = new Map()));
    mine.set(id, shared);
    return { release: () => this.release(path, id) };
  }

  private release(path: string, id: string): void {
    setTimeout(() => {
      const mine = this.held.get(path);
      if (!mine?.delete(id)) return;
      if (mine.size === 0) this.held.delete(path);
      void this.link.command((c) => c.zRem(leaseKey(path), id)).catch(() => {}); // expires anyway
    }, RELEASE_GRACE_MS).unref();
  }

  /** Connections this node holds on `path` (leased or on its local share). */
  holding(path: string): number {
    return this.held.get(path)?.size ?? 0;
  }

  /** Renews every lease this node holds, in one call; leases taken locally while Redis was away join the count again. */
  private async renew(): Promise<void> {
    if (!this.link.up || this.held.size === 0) return;
    const keys: string[] = [];
    const ids: string[] = [];
    for (const [path, mine] of this.held) for (const id of mine.keys()) {
      keys.push(leaseKey(path));
      ids.push(id);
    }
    try {
      await this.link.eval(RENEW, keys, [this.ttl, ...ids]);
      for (const mine of this.held.values()) for (const id of mine.keys()) mine.set(id, true);
    } catch {
      // the next renewal comes soon; a lease outlives two missed ones
    }
  }

  /** The message rate of `path`, shared by the cluster. */
  rate(path: string, perSecond: number, perHour: number): RateLimiter {
    return new ClusterRate(this, this.link, path, perSecond, perHour);
  }

  /** Tokens for `path`'s rate limits: how many were granted, or how long until one is free. */
  async takeTokens(path: string, want: number, limits: { interval: number; tolerance: number; name: string }[]): Promise<{ granted: number; wait: number }> {
    const keys = limits.map((l) => `${PREFIX}rate:${path}:${l.name}`);
    const args: number[] = [want];
    for (const l of limits) args.push(l.interval, l.tolerance);
    const [granted, wait] = (await this.link.eval(TAKE, keys, args)) as [number, string];
    return { granted: Number(granted), wait: Number(wait) };
  }
}

/** A path's rate, spent from tokens taken from Redis in batches (see the header). */
class ClusterRate implements RateLimiter {
  private readonly limits: ClusterLimits;
  private readonly link: RedisLink;
  private readonly path: string;
  private readonly perSecond: number;
  private readonly perHour: number;
  private readonly gcra: { interval: number; tolerance: number; name: string }[] = [];
  private readonly batch: number;
  private tokens = 0;
  private tokensLapseAt = 0;
  private asking = false;
  private askAgainAt = 0;
  private localUntil = 0;
  private local?: { share: number; rate: SiteRate };

  constructor(limits: ClusterLimits, link: RedisLink, path: string, perSecond: number, perHour: number) {
    this.limits = limits;
    this.link = link;
    this.path = path;
    this.perSecond = perSecond;
    this.perHour = perHour;
    // the same limits and bursts as a single node's SiteRate (shape/rate.ts)
    if (perSecond > 0) this.gcra.push({ name: 's', interval: 1000 / perSecond, tolerance: (Math.max(1, Math.floor(perSecond)) - 1) * (1000 / perSecond) });
    if (perHour > 0) this.gcra.push({ name: 'h', interval: 3_600_000 / perHour, tolerance: (Math.max(1, Math.floor(perHour / 60)) - 1) * (3_600_000 / perHour) });
    this.batch = Math.max(1, Math.floor(perSecond / 10));
  }

  private onLocalShare(now: number): SiteRate {
    const share = this.limits.share(1);
    if (!this.local || this.local.share !== share) this.local = { share, rate: new SiteRate(this.perSecond * share, this.perHour * share) };
    return this.local.rate;
  }

  private usesRedis(now: number): boolean {
    return this.gcra.length > 0 && this.link.up && now >= this.localUntil;
  }

  wait(now: number): number {
    if (this.gcra.length === 0) return 0;
    if (this.tokens > 0 && now < this.tokensLapseAt) return 0;
    this.tokens = 0;
    if (!this.usesRedis(now)) return this.onLocalShare(now).wait(now);
    if (!this.asking && now >= this.askAgainAt) this.ask(now);
    return Math.max(5, this.askAgainAt - now);
  }

  take(now: number): void {
    if (this.gcra.length === 0) return;
    if (this.tokens > 0 && now < this.tokensLapseAt) this.tokens--;
    else if (!this.usesRedis(now)) this.onLocalShare(now).take(now);
  }

  private ask(now: number): void {
    this.asking = true;
    this.limits.takeTokens(this.path, this.batch, this.gcra).then(({ granted, wait }) => {
      const at = Date.now();
      this.tokens += granted;
      this.tokensLapseAt = at + TOKEN_LIFE_MS;
      this.askAgainAt = granted > 0 ? at : at + wait;
    }, () => {
      this.localUntil = now + LOCAL_AFTER_FAILURE_MS;
    }).finally(() => {
      this.asking = false;
    });
  }
}

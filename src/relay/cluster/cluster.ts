// A node's membership of a cluster: the Redis link, the node registry, the cluster-wide limits,
// and what the nodes tell each other and keep in Redis so that a node joining (or rejoining after
// Redis was away) catches up:
//
// - pauses of egress paths that a reply caused (a `421 4.7.0 [TSS04]` seen by one node pauses the
//   path on every node): a key per path that expires with the pause;
// - the operator's suspensions of domains and their lifting (`mailops queue suspend|resume` on
//   any node acts on all): one hash;
// - the suppression list (a hard bounce on one node refuses the address on all): one hash.
//
// Providers count per sending address, so what is shared is keyed by egress path with its address:
// nodes that send from the same address (a shared egress IP, or 127.0.0.x in the lab) share its
// limits and pauses; a path on the system's default address stays this node's own (each node has
// its own default address): its limits are kept here without asking Redis, and its pauses are
// not told to the others.
//
// Each change is stored, then published on the cluster's channel; the other nodes apply it
// through the listeners the dispatcher and the bounce handler register here (they own what they
// apply it to). A change made while Redis is away stays local and is pushed when Redis is back.
// May touch: its keys in Redis (through the link) and its listeners; nothing of other stages.
import { EventEmitter } from 'node:events';
import type { ClusterConfig } from '../../config/types.ts';
import type { EventLog } from '../log.ts';
import { ClusterLimits, OWN_LIMIT, type Lease } from './limits.ts';
import { SiteRate, type RateLimiter } from '../shape/rate.ts';
import { PREFIX, RedisLink, type RedisClient } from './link.ts';
import { NodeRegistry } from './registry.ts';
import { UNTIL_RESUMED } from '../shape/path-shaping.ts';

/** Catching up reads whole lists (a suppression list may hold millions): it gets longer than a command's deadline. */
const CATCH_UP_DEADLINE_MS = 120_000;

const SUSPENDED = `${PREFIX}suspended`;
const SUPPRESSED = `${PREFIX}suppressed`;
const pauseKey = (path: string) => `${PREFIX}pause:${path}`;

export interface PathPause { path: string; kind: 'paused' | 'suspended'; until: number; reply: string; lanes: string[] }
export interface DomainSuspension { domain: string; until: number; reason: string }
export interface Suppression { address: string; reason: string; source: string }

interface ClusterEvents {
  pause: [PathPause];
  suspend: [DomainSuspension];
  resume: [string];
  suppress: [Suppression];
  unsuppress: [string];
}

export class Cluster extends EventEmitter<ClusterEvents> {
  readonly config: ClusterConfig;
  readonly link: RedisLink;
  readonly registry: NodeRegistry;
  readonly limits: ClusterLimits;
  /** Pauses in force by path, as the cluster told them (applied to a path when it is made). */
  private readonly pauses = new Map<string, PathPause>();
  /** Changes made while Redis was away: pushed when it is back. */
  private unshared: (() => Promise<unknown>)[] = [];

  constructor(config: ClusterConfig, log: EventLog) {
    super();
    this.config = config;
    this.link = new RedisLink(config.redis, config.node, log);
    this.registry = new NodeRegistry(this.link, config.heartbeat, config.lanes);
    this.limits = new ClusterLimits(this.link, this.registry, config.leaseTtl);
    this.link.on('message', (m) => this.received(m));
    this.link.on('up', () => void this.catchUp());
  }

  /** Connects (or goes on without Redis until it comes), so that the node starts with the cluster's lists and pauses. */
  async connect(): Promise<void> {
    await this.link.start();
    this.limits.start();
  }

  /** The node is listening: it joins the registry. */
  join(self: { api: string; smtp: string[] }): void {
    this.registry.start(self);
  }

  /** For /health and /metrics. */
  status(): { node: string; redis: 'up' | 'down'; liveNodes: number; redisDowns: number; leasesRefused: number } {
    return { node: this.config.node, redis: this.link.up ? 'up' : 'down', liveNodes: this.registry.liveNodes, redisDowns: this.link.downs, leasesRefused: this.limits.refused };
  }

  /** Leaves the registry and closes the link (a graceful stop). */
  async stop(): Promise<void> {
    this.limits.stop();
    await this.registry.leave();
    this.registry.stop();
    await this.link.close();
  }

  /** Whether a path is shared with other nodes: it sends from a configured address (see the header). */
  private shared(path: string): boolean {
    return !path.startsWith('default>');
  }

  /** A lease for one more connection on the path, under its cluster-wide `limit` (undefined: at the limit). */
  async lease(path: string, limit: number): Promise<Lease | undefined> {
    return this.shared(path) ? this.limits.acquire(path, limit) : OWN_LIMIT;
  }

  /** The path's message rate: the cluster's for a shared path, this node's own otherwise. */
  rate(path: string, perSecond: number, perHour: number): RateLimiter {
    return this.shared(path) ? this.limits.rate(path, perSecond, perHour) : new SiteRate(perSecond, perHour);
  }

  /** A pause that the cluster told of for this path and that is still in force. */
  pauseFor(path: string, now = Date.now()): PathPause | undefined {
    const p = this.pauses.get(path);
    if (p && p.until <= now) this.pauses.delete(path);
    return p && p.until > now ? p : undefined;
  }

  /** This node paused a path because of a reply: every node pauses it. */
  sharePause(pause: PathPause): void {
    if (!this.shared(pause.path)) return;
    this.pauses.set(pause.path, pause);
    this.share(async (c) => {
      const ttl = pause.until - Date.now();
      if (ttl <= 0) return;
      await c.set(pauseKey(pause.path), JSON.stringify(pause), pause.until >= UNTIL_RESUMED ? {} : { PX: Math.ceil(ttl) });
    }, { type: 'pause', ...pause });
  }

  shareSuspension(s: DomainSuspension): void {
    this.share((c) => c.hSet(SUSPENDED, s.domain, JSON.stringify(s)), { type: 'suspend', ...s });
  }

  /** An operator lifted a domain's suspension and the pauses of its site's paths. */
  shareResume(domain: string, paths: string[]): void {
    paths = paths.filter((path) => this.shared(path));
    for (const path of paths) this.pauses.delete(path);
    this.share(async (c) => {
      await c.hDel(SUSPENDED, domain);
      if (paths.length) await c.del(paths.map(pauseKey));
    }, { type: 'resume', domain, paths });
  }

  shareSuppression(s: Suppression): void {
    this.share((c) => c.hSet(SUPPRESSED, s.address, JSON.stringify({ reason: s.reason, source: s.source })), { type: 'suppress', ...s });
  }

  shareUnsuppression(address: string): void {
    this.share((c) => c.hDel(SUPPRESSED, address), { type: 'unsuppress', address });
  }

  private share(store: (c: RedisClient) => Promise<unknown>, message: Record<string, unknown>): void {
    const push = () => this.link.command(store).then(() => this.link.publish(message));
    if (!this.link.up) {
      this.unshared.push(push);
      return;
    }
    void push().catch(() => this.unshared.push(push));
  }

  private received(m: Record<string, unknown>): void {
    switch (m.type) {
      case 'pause': {
        const pause = { path: String(m.path), kind: m.kind === 'suspended' ? 'suspended' : 'paused', until: Number(m.until), reply: String(m.reply), lanes: (m.lanes as string[]) ?? [] } as PathPause;
        this.pauses.set(pause.path, pause);
        this.emit('pause', pause);
        break;
      }
      case 'suspend':
        this.emit('suspend', { domain: String(m.domain), until: Number(m.until), reason: String(m.reason) });
        break;
      case 'resume':
        for (const path of (m.paths as string[]) ?? []) this.pauses.delete(path);
        this.emit('resume', String(m.domain));
        break;
      case 'suppress':
        this.emit('suppress', { address: String(m.address), reason: String(m.reason), source: String(m.source) });
        break;
      case 'unsuppress':
        this.emit('unsuppress', String(m.address));
        break;
    }
  }

  /** Redis is (back) up: push what changed here meanwhile, then take what the cluster holds. */
  private async catchUp(): Promise<void> {
    const pending = this.unshared;
    this.unshared = [];
    for (const push of pending) await push().catch(() => this.unshared.push(push));
    try {
      await this.link.command(async (c) => {
        for await (const keys of c.scanIterator({ MATCH: `${PREFIX}pause:*`, COUNT: 500 })) {
          for (const key of keys) {
            const text = await c.get(key);
            if (!text) continue;
            const pause = JSON.parse(text) as PathPause;
            this.pauses.set(pause.path, pause);
            this.emit('pause', pause);
          }
        }
        const now = Date.now();
        for (const [domain, text] of Object.entries(await c.hGetAll(SUSPENDED))) {
          const s = JSON.parse(text) as DomainSuspension;
          if (s.until > now) this.emit('suspend', { ...s, domain });
        }
        for await (const entries of c.hScanIterator(SUPPRESSED, { COUNT: 1000 })) {
          for (const { field, value } of entries) {
            const v = JSON.parse(value) as { reason: string; source: string };
            this.emit('suppress', { address: field, reason: v.reason, source: v.source });
          }
        }
      }, CATCH_UP_DEADLINE_MS);
    } catch {
      // the next time Redis comes up tries again; meanwhile this node keeps its own lists
    }
  }
}

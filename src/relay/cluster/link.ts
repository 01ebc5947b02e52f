// The node's link to the cluster's Redis: a command connection and a subscriber connection for
// the cluster's channel. node-redis pipelines on its own: the commands issued in one turn of the
// event loop go out in one write, so many lease releases or list updates cost one round trip.
//
// Redis may be down at start, or go away and come back; the node never waits for it. Commands are
// refused at once while the link is down (no offline queue: a caller falls back to its local
// limits rather than sit on a queue of stale requests), every command has a deadline, and each
// transition is logged once (`cluster-redis-down`, `cluster-redis-up`) and counted. On the way back
// up, listeners of `up` sync what they share (registry, pauses, suppressions).
// Scripts run by SHA; a Redis that restarted has forgotten them, so NOSCRIPT sends them once more.
//
// May touch: its two Redis connections and the log. What the data means is the business of the
// registry (cluster/registry.ts), the limits (cluster/limits.ts) and the shared lists (cluster/shared.ts).
import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import { createClient } from 'redis';
import type { EventLog } from '../log.ts';

export type RedisClient = ReturnType<typeof createClient>;
type Client = RedisClient;

/** How long one Redis command may take before the caller treats Redis as unavailable for it. */
export const COMMAND_DEADLINE_MS = 1_000;

/** Key prefix of everything the cluster keeps in Redis. */
export const PREFIX = 'mailops:';

export interface Script { sha: string; source: string }

export function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

export class RedisLink extends EventEmitter<{ up: []; down: []; message: [Record<string, unknown>] }> {
  readonly url: string;
  readonly node: string;
  readonly channel = `${PREFIX}events`;
  /** Whether commands can be sent now. */
  up = false;
  /** Times the link went down (for /metrics). */
  downs = 0;
  private readonly log: EventLog;
  private readonly client: Client;
  private readonly subscriber: Client;
  private subscribed = false;
  private closed = false;
  private everUp = false;

  constructor(url: string, node: string, log: EventLog) {
    super();
    this.url = url;
    this.node = node;
    this.log = log;
    const options = {
      url,
      disableOfflineQueue: true,
      // at most a second between attempts: a Redis that comes back is used again within a second or two
      socket: { connectTimeout: 2_000, reconnectStrategy: (attempt: number) => Math.min(100 * (attempt + 1), 1_000) },
    };
    this.client = createClient(options);
    this.subscriber = createClient(options);
    for (const c of [this.client, this.subscriber]) c.on('error', () => {}); // reported once below, not per attempt
    this.client.on('ready', () => this.became(true));
    this.client.on('end', () => this.became(false));
    this.client.on('reconnecting', () => this.became(false));
    this.subscriber.on('ready', () => void this.subscribe());
  }

  /** Starts connecting; resolves when connected or after `waitMs` (the node starts either way). */
  async start(waitMs = 2_000): Promise<void> {
    void this.client.connect().catch(() => {});
    void this.subscriber.connect().catch(() => {});
    const deadline = Date.now() + waitMs;
    while (!this.up && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    if (!this.up) this.became(false, true);
  }

  private became(up: boolean, atStart = false): void {
    if (this.closed || (up === this.up && !atStart)) return;
    this.up = up;
    if (up) {
      this.log.emit('cluster-redis-up', { redis: this.url, node: this.node, again: this.everUp });
      this.everUp = true;
      this.emit('up');
    } else {
      this.downs++;
      this.log.emit('cluster-redis-down', { redis: this.url, node: this.node, note: 'limits are kept per node (each takes its share) until Redis is back' });
      this.emit('down');
    }
  }

  private async subscribe(): Promise<void> {
    if (this.subscribed) return; // node-redis subscribes again by itself after a reconnect
    this.subscribed = true;
    await this.subscriber.subscribe(this.channel, (text: string) => {
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(text);
      } catch {
        return;
      }
      if (message.node !== this.node) this.emit('message', message);
    }).catch(() => { this.subscribed = false; });
  }

  /** Runs a command against Redis with the deadline; rejects at once while the link is down. */
  async command<T>(run: (client: Client) => Promise<T>, deadlineMs = COMMAND_DEADLINE_MS): Promise<T> {
    if (!this.up) throw new Error('cluster Redis is unavailable');
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        run(this.client),
        new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`cluster Redis did not answer within ${deadlineMs} ms`)), deadlineMs); }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs a Lua script by SHA (loading it when Redis does not know it). */
  eval(s: Script, keys: string[], args: (string | number)[]): Promise<unknown> {
    const options = { keys, arguments: args.map(String) };
    return this.command(async (c) => {
      try {
        return await c.evalSha(s.sha, options);
      } catch (err) {
        if (!/NOSCRIPT/.test((err as Error).message)) throw err;
        return c.eval(s.source, options);
      }
    });
  }

  /** Tells the other nodes (they ignore their own messages). Lost while Redis is down: the stored state is what a node syncs from when it (re)joins. */
  publish(message: Record<string, unknown>): void {
    void this.command((c) => c.publish(this.channel, JSON.stringify({ ...message, node: this.node }))).catch(() => {});
  }

  async close(): Promise<void> {
    this.closed = true;
    this.up = false;
    await Promise.allSettled([this.client.close(), this.subscriber.close()]);
  }
}

// The node registry: every node beats into Redis (a sorted set of node names by last beat, and a
// hash per node with where its API and SMTP listen and which lanes it serves), so that the tools
// (`mailops top --cluster`, `mailops queue ... --cluster`) find every node without a list of URLs,
// and a node that stops beating is shown as down. The registry also tells the limits how many
// nodes are alive: while Redis is unavailable each node takes its share (limit ÷ live nodes last
// seen) of a cluster-wide limit. Entries of nodes gone for a day are dropped.
// May touch: its keys in Redis (through the link), nothing else.
import { createClient } from 'redis';
import { PREFIX, type RedisLink } from './link.ts';

const NODES = `${PREFIX}nodes`;
const nodeKey = (name: string) => `${PREFIX}node:${name}`;
/** A node counts as down after this many missed beats. */
const MISSED_BEATS = 5;
const FORGET_AFTER_MS = 86_400_000;

export interface NodeInfo {
  node: string;
  api: string;
  smtp: string[];
  lanes: string[];
  startedAt: string;
  lastBeat: string;
  up: boolean;
}

export class NodeRegistry {
  private readonly link: RedisLink;
  private readonly lanes: string[];
  private info: Record<string, string> = {};
  private readonly beatMs: number;
  private timer?: NodeJS.Timeout;
  /** Live nodes (this one included) at the last beat that reached Redis. */
  liveNodes = 1;

  constructor(link: RedisLink, beatMs: number, lanes: string[]) {
    this.link = link;
    this.beatMs = beatMs;
    this.lanes = lanes;
    link.on('up', () => void this.beat());
  }

  /** Starts beating, telling where this node's API and SMTP listeners are. */
  start(self: { api: string; smtp: string[] }): void {
    this.info = { api: self.api, smtp: self.smtp.join(','), lanes: this.lanes.join(','), startedAt: new Date().toISOString() };
    void this.beat();
    this.timer = setInterval(() => void this.beat(), this.beatMs);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    if (!this.info.api) return; // not started yet
    const now = Date.now();
    try {
      const live = await this.link.command(async (c) => {
        const m = c.multi();
        m.hSet(nodeKey(this.link.node), { ...this.info, beatMs: String(this.beatMs), lastBeat: String(now) });
        m.zAdd(NODES, { score: now, value: this.link.node });
        m.zRemRangeByScore(NODES, '-inf', now - FORGET_AFTER_MS);
        m.zCount(NODES, now - MISSED_BEATS * this.beatMs, '+inf');
        const replies = await m.exec();
        return Number(replies[replies.length - 1]);
      });
      this.liveNodes = Math.max(1, live);
    } catch {
      // Redis unavailable: keep the last count, it sets each node's share meanwhile
    }
  }

  /** Marks this node as down at once (a graceful stop), rather than after its missed beats; it stays listed. */
  async leave(): Promise<void> {
    clearInterval(this.timer);
    const gone = Date.now() - (MISSED_BEATS + 1) * this.beatMs;
    await this.link.command(async (c) => {
      const m = c.multi();
      m.hSet(nodeKey(this.link.node), 'lastBeat', String(gone));
      m.zAdd(NODES, { score: gone, value: this.link.node });
      return m.exec();
    }).catch(() => {});
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** Every node the cluster's Redis knows, up or down (for the tools). */
export async function listNodes(url: string): Promise<NodeInfo[]> {
  const client = createClient({ url, socket: { connectTimeout: 3_000, reconnectStrategy: false } });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    throw new Error(`cannot reach the cluster's Redis at ${url}: ${(err as Error).message}`);
  }
  try {
    const now = Date.now();
    const names = await client.zRange(NODES, 0, -1);
    const out: NodeInfo[] = [];
    for (const node of names) {
      const h = await client.hGetAll(nodeKey(node));
      if (!h.api) continue;
      const last = Number(h.lastBeat);
      out.push({
        node, api: h.api, smtp: h.smtp ? h.smtp.split(',') : [], lanes: h.lanes ? h.lanes.split(',') : [],
        startedAt: h.startedAt, lastBeat: new Date(last).toISOString(), up: now - last <= MISSED_BEATS * Number(h.beatMs || 2000),
      });
    }
    return out;
  } finally {
    await client.close().catch(() => {});
  }
}

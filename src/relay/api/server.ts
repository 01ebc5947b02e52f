// The relay's HTTP API, served from the same process: health, Prometheus metrics, queue status
// and operator actions, message injection, the live event stream, and the delivery logs with
// their web page (src/logs/api.ts). Who may call what: access.ts.
import type { Cluster } from '../cluster/cluster.ts';
import type { InboundListener } from '../inbound/listener.ts';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { plainAddress } from '../../util/network.ts';
import type { HostPort } from '../../util/units.ts';
import type { Intake } from '../receive/accept.ts';
import type { Dispatcher } from '../deliver/dispatcher.ts';
import type { Scheduler } from '../schedule/scheduler.ts';
import { deleteQueued, listQueue, retryNow, type Selector } from '../spool/admin.ts';
import { parseQueueId } from '../spool/spool.ts';
import { streamEvents } from './events.ts';
import type { ApiAccess } from './access.ts';
import { HttpError, readJson, sendJson, sendText } from './http.ts';
import { injectMessage } from './messages.ts';
import { clusterMetrics, inboundMetrics, prometheus } from './metrics.ts';
import { queueStatus } from './queue.ts';
import { handleSending } from './sending.ts';
import { handleLogs } from '../../logs/api.ts';
import type { DeliveryLog } from '../../logs/delivery-log.ts';
import type { Bounces } from '../bounce/handler.ts';
import type { Drain } from '../drain.ts';
import { parseDuration } from '../../util/units.ts';

export interface ApiContext extends Intake {
  scheduler: Scheduler;
  dispatcher: Dispatcher;
  bounces: Bounces;
  /** Absent for a single node. */
  cluster?: Cluster;
  /** The inbound MX listener, when configured (its counters go into /metrics). */
  inbound?: InboundListener;
  /** Who may change things and read addresses (access.ts). */
  access: ApiAccess;
  /** The node's drain (drain.ts): while it runs, /health answers 503 and injection is refused. */
  drain: Drain;
  /** The delivery logs (src/logs/): searches, summaries, live records. */
  logs?: DeliveryLog;
  startedAt: number;
}

/** A drain gives up after this long unless the request says otherwise. */
const DRAIN_TIMEOUT_MS = 300_000;

/** The drain's time limit from the request body: `{"timeout":"10m"}`, default 5 minutes. */
async function drainTimeoutFrom(req: IncomingMessage): Promise<number> {
  const body = await readJson(req, 64 * 1024);
  if (body.timeout === undefined) return DRAIN_TIMEOUT_MS;
  const timeout = parseDuration(body.timeout);
  if (timeout === undefined) throw new HttpError(400, `timeout: expected a duration such as 90s or 10m, got ${JSON.stringify(body.timeout)}`);
  return timeout;
}

function memoryMb(): Record<string, number> {
  const usage = process.memoryUsage();
  return Object.fromEntries(Object.entries(usage).map(([key, bytes]) => [key, Math.round(bytes / 1048576)]));
}

async function selectorFrom(req: IncomingMessage): Promise<Selector> {
  const body = await readJson(req, 64 * 1024);
  if (typeof body.id === 'string') {
    const id = parseQueueId(body.id);
    if (id === undefined) throw new HttpError(400, `id: ${JSON.stringify(body.id)} is not a queue id`);
    return { id };
  }
  if (typeof body.domain === 'string' && body.domain) return { domain: body.domain };
  throw new HttpError(400, 'give "id" (a queue id) or "domain"');
}

async function handle(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://relay');
  const route = `${req.method} ${url.pathname}`;
  const lanes = ctx.config.lanes.map((l) => l.name);
  switch (route) {
    case 'GET /health':
      // 503 while draining: the load balancer's HTTP check takes the node out of the API pool
      if (ctx.drain.active) return sendJson(res, 503, { status: 'draining', ...ctx.drain.status(), lanes });
      return sendJson(res, 200, { status: 'ok', uptimeSeconds: Math.round((Date.now() - ctx.startedAt) / 1000), lanes, memory: memoryMb(), cluster: ctx.cluster?.status() });
    case 'GET /metrics':
      return sendText(res, 200, prometheus(ctx.metrics, ctx.spool, ctx.dispatcher.describe()) + ctx.bounces.prometheus() + clusterMetrics(ctx.cluster) + inboundMetrics(ctx.inbound), 'text/plain; version=0.0.4');
    case 'GET /api/v1/queue':
      return sendJson(res, 200, queueStatus(ctx.spool, lanes));
    case 'GET /api/v1/queue/summary':
      return sendJson(res, 200, await ctx.spool.summary(Date.now(), Number(url.searchParams.get('top') ?? 20)));
    case 'GET /api/v1/queue/messages': {
      const scope = ctx.access.readScope(req);
      const lane = url.searchParams.get('lane') ?? undefined;
      if (lane && !lanes.includes(lane)) throw new HttpError(400, `lane: unknown lane ${JSON.stringify(lane)} (lanes: ${lanes.join(', ')})`);
      const limit = Math.min(10_000, Math.max(1, Number(url.searchParams.get('limit') ?? 100) || 100));
      return sendJson(res, 200, listQueue(ctx.spool, { lane, domain: url.searchParams.get('domain') ?? undefined, tenant: scope.tenant, limit }));
    }
    case 'POST /api/v1/queue/retry': {
      ctx.access.requireChange(req);
      const selector = await selectorFrom(req);
      const retried = await retryNow(ctx.spool, selector);
      ctx.dispatcher.unpause(selector.domain);
      ctx.scheduler.wakeAll();
      ctx.log.emit('retry-requested', { ...selector, retried });
      return sendJson(res, 200, { retried });
    }
    case 'POST /api/v1/queue/delete': {
      ctx.access.requireChange(req);
      const selector = await selectorFrom(req);
      const result = await deleteQueued(ctx.spool, selector);
      ctx.log.emit('deleted', { ...selector, ...result });
      return sendJson(res, 200, result);
    }
    case 'POST /api/v1/drain': {
      ctx.access.requireChange(req);
      return sendJson(res, 202, ctx.drain.start(await drainTimeoutFrom(req)));
    }
    case 'POST /api/v1/messages': {
      ctx.access.requireChange(req);
      if (ctx.drain.active) throw new HttpError(503, 'this node is draining and takes no new mail; send it to another node');
      const client = plainAddress(req.socket.remoteAddress ?? '');
      const result = await injectMessage(ctx, req, client, 'http');
      return sendJson(res, 202, result);
    }
    case 'GET /api/v1/events':
      return streamEvents(req, res, ctx.log, url.searchParams, ctx.access.readScope(req));
    default:
      if (await handleSending(ctx, req, res, route, url)) return;
      if (ctx.logs && await handleLogs({ access: ctx.access, logs: ctx.logs, lanes }, req, res, route, url)) return;
      throw new HttpError(404, `no such endpoint: ${route}`);
  }
}

export async function startApi(ctx: ApiContext, listen: HostPort): Promise<{ server: Server; address: HostPort }> {
  const server = createServer((req, res) => {
    handle(ctx, req, res).catch((err: Error) => {
      const status = err instanceof HttpError ? err.status : 500;
      if (status === 500) ctx.log.emit('api-error', { error: err.message });
      if (!res.headersSent) sendJson(res, status, { error: err.message });
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  return { server, address: { host: listen.host, port: (server.address() as AddressInfo).port } };
}

// The relay's HTTP API, served from the same process: health, Prometheus metrics, queue status
// and operator actions, message injection, and the live event stream.
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
import { HttpError, readJson, requireToken, sendJson, sendText } from './http.ts';
import { injectMessage } from './messages.ts';
import { prometheus } from './metrics.ts';
import { queueStatus } from './queue.ts';
import { handleSending } from './sending.ts';
import type { Bounces } from '../bounce/handler.ts';

export interface ApiContext extends Intake {
  scheduler: Scheduler;
  dispatcher: Dispatcher;
  bounces: Bounces;
  startedAt: number;
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
      return sendJson(res, 200, { status: 'ok', uptimeSeconds: Math.round((Date.now() - ctx.startedAt) / 1000), lanes, memory: memoryMb() });
    case 'GET /metrics':
      return sendText(res, 200, prometheus(ctx.metrics, ctx.spool, ctx.dispatcher.describe()) + ctx.bounces.prometheus(), 'text/plain; version=0.0.4');
    case 'GET /api/v1/queue':
      return sendJson(res, 200, queueStatus(ctx.spool, lanes));
    case 'GET /api/v1/queue/summary':
      return sendJson(res, 200, await ctx.spool.summary(Date.now(), Number(url.searchParams.get('top') ?? 20)));
    case 'GET /api/v1/queue/messages': {
      const lane = url.searchParams.get('lane') ?? undefined;
      if (lane && !lanes.includes(lane)) throw new HttpError(400, `lane: unknown lane ${JSON.stringify(lane)} (lanes: ${lanes.join(', ')})`);
      const limit = Math.min(10_000, Math.max(1, Number(url.searchParams.get('limit') ?? 100) || 100));
      return sendJson(res, 200, listQueue(ctx.spool, { lane, domain: url.searchParams.get('domain') ?? undefined, limit }));
    }
    case 'POST /api/v1/queue/retry': {
      requireToken(req, ctx.config.http.token);
      const selector = await selectorFrom(req);
      const retried = await retryNow(ctx.spool, selector);
      ctx.dispatcher.unpause(selector.domain);
      ctx.scheduler.wakeAll();
      ctx.log.emit('retry-requested', { ...selector, retried });
      return sendJson(res, 200, { retried });
    }
    case 'POST /api/v1/queue/delete': {
      requireToken(req, ctx.config.http.token);
      const selector = await selectorFrom(req);
      const result = await deleteQueued(ctx.spool, selector);
      ctx.log.emit('deleted', { ...selector, ...result });
      return sendJson(res, 200, result);
    }
    case 'POST /api/v1/messages': {
      requireToken(req, ctx.config.http.token);
      const client = plainAddress(req.socket.remoteAddress ?? '');
      const result = await injectMessage(ctx, req, client, 'http');
      return sendJson(res, 202, result);
    }
    case 'GET /api/v1/events':
      return streamEvents(req, res, ctx.log, url.searchParams);
    default:
      if (await handleSending(ctx, req, res, route, url)) return;
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

// The sink's HTTP API: GET /api/v1/stats, POST /api/v1/reset, GET /metrics, GET /healthz.
// Serves what the SinkApi gives; it keeps no state of its own.
import { createServer, type Server } from 'node:http';
import { bucketsSince } from './arrival-timeline.ts';
import { prometheus } from './metrics.ts';
import type { StatsSnapshot } from './stats.ts';

/** Without ?since= the stats carry the last minute of the arrival timeline: polling stays cheap. */
const DEFAULT_TIMELINE_MS = 60_000;

export interface SinkApi {
  stats(): StatsSnapshot;
  /** all: also forget greylisting triplets and rate windows. */
  reset(all: boolean): void;
}

export function createApiServer(api: SinkApi): Server {
  return createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://sink');
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    const json = (status: number, value: unknown) => send(status, 'application/json', `${JSON.stringify(value)}\n`);
    const route = `${req.method} ${url.pathname}`;
    req.resume();
    switch (route) {
      case 'GET /api/v1/stats': {
        const since = url.searchParams.get('since');
        if (since !== null && !/^\d+$/.test(since)) return json(400, { error: `since: expected epoch milliseconds, got ${JSON.stringify(since)}` });
        const stats = api.stats();
        const from = since === null ? stats.arrivalTimeline.now - DEFAULT_TIMELINE_MS : Number(since);
        return json(200, { ...stats, arrivalTimeline: bucketsSince(stats.arrivalTimeline, from) });
      }
      case 'POST /api/v1/reset': {
        const all = url.searchParams.get('all');
        api.reset(all === '1' || all === 'true');
        return json(200, { ok: true });
      }
      case 'GET /metrics':
        return send(200, 'text/plain; version=0.0.4', prometheus(api.stats()));
      case 'GET /healthz':
        return json(200, { ok: true });
      default: {
        const known = ['/api/v1/stats', '/api/v1/reset', '/metrics', '/healthz'];
        if (known.includes(url.pathname)) return json(405, { error: `${req.method} not allowed on ${url.pathname}` });
        return json(404, { error: `no such endpoint: ${url.pathname} (known: GET /api/v1/stats, POST /api/v1/reset, GET /metrics)` });
      }
    }
  });
}

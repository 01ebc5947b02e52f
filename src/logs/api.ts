// The delivery logs over HTTP, on the node's API listener (src/relay/api/server.ts hands these
// routes here). Every read is narrowed to the reader's scope (src/relay/api/access.ts): a
// tenant's token sees its own records, counts and graphs, and asking for another tenant is 403
// (as Loki takes one tenant per request and refuses a tail across tenants).
//   GET /api/v1/logs?<filters>&limit=100            the newest records that pass, oldest first
//   GET /api/v1/logs?<filters>&follow=1&limit=20     NDJSON: those, a {"following":NODE} line, then
//                                                   this node's new records as they happen
//   GET /api/v1/logs/summary?<filters>&bucket=1h     counts per event and bucket, providers,
//                                                   reasons, latency per lane (summary.ts)
//   GET /api/v1/logs/status                          the stores and the shipping (operator only)
//   GET /logs, /logs/assets/*                        the web page (web/), uPlot served from here
// Filters: tenant, sender, recipient, domain, lane, event, class, reply, id, since, until (filter.ts).
// Live records come from this node, not from a store: they reach followers the moment the event
// happens, cost the stores nothing per follower, and keep flowing while PostgreSQL is away.
// May touch: the delivery log (reads), the HTTP response.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiAccess, ReadScope } from '../relay/api/access.ts';
import { HttpError, sendJson } from '../relay/api/http.ts';
import { parseDuration } from '../util/units.ts';
import type { DeliveryLog } from './delivery-log.ts';
import { FilterError, matches, parseFilter, type LogFilter } from './filter.ts';
import type { LogRecord } from './record.ts';
import { summaryRange } from './summary.ts';
import { serveWeb } from './web/serve.ts';

export interface LogsApiContext {
  access: ApiAccess;
  logs: DeliveryLog;
  lanes: string[];
}

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 10_000;
/** Bytes a follower may have unread before its records are dropped (and counted) instead of queued. */
const MAX_BUFFERED = 1 << 20;
const KEEP_ALIVE_MS = 15_000;

/** The request's filters, narrowed to what the token may read. */
export function scopedFilter(url: URL, scope: ReadScope, lanes: string[], now: number): LogFilter {
  let filter: LogFilter;
  try {
    filter = parseFilter(url.searchParams, now);
  } catch (err) {
    if (err instanceof FilterError) throw new HttpError(400, err.message);
    throw err;
  }
  if (filter.lane !== undefined && !lanes.includes(filter.lane)) throw new HttpError(400, `lane: unknown lane ${JSON.stringify(filter.lane)} (lanes: ${lanes.join(', ')})`);
  if (scope.tenant !== undefined) {
    if (filter.tenant !== undefined && filter.tenant !== scope.tenant) throw new HttpError(403, `this token reads tenant ${scope.tenant}'s records only`);
    filter.tenant = scope.tenant;
  }
  return filter;
}

function limitOf(url: URL, fallback: number): number {
  const given = url.searchParams.get('limit');
  if (given === null || given === '') return fallback;
  const n = Number(given);
  if (!Number.isInteger(n) || n < 0 || n > MAX_LIMIT) throw new HttpError(400, `limit: expected an integer from 0 to ${MAX_LIMIT}, got ${JSON.stringify(given)}`);
  return n;
}

/** Handles the route if it is one of the delivery logs'; returns false otherwise. */
export async function handleLogs(ctx: LogsApiContext, req: IncomingMessage, res: ServerResponse, route: string, url: URL): Promise<boolean> {
  switch (route) {
    case 'GET /api/v1/logs': {
      const filter = scopedFilter(url, ctx.access.readScope(req), ctx.lanes, Date.now());
      const follow = url.searchParams.get('follow');
      if (follow === '1' || follow === 'true') await followLogs(ctx.logs, req, res, filter, limitOf(url, 20));
      else sendJson(res, 200, await ctx.logs.query(filter, limitOf(url, DEFAULT_LIMIT)));
      return true;
    }
    case 'GET /api/v1/logs/summary': {
      const now = Date.now();
      const filter = scopedFilter(url, ctx.access.readScope(req), ctx.lanes, now);
      const bucketText = url.searchParams.get('bucket') || '1h';
      const bucketMs = parseDuration(bucketText);
      if (bucketMs === undefined) throw new HttpError(400, `bucket: expected a duration such as 1m or 1h, got ${JSON.stringify(bucketText)}`);
      try {
        summaryRange(filter, bucketMs, now); // a bad range is the caller's 400, before any work
      } catch (err) {
        if (err instanceof FilterError) throw new HttpError(400, err.message);
        throw err;
      }
      sendJson(res, 200, await ctx.logs.summary(filter, bucketMs, now));
      return true;
    }
    case 'GET /api/v1/logs/status': {
      if (ctx.access.readScope(req).tenant !== undefined) throw new HttpError(403, 'the stores\' status is the operator\'s');
      sendJson(res, 200, await ctx.logs.status());
      return true;
    }
    default:
      return serveWeb(req, res, route);
  }
}

/**
 * The newest `limit` records of this node's own store, then its live records, each exactly once:
 * the follower is registered and the records gathered so far are handed to the store in the same
 * turn of the loop (no event can come between), so every record is either in the search or, once
 * it is answered, sent live.
 */
async function followLogs(logs: DeliveryLog, req: IncomingMessage, res: ServerResponse, filter: LogFilter, limit: number): Promise<void> {
  const live = { ...filter, until: undefined };
  let early: LogRecord[][] | undefined = [];
  let dropped = 0;
  let closed = false;
  const write = (records: LogRecord[]) => {
    if (records.length === 0 || closed) return;
    if (res.writableLength > MAX_BUFFERED) {
      dropped += records.length;
      return;
    }
    if (dropped) {
      res.write(`{"dropped":${dropped}}\n`);
      dropped = 0;
    }
    res.write(records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  };
  const unfollow = logs.follow((records) => {
    const passing = records.filter((r) => matches(r, live));
    if (early) early.push(passing);
    else write(passing);
  });
  let keepAlive: NodeJS.Timeout | undefined;
  req.on('close', () => {
    closed = true;
    clearInterval(keepAlive);
    unfollow();
  });
  try {
    // records gathered until now are flushed to the worker and searched; later ones are `early`
    const history = limit > 0 ? await logs.query(filter, limit, true) : { records: [] };
    res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
    write(history.records);
    res.write(JSON.stringify({ following: logs.node }) + '\n');
    keepAlive = setInterval(() => res.write('\n'), KEEP_ALIVE_MS);
    const waiting = early;
    early = undefined;
    for (const records of waiting) write(records);
  } catch (err) {
    unfollow();
    throw err;
  }
}

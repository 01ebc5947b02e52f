// Endpoints for sending quality: the suppression list, and the egress paths (sending address x
// destination site) with their shaping state per lane and backoff history, with operator
// suspend/resume per domain. May touch: the dispatcher's operator calls, the suppression list.
//   GET  /api/v1/suppressions?after=&limit=     POST /api/v1/suppressions/add {address, reason}
//   POST /api/v1/suppressions/remove {address}
//   GET  /api/v1/destinations                   POST /api/v1/destinations/suspend {domain, for?}
//   POST /api/v1/destinations/resume {domain}
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Bounces } from '../bounce/handler.ts';
import type { Dispatcher } from '../deliver/dispatcher.ts';
import type { Scheduler } from '../schedule/scheduler.ts';
import { retryNow } from '../spool/admin.ts';
import type { Spool } from '../spool/spool.ts';
import type { EventLog } from '../log.ts';
import { parseDuration } from '../../util/units.ts';
import type { ApiAccess } from './access.ts';
import { HttpError, readJson, sendJson } from './http.ts';

export interface SendingContext {
  access: ApiAccess;
  spool: Spool;
  log: EventLog;
  dispatcher: Dispatcher;
  scheduler: Scheduler;
  bounces: Bounces;
}

function text(body: Record<string, unknown>, key: string): string {
  const value = body[key];
  if (typeof value !== 'string' || value.trim() === '') throw new HttpError(400, `${key}: expected a non-empty string, got ${JSON.stringify(value)}`);
  return value.trim();
}

function address(body: Record<string, unknown>): string {
  const value = text(body, 'address').toLowerCase();
  if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(value)) throw new HttpError(400, `address: ${JSON.stringify(value)} is not an email address`);
  return value;
}

/**
 * An operator lifts a domain's suspension (and its site's pauses): what was held for it is due at
 * once. `share`: on every node of a cluster (false when the cluster told this node).
 */
export async function resumeDomain(ctx: Pick<SendingContext, 'dispatcher' | 'spool' | 'scheduler'>, domain: string, share = true) {
  const result = await ctx.dispatcher.resume(domain, share);
  const due = await retryNow(ctx.spool, { domain });
  ctx.scheduler.wakeAll();
  return { resumed: domain, site: result.site, due };
}

/** Handles the route if it is one of these endpoints; returns false otherwise. */
export async function handleSending(ctx: SendingContext, req: IncomingMessage, res: ServerResponse, route: string, url: URL): Promise<boolean> {
  const bounces = ctx.bounces;
  switch (route) {
    case 'GET /api/v1/suppressions': {
      ctx.access.requireAddressRead(req);
      const limit = Math.min(10_000, Math.max(1, Number(url.searchParams.get('limit') ?? 1000) || 1000));
      sendJson(res, 200, { total: bounces.suppression.size, entries: bounces.suppression.list(url.searchParams.get('after') ?? '', limit) });
      return true;
    }
    case 'POST /api/v1/suppressions/add': {
      ctx.access.requireChange(req);
      const body = await readJson(req, 64 * 1024);
      const entry = address(body);
      const reason = typeof body.reason === 'string' && body.reason ? body.reason : 'added by the operator';
      await bounces.suppress(entry, reason, 'operator');
      ctx.log.emit('suppressed', { address: entry, reason, by: 'operator' });
      sendJson(res, 200, { added: entry });
      return true;
    }
    case 'POST /api/v1/suppressions/remove': {
      ctx.access.requireChange(req);
      const entry = address(await readJson(req, 64 * 1024));
      const removed = await bounces.unsuppress(entry);
      if (removed) ctx.log.emit('unsuppressed', { address: entry, by: 'operator' });
      sendJson(res, removed ? 200 : 404, removed ? { removed: entry } : { error: `${entry} is not on the suppression list` });
      return true;
    }
    case 'GET /api/v1/destinations': {
      const now = Date.now();
      const suspended = ctx.dispatcher.suspended(now).map(([domain, s]) => ({
        domain, reason: s.reason, until: s.until >= Number.MAX_SAFE_INTEGER ? 'until resumed' : new Date(s.until).toISOString(),
      }));
      sendJson(res, 200, { paths: ctx.dispatcher.describe(now), suspended });
      return true;
    }
    case 'POST /api/v1/destinations/suspend': {
      ctx.access.requireChange(req);
      const body = await readJson(req, 64 * 1024);
      const domain = text(body, 'domain').toLowerCase();
      let until = Number.MAX_SAFE_INTEGER;
      if (body.for !== undefined) {
        const ms = parseDuration(body.for);
        if (ms === undefined || ms <= 0) throw new HttpError(400, `for: expected a duration such as 30m or 2h, got ${JSON.stringify(body.for)}`);
        until = Date.now() + ms;
      }
      const reason = typeof body.reason === 'string' && body.reason ? body.reason : 'suspended by the operator';
      await ctx.dispatcher.suspend(domain, until, reason);
      sendJson(res, 200, { suspended: domain, until: until >= Number.MAX_SAFE_INTEGER ? 'until resumed' : new Date(until).toISOString() });
      return true;
    }
    case 'POST /api/v1/destinations/resume': {
      ctx.access.requireChange(req);
      const domain = text(await readJson(req, 64 * 1024), 'domain').toLowerCase();
      sendJson(res, 200, await resumeDomain(ctx, domain));
      return true;
    }
    default:
      return false;
  }
}

// GET /api/v1/events: the event log as server-sent events, optionally filtered
// (?lane=bulk&event=deferred&domain=gmail.com). A client that cannot keep up loses events
// rather than growing the relay's memory. A tenant's token gets that tenant's events only.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EventLog, LogEvent } from '../log.ts';
import type { ReadScope } from './access.ts';

const MAX_BUFFERED = 1 << 20;

export function streamEvents(req: IncomingMessage, res: ServerResponse, log: EventLog, query: URLSearchParams, scope: ReadScope): void {
  const filters = ['lane', 'event', 'domain', 'id'].flatMap((key) => {
    const value = query.get(key);
    return value ? [[key, value] as const] : [];
  });
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  res.write(': mailops events\n\n');
  let dropped = 0;
  const unsubscribe = log.subscribe((event: LogEvent, line: string) => {
    if (scope.tenant !== undefined && event.tenant !== scope.tenant) return;
    if (filters.some(([key, value]) => event[key] !== value)) return;
    if (res.writableLength > MAX_BUFFERED) {
      dropped++;
      return;
    }
    if (dropped) {
      res.write(`event: dropped\ndata: {"dropped":${dropped}}\n\n`);
      dropped = 0;
    }
    res.write(`data: ${line}\n\n`);
  });
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
  req.on('close', () => {
    clearInterval(keepAlive);
    unsubscribe();
  });
}

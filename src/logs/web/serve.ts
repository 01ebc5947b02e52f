// The delivery logs' web page and its files, served by the node (src/logs/api.ts) and by
// `mailops logs serve` (src/logs/serve.ts): the page, its script and style, and uPlot from the
// installed package. Nothing is loaded from anywhere else (the Content-Security-Policy says so to
// the browser too). The page holds no data: it calls the API with the token it is given.
// May touch: reads these files (once each, then from memory).
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = (name: string) => fileURLToPath(new URL(name, import.meta.url));
const fromPackage = (name: string) => createRequire(import.meta.url).resolve(name);

const FILES: Record<string, { path: () => string; type: string }> = {
  '/logs': { path: () => here('./index.html'), type: 'text/html; charset=utf-8' },
  '/logs/': { path: () => here('./index.html'), type: 'text/html; charset=utf-8' },
  '/logs/assets/logs.js': { path: () => here('./logs.js'), type: 'text/javascript; charset=utf-8' },
  '/logs/assets/logs.css': { path: () => here('./logs.css'), type: 'text/css; charset=utf-8' },
  '/logs/assets/uPlot.iife.min.js': { path: () => fromPackage('uplot/dist/uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  '/logs/assets/uPlot.min.css': { path: () => fromPackage('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

const cache = new Map<string, Buffer>();

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/** Serves the route if it is one of the page's files; returns false otherwise. */
export function serveWeb(_req: IncomingMessage, res: ServerResponse, route: string): boolean {
  if (!route.startsWith('GET /logs')) return false;
  const file = FILES[route.slice(4)];
  if (!file) return false;
  let body = cache.get(route);
  if (!body) cache.set(route, (body = readFileSync(file.path())));
  res.writeHead(200, { 'content-type': file.type, 'content-length': body.length, 'cache-control': 'no-cache', ...SECURITY_HEADERS });
  res.end(body);
  return true;
}

// `mailops logs serve`: the delivery logs' web page for a set of nodes, from a process of its own
// (an operator's workstation, a host in front of the cluster). It serves the page and its files
// (web/serve.ts) and passes the page's API calls on to the nodes with the browser's own token, so
// that every tenant check stays at the nodes: searches and summaries to one node (the first that
// answers: with a central store, any node sees every node's records), live tails to every node,
// merged into one stream. It holds no token and no data of its own.
// May touch: its listener; HTTP calls to the nodes.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '../config/errors.ts';
import { DEFAULT_NODE } from '../cli/node-client.ts';
import { parseHostPort } from '../util/units.ts';
import { serveWeb } from './web/serve.ts';

export interface ServeOptions { listen: string; node?: string[]; cluster?: string }

/** The nodes' API URLs: --node (repeatable), or --cluster's registry (looked up at every request: nodes come and go). */
function nodeSource(options: ServeOptions): () => Promise<string[]> {
  if (options.cluster) {
    if (options.node?.length) throw new ConfigError('--cluster: finds the nodes itself; leave out --node');
    const url = options.cluster;
    return async () => {
      const { listNodes } = await import('../relay/cluster/registry.ts');
      return (await listNodes(url)).filter((n) => n.up).map((n) => n.api);
    };
  }
  const nodes = options.node?.length ? options.node : [DEFAULT_NODE];
  for (const node of nodes) if (!URL.canParse(node)) throw new ConfigError(`--node: ${JSON.stringify(node)} is not a URL (expected e.g. ${DEFAULT_NODE})`);
  return async () => nodes;
}

const forwardHeaders = (req: IncomingMessage): Record<string, string> => (req.headers.authorization ? { authorization: req.headers.authorization } : {});

/** A search or a summary: the first node that answers at all answers it (its status and body as they are). */
async function passOn(nodes: string[], req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  let lastError = 'no node';
  for (const node of nodes) {
    try {
      const answer = await fetch(new URL(path, node), { headers: forwardHeaders(req) });
      res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
      res.end(Buffer.from(await answer.arrayBuffer()));
      return;
    } catch (err) {
      lastError = `${node}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`;
    }
  }
  res.writeHead(502, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: `no node answered (${lastError})` }));
}

/** A live tail from every node, line by line into one stream; a node's refusal (401, 403) ends it for all. */
async function followAll(nodes: string[], req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const aborter = new AbortController();
  req.on('close', () => aborter.abort());
  const answers = await Promise.all(nodes.map((node) => fetch(new URL(path, node), { headers: forwardHeaders(req), signal: aborter.signal }).catch(() => undefined)));
  const refused = answers.find((a) => a && !a.ok);
  if (refused) {
    aborter.abort();
    res.writeHead(refused.status, { 'content-type': 'application/json' });
    res.end(await refused.text().catch(() => '{}'));
    return;
  }
  res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-cache' });
  await Promise.all(answers.map(async (answer) => {
    if (!answer?.body) return;
    let partial = '';
    try {
      for await (const chunk of answer.body) {
        const text = partial + Buffer.from(chunk as Uint8Array).toString('utf8');
        const end = text.lastIndexOf('\n') + 1;
        partial = text.slice(end);
        if (end) res.write(text.slice(0, end)); // whole lines only: nodes' lines never interleave
      }
    } catch {
      // the browser went away (abort) or the node did
    }
  }));
  res.end();
}

export async function serveLogs(options: ServeOptions): Promise<void> {
  const listen = parseHostPort(options.listen);
  if (!listen) throw new ConfigError(`--listen: expected HOST:PORT, got ${JSON.stringify(options.listen)}`);
  const nodes = nodeSource(options);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://logs');
    const route = `${req.method} ${url.pathname}`;
    (async () => {
      if (serveWeb(req, res, route)) return;
      if (route === 'GET /') {
        res.writeHead(302, { location: '/logs' });
        return res.end();
      }
      if (route !== 'GET /api/v1/logs' && route !== 'GET /api/v1/logs/summary') {
        res.writeHead(404, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ error: `no such endpoint here: ${route} (this serves the delivery logs' page)` }));
      }
      const list = await nodes();
      const path = `${url.pathname}${url.search}`;
      const follow = url.searchParams.get('follow');
      if (follow === '1' || follow === 'true') await followAll(list, req, res, path);
      else await passOn(list, req, res, path);
    })().catch((err: Error) => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: err.message }));
      } else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new ConfigError(`--listen ${options.listen}: ${err.message}`)));
    server.listen(listen.port, listen.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  process.stdout.write(`mailops logs serve: http://${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${port}/logs (open it with #token=YOUR_TOKEN)\n`);
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

// Plain node:http(s) GETs with keep-alive, for polling several nodes every second: cheaper per
// request than fetch's web streams, which showed up as the dashboard's largest CPU cost.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

export class HttpFailure extends Error {
  override name = 'HttpFailure';
}

const agents = { http: new HttpAgent({ keepAlive: true, maxSockets: 8 }), https: new HttpsAgent({ keepAlive: true, maxSockets: 8 }) };

/** Starts a GET; `signal` aborts it (the error then says "no answer in time"). */
export function get(url: URL, signal: AbortSignal, headers: Record<string, string> = {}): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const https = url.protocol === 'https:';
    const req = (https ? httpsRequest : httpRequest)(url, { agent: https ? agents.https : agents.http, headers, signal }, resolve);
    req.on('error', (err: Error & { code?: string }) => {
      reject(new HttpFailure(signal.aborted ? 'no answer in time' : (err.code ?? err.message)));
    });
    req.end();
  });
}

/** GET and read the whole body (at most `limit` bytes) as text; non-2xx answers are failures. */
export async function getText(url: URL, signal: AbortSignal, limit = 8 << 20): Promise<string> {
  const res = await get(url, signal);
  if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) > 299) {
    res.resume();
    throw new HttpFailure(`HTTP ${res.statusCode}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res) {
      size += (chunk as Buffer).length;
      if (size > limit) {
        res.destroy();
        throw new HttpFailure(`answer larger than ${limit} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (err instanceof HttpFailure) throw err;
    throw new HttpFailure(signal.aborted ? 'no answer in time' : `answer cut off (${(err as Error).message})`);
  }
  return Buffer.concat(chunks).toString('utf8');
}

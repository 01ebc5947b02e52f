// HTTP calls from the command line to a relay node's API (`--node URL`, `--token`/MAILOPS_TOKEN).
// A node that cannot be reached is a usage error (exit 2); an error answer is printed, exit 1.
import { ConfigError } from '../config/errors.ts';

export interface NodeOptions { node: string; token?: string; json?: boolean }

/** GET `path`, or POST `body` as JSON with the bearer token when a body is given. */
export async function callNode(options: NodeOptions, path: string, body?: unknown): Promise<any> {
  const url = new URL(path, options.node);
  const init: RequestInit = {};
  if (body !== undefined) {
    const token = options.token ?? process.env.MAILOPS_TOKEN;
    if (!token) throw new ConfigError(`${url.pathname}: needs --token or MAILOPS_TOKEN (the relay's http.token)`);
    Object.assign(init, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  }
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (err) {
    throw new ConfigError(`--node ${options.node}: cannot reach the relay (${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message})`);
  }
  const data: any = await res.json().catch(() => ({}));
  if (!res.ok) {
    process.stderr.write(`mailops: ${url.pathname}: HTTP ${res.status}: ${data.error ?? res.statusText}\n`);
    process.exit(1);
  }
  return data;
}

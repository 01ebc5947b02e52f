// HTTP calls from the command line to a relay node's API. The node: --node URL, else the one
// recorded in the spool's admin token file (--spool DIR, or the default spool), else
// http://127.0.0.1:8025. The bearer token: --token or MAILOPS_TOKEN (the relay's http.token), else
// the relay's local admin token from its spool, sent only to the node recorded beside it
// (src/relay/api/access.ts): the relay's own user administers it on the defaults without a token.
// A node that cannot be reached is a usage error (exit 2); an error answer is printed, exit 1.
import { ConfigError } from '../config/errors.ts';
import { defaultConfigDocument } from '../config/defaults.ts';
import { adminTokenPath, readLocalAdmin, type LocalAdmin } from '../relay/api/access.ts';

export interface NodeOptions { node?: string; spool?: string; token?: string; json?: boolean }

export const DEFAULT_NODE = 'http://127.0.0.1:8025';

export interface NodeTarget {
  node: string;
  token?: string;
  /** Why no local admin token is at hand (for the error when a change needs a token). */
  noAdmin?: string;
}

function nodeUrl(value: string): URL {
  try {
    return new URL(value);
  } catch {
    throw new ConfigError(`--node: ${JSON.stringify(value)} is not a URL (expected e.g. ${DEFAULT_NODE})`);
  }
}

/**
 * The node to call and the token to send. A spool's admin token is read when --spool is given
 * (then it must be there) or when neither --node nor --spool is (the default spool: a relay of
 * another user or none at all is no error, reads work without a token).
 */
export function nodeTarget(options: Pick<NodeOptions, 'node' | 'spool' | 'token'>): NodeTarget {
  const given = options.token || process.env.MAILOPS_TOKEN || undefined;
  const named = options.spool !== undefined;
  const spool = options.spool ?? (options.node === undefined ? (defaultConfigDocument().spool as { dir: string }).dir : undefined);
  let admin: LocalAdmin | undefined;
  let noAdmin: string | undefined;
  if (spool !== undefined) {
    try {
      admin = readLocalAdmin(spool);
    } catch (err) {
      if (named) throw err;
      noAdmin = (err as Error).message;
    }
    if (!admin && named) throw new ConfigError(`--spool ${spool}: no ${adminTokenPath(spool)}: no relay is running on this spool (or it is another machine's)`);
    if (!admin) noAdmin ??= `no relay admin token in ${adminTokenPath(spool)}`;
  }
  const node = options.node ?? admin?.node ?? DEFAULT_NODE;
  if (admin && options.node !== undefined && nodeUrl(options.node).origin !== nodeUrl(admin.node).origin) {
    throw new ConfigError(`--spool ${spool}: its admin token is for the relay at ${admin.node}, not --node ${options.node}`);
  }
  nodeUrl(node);
  return { node, token: given ?? admin?.token, noAdmin };
}

/** GET `path`, or POST `body` as JSON when a body is given; the token goes with either when there is one. */
export async function callNode(options: NodeOptions, path: string, body?: unknown): Promise<any> {
  const target = nodeTarget(options);
  const url = new URL(path, target.node);
  const headers: Record<string, string> = target.token ? { authorization: `Bearer ${target.token}` } : {};
  const init: RequestInit = { headers };
  if (body !== undefined) {
    if (!target.token) {
      throw new ConfigError(`${url.pathname}: needs --token or MAILOPS_TOKEN (the relay's http.token), or the relay's local admin token: ` +
        `run as the relay's user on its machine, with --spool DIR unless it runs on the default spool${target.noAdmin ? ` (${target.noAdmin})` : ''}`);
    }
    headers['content-type'] = 'application/json';
    Object.assign(init, { method: 'POST', body: JSON.stringify(body) });
  }
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (err) {
    throw new ConfigError(`--node ${target.node}: cannot reach the relay (${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message})`);
  }
  const data: any = await res.json().catch(() => ({}));
  if (!res.ok) {
    process.stderr.write(`mailops: ${url.pathname}: HTTP ${res.status}: ${data.error ?? res.statusText}\n`);
    process.exit(1);
  }
  return data;
}

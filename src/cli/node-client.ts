// HTTP calls from the command line to a relay node's API. The node: --node URL, else the one
// recorded in the spool's admin token file (--spool DIR, or the default spool), else
// http://127.0.0.1:8025. The bearer token: --token or MAILOPS_TOKEN (the relay's http.token), else
// the relay's local admin token from its spool, sent only to the node recorded beside it
// (src/relay/api/access.ts): the relay's own user administers it on the defaults without a token.
// A node that cannot be reached is a usage error (exit 2); an error answer is printed, exit 1.
import { ConfigError } from '../config/errors.ts';
import { defaultConfigDocument } from '../config/defaults.ts';
import { adminTokenPath, readLocalAdmin, type LocalAdmin } from '../relay/api/access.ts';

export interface NodeOptions { node?: string; spool?: string; token?: string; json?: boolean; cluster?: string }

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

/**
 * With --cluster REDIS_URL, runs `action` for the cluster's nodes as its registry lists them
 * (src/relay/cluster/registry.ts): on every node that beats (`each`: a queue lives on its node;
 * a line names each node first, and each node's JSON is its own document), or on one that beats
 * (`one`: the change is shared with the others through Redis). Without --cluster, on the node
 * the options name.
 */
export async function onNodes<O extends NodeOptions>(options: O, mode: 'each' | 'one', action: (options: O) => Promise<void>): Promise<void> {
  if (!options.cluster) return action(options);
  const up = await liveNodes({ ...options, cluster: options.cluster });
  for (const n of mode === 'one' ? up.slice(0, 1) : up) {
    if (!options.json && mode === 'each') process.stdout.write(`== node ${n.node} (${n.api})\n`);
    await action({ ...options, cluster: undefined, node: n.api });
  }
}

/** The nodes of --cluster's registry that beat (those that do not are named on stderr); none is a usage error. */
export async function liveNodes(options: NodeOptions & { cluster: string }) {
  if (options.node || options.spool) throw new ConfigError('--cluster: finds the nodes itself; leave out --node and --spool');
  const { listNodes } = await import('../relay/cluster/registry.ts');
  let nodes;
  try {
    nodes = await listNodes(options.cluster);
  } catch (err) {
    throw new ConfigError(`--cluster: ${(err as Error).message}`);
  }
  for (const down of nodes.filter((n) => !n.up)) process.stderr.write(`mailops: node ${down.node} (${down.api}) is down: last beat ${down.lastBeat}\n`);
  const up = nodes.filter((n) => n.up);
  if (up.length === 0) throw new ConfigError(`--cluster ${options.cluster}: no node is up`);
  return up;
}

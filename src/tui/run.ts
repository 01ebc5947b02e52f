// `mailops top`: the full-screen loop (poll every interval, draw, keys) and the --once snapshot.
import { ConfigError } from '../config/errors.ts';
import { nodeTarget } from '../cli/node-client.ts';
import { parseDuration } from '../util/units.ts';
import { ALL, Dashboard } from './dashboard.ts';
import { textReport } from './format.ts';

export interface TopOptions { node?: string[]; spool?: string[]; token?: string; cluster?: string; interval: string; history: string; top: number; once?: boolean; json?: boolean }

/** A --node value as a node URL: http:// assumed, no trailing slash. */
function nodeUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(/^[a-z]+:\/\//i.test(value) ? value : `http://${value}`);
  } catch {
    throw new ConfigError(`--node: ${JSON.stringify(value)} is not a URL (expected e.g. http://127.0.0.1:8025)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`--node: ${JSON.stringify(value)}: only http:// and https:// nodes`);
  return url.href.replace(/\/$/, '');
}

/** The API of every node in a cluster's registry, up or down (a down node shows as such). */
async function clusterNodes(redis: string): Promise<string[]> {
  const { listNodes } = await import('../relay/cluster/registry.ts');
  try {
    const nodes = await listNodes(redis);
    if (nodes.length === 0) throw new Error('no node has joined it');
    return nodes.map((n) => n.api);
  } catch (err) {
    throw new ConfigError(`--cluster ${redis}: ${(err as Error).message}`);
  }
}

/**
 * The nodes to watch, each with the token for its event stream: every --node (with --token), the
 * relay of every --spool (with its local admin token), or with neither the default as for the
 * queue commands (src/cli/node-client.ts).
 */
export function parseTopOptions(options: TopOptions) {
  const targets = [
    ...(options.node ?? []).map((node) => nodeTarget({ node: nodeUrl(node), token: options.token })),
    ...(options.spool ?? []).map((spool) => nodeTarget({ spool, token: options.token })),
  ];
  if (targets.length === 0) targets.push(nodeTarget({ token: options.token }));
  const tokens: Record<string, string> = {};
  for (const target of targets) {
    const url = nodeUrl(target.node);
    if (target.token) tokens[url] ??= target.token;
  }
  const nodes = [...new Set(targets.map((target) => nodeUrl(target.node)))];
  const intervalMs = parseDuration(options.interval);
  if (intervalMs === undefined || intervalMs < 100) throw new ConfigError(`--interval: expected a duration of at least 100ms such as 1s or 500ms, got ${JSON.stringify(options.interval)}`);
  const historyMs = parseDuration(options.history);
  if (historyMs === undefined || historyMs < intervalMs * 2) throw new ConfigError(`--history: expected a duration of at least two intervals such as 5m, got ${JSON.stringify(options.history)}`);
  if (options.json && !options.once) throw new ConfigError('--json: only with --once (the live view is full-screen)');
  return { nodes, tokens, intervalMs, historyMs, top: options.top };
}

export async function runTop(options: TopOptions): Promise<void> {
  if (options.cluster) options = { ...options, node: [...(options.node ?? []), ...(await clusterNodes(options.cluster))] };
  const parsed = parseTopOptions(options);
  if (options.once) return once(parsed, Boolean(options.json));
  if (!process.stdout.isTTY || !process.stdin.isTTY) throw new ConfigError('the live dashboard needs a terminal; use --once (or --once --json) in scripts and pipes');
  await live(parsed);
}

/** Two polls one interval apart, so that rates exist; exit 1 if no node answered. */
async function once(options: ReturnType<typeof parseTopOptions>, json: boolean): Promise<void> {
  // windows wide enough for the second poll to find the first, however long the first took
  const dash = new Dashboard({ ...options, events: false, rateWindowMs: 60_000 + options.intervalMs, latencyWindowMs: 60_000 + options.intervalMs });
  await dash.tick();
  if (dash.nodes.some((n) => n.up)) {
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
    await dash.tick();
  }
  const snapshot = dash.snapshot(dash.views[0]);
  const { history, ...rest } = snapshot;
  process.stdout.write(json ? JSON.stringify(rest, null, 2) + '\n' : textReport(snapshot));
  process.exitCode = dash.nodes.some((n) => n.up) ? 0 : 1;
}

async function live(options: ReturnType<typeof parseTopOptions>): Promise<void> {
  // blessed draws borders with the VT100 line set, which tmux and screen show as letters unless told
  if ((process.env.TMUX || /^(screen|tmux)/.test(process.env.TERM ?? '')) && process.env.NCURSES_NO_UTF8_ACS === undefined) process.env.NCURSES_NO_UTF8_ACS = '1';
  const { Screen } = await import('./screen.ts');
  const dash = new Dashboard({ ...options, events: true });
  let view = 0;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const label = () => {
    const key = dash.views[view];
    return key === ALL ? `all ${dash.nodes.length} nodes` : dash.nodes.find((n) => n.url === key)!.name;
  };
  const draw = () => {
    try {
      screen.draw(dash.snapshot(dash.views[view]), label(), `(${view + 1}/${dash.views.length})`);
    } catch (err) {
      screen.fail(err as Error);
    }
  };
  const quit = () => {
    stopped = true;
    clearTimeout(timer);
    dash.stop();
    screen.destroy();
    process.exit(0);
  };
  const screen = new Screen({
    quit,
    redraw: draw,
    next: (step) => {
      view = (view + step + dash.views.length) % dash.views.length;
      draw();
    },
  });
  process.on('SIGTERM', quit);
  dash.start();
  draw();
  const loop = async () => {
    const started = Date.now();
    await dash.tick().catch((err: Error) => screen.fail(err));
    if (stopped) return;
    draw();
    timer = setTimeout(() => void loop(), Math.max(0, options.intervalMs - (Date.now() - started)));
  };
  await loop();
}

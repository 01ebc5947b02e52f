// `mailops relay drain`: asks a node to drain (POST /api/v1/drain) and, unless --no-wait, follows
// it to the end: the node's `drain-ended` event (from GET /api/v1/events, subscribed before the
// drain starts) says what it delivered and what it left, /health polled meanwhile shows progress,
// and the command returns once the node no longer answers (it has exited).
// May touch: nothing but its HTTP calls to the node and standard output.
import { ConfigError } from '../config/errors.ts';
import { parseDuration } from '../util/units.ts';
import { callNode, nodeTarget, type NodeOptions } from './node-client.ts';

/** How often a waiting `relay drain` shows how much the node still holds. */
const PROGRESS_EVERY_MS = 1_000;

interface DrainEnded { queuedAtStart: number; left: number; timedOut: boolean; drainMs: number }

/** Resolves with the node's `drain-ended` event, or undefined if the stream ends without one. */
async function drainEnded(body: ReadableStream<Uint8Array>): Promise<DrainEnded | undefined> {
  const decoder = new TextDecoder();
  let text = '';
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    text += decoder.decode(chunk, { stream: true });
    const line = /^data: (.*"event":"drain-ended".*)$/m.exec(text)?.[1];
    if (line) return JSON.parse(line) as DrainEnded;
  }
  return undefined;
}

export async function drain(options: NodeOptions & { timeout: string; wait: boolean }): Promise<void> {
  if (parseDuration(options.timeout) === undefined) throw new ConfigError(`--timeout: expected a duration such as 90s, 10m or 1h, got ${JSON.stringify(options.timeout)}`);
  const target = nodeTarget(options);
  let events: Response | undefined;
  if (options.wait) {
    try {
      events = await fetch(new URL('/api/v1/events?event=drain-ended', target.node), { headers: target.token ? { authorization: `Bearer ${target.token}` } : {} });
    } catch (err) {
      throw new ConfigError(`--node ${target.node}: cannot reach the relay (${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message})`);
    }
  }
  const started = await callNode(options, '/api/v1/drain', { timeout: options.timeout });
  process.stdout.write(`draining ${target.node}: ${started.queued} message(s) queued; it stops by ${started.deadline} at the latest\n`);
  if (!events) return;
  if (!events.ok || !events.body) throw new ConfigError(`${target.node}/api/v1/events: HTTP ${events.status}: cannot follow the drain (use --no-wait)`);

  let last = started.queued as number;
  const progress = setInterval(() => {
    fetch(new URL('/health', target.node)).then((res) => res.json() as Promise<{ queued?: number }>).then((status) => {
      if (typeof status.queued === 'number' && status.queued !== last) process.stdout.write(`  ${(last = status.queued)} queued\n`);
    }, () => {});
  }, PROGRESS_EVERY_MS);
  const ended = await drainEnded(events.body).catch(() => undefined);
  clearInterval(progress);
  if (!ended) {
    process.stdout.write('the node stopped before its drain ended (killed?); what it held stays in its spool\n');
    process.exit(1);
  }
  process.stdout.write(ended.left === 0
    ? `drained: the node delivered everything it held and stopped (${Math.round(ended.drainMs / 1000)} s)\n`
    : `time is up: ${ended.left} message(s) left in its spool for the next start on that directory (this host or another)\n`);
  // the node stops once its drain has ended: wait until it no longer answers
  for (;;) {
    try {
      await fetch(new URL('/health', target.node));
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

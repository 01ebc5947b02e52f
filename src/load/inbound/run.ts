// One inbound run: serves the senders' DNS (world.ts) on --dns, starts messages at the
// scenario's rate, each from a client of its class, at most `connections` sessions at once, and
// follows each message to its end: accepted, refused (5xx), given up after a temporary refusal
// (a bot at once, an MTA once scenario.retry is used up), or still waiting for a retry when the
// run's timeout comes. Memory stays bounded by the message count: a message is rebuilt on each
// attempt rather than kept. May touch: the DNS listener on --dns, SMTP connections to the target.
import { randomBytes } from 'node:crypto';
import { ConfigError } from '../../config/errors.ts';
import { startDnsServer, type DnsServer } from '../../util/dns-server.ts';
import type { HostPort } from '../../util/units.ts';
import { Random, WeightedPick } from '../generate/random.ts';
import { attempt, type AttemptOutcome } from './attempt.ts';
import { InboundTally, type InboundReport } from './report.ts';
import { INBOUND_CLASSES, type InboundClass, type InboundScenario } from './scenario.ts';
import { SenderWorld, type Sender } from './world.ts';

export interface InboundRunOptions {
  scenario: InboundScenario;
  /** The MX under test (the relay's inbound.listen). */
  target: HostPort;
  /** Where this run serves the senders' DNS; the relay's resolver must ask there. */
  dns: HostPort;
  seed: number;
  /** Called about once a second while the run goes on. */
  onProgress?: (progress: InboundProgress) => void;
  /** Stops starting messages and retries; sessions under way finish; the report is still made. */
  signal?: AbortSignal;
}

export interface InboundProgress {
  elapsed: number;
  /** Messages started so far. */
  started: number;
  /** SMTP sessions open now. */
  sessions: number;
  /** Attempts waiting for a connection slot. */
  queued: number;
  waitingForRetry: number;
  accepted: number;
}

interface Message {
  n: number;
  sender: Sender;
  to: string;
  firstAttemptAt: number;
  firstAttemptDate: Date;
  attempts: number;
}

export async function runInbound(o: InboundRunOptions): Promise<InboundReport> {
  const s = o.scenario;
  const runId = randomBytes(4).toString('hex');
  const world = new SenderWorld(s, o.seed, runId);
  let dns: DnsServer;
  try {
    dns = await startDnsServer({}, { host: o.dns.host, port: o.dns.port, lookup: world.records });
  } catch (err) {
    throw new ConfigError(`--dns ${o.dns.host}:${o.dns.port}: cannot listen (${(err as Error).message})`);
  }
  const tally = new InboundTally(s);
  const random = new Random(o.seed);
  const pick = new WeightedPick(INBOUND_CLASSES.map((c) => s.mix[c]));
  const startedAt = new Date();
  const t0 = performance.now();
  const now = () => performance.now() - t0;

  // sessions waiting for a free connection slot, oldest first (retries queue with first attempts)
  const ready: Message[] = [];
  const waitingForRetry = new Map<NodeJS.Timeout, Message>();
  let sessions = 0;
  let started = 0;
  let stopped = false;
  let wake: (() => void) | undefined;
  const changed = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };

  const run = async (m: Message) => {
    sessions++;
    m.attempts++;
    const outcome = await attempt({
      target: o.target, localAddress: m.sender.address, helo: m.sender.helo, from: m.sender.from, to: m.to,
      pregreet: m.sender.pregreet, replyTimeout: s.commandTimeout,
      message: () => world.message(m.sender, m.n, m.to, m.firstAttemptDate),
    });
    sessions--;
    // a temporary refusal, or no answer at all: an MTA's queue tries again later, a bot does not
    const temporary = !outcome.accepted && ('error' in outcome || (outcome.reply.code >= 400 && outcome.reply.code < 500));
    const retryIn = s.retry[m.attempts - 1];
    if (temporary && m.sender.retries && retryIn !== undefined) {
      tally.retried(m.sender.class, outcome);
      if (stopped) tally.unfinished(m.sender.class, m.attempts);
      else {
        const timer = setTimeout(() => {
          waitingForRetry.delete(timer);
          ready.push(m);
          changed();
        }, retryIn);
        waitingForRetry.set(timer, m);
      }
    } else {
      tally.finish(m.sender.class, outcome, m.attempts, now() - m.firstAttemptAt);
    }
    changed();
  };

  const timeout = setTimeout(() => stop(), s.timeout);
  const stop = () => {
    stopped = true;
    changed();
  };
  o.signal?.addEventListener('abort', stop, { once: true });
  const ticker = setInterval(() => o.onProgress?.({
    elapsed: now() / 1000, started, sessions, queued: ready.length, waitingForRetry: waitingForRetry.size, accepted: tally.acceptedCount,
  }), 1000);
  let nextMessageTimer: NodeJS.Timeout | undefined;

  try {
    for (;;) {
      // new messages that are due
      while (!stopped && started < s.messages && started <= (now() / 1000) * s.rate) {
        const cls = INBOUND_CLASSES[pick.pick(random)];
        const n = started++;
        const at = now();
        ready.push({ n, sender: world.sender(cls, n), to: s.recipients[n % s.recipients.length], firstAttemptAt: at, firstAttemptDate: new Date(), attempts: 0 });
      }
      while (!stopped && sessions < s.connections && ready.length) void run(ready.shift()!);
      const allStarted = started >= s.messages;
      if (sessions === 0 && (stopped || (allStarted && ready.length === 0 && waitingForRetry.size === 0))) break;
      // sleep until something changes: a session ends, a retry is due, the next message is due
      clearTimeout(nextMessageTimer);
      if (!stopped && !allStarted) nextMessageTimer = setTimeout(changed, Math.max(0, (started / s.rate) * 1000 - now()));
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    clearTimeout(timeout);
    clearTimeout(nextMessageTimer);
    clearInterval(ticker);
    o.signal?.removeEventListener('abort', stop);
    await dns.close();
  }
  // messages still waiting for a retry, or for a connection slot, when the run stopped
  for (const [timer, m] of waitingForRetry) {
    clearTimeout(timer);
    tally.unfinished(m.sender.class, m.attempts);
  }
  for (const m of ready) tally.unfinished(m.sender.class, m.attempts);
  return tally.report({
    runId, target: o.target, dns: o.dns, seed: o.seed, startedAt: startedAt.toISOString(), durationMs: Math.round(now()),
    interrupted: o.signal?.aborted ?? false, unstarted: s.messages - started,
  });
}

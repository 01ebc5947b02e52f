// The HTTP engine: drives the relay's POST /api/v1/messages with autocannon. autocannon owns the
// connections and the pacing (overallRate; stages are flattened to their time-weighted mean);
// each request's body is built on the fly from the plan, so memory stays flat here as well.
// Latency is measured per lane from when autocannon asks for the request to its response; this
// engine is paced by autocannon, not by the open-loop dispatcher of the SMTP engine.
import { createRequire } from 'node:module';
import type { Lane } from '../scenario/types.ts';
import type { EngineRun } from './smtp-engine.ts';

interface Req { method?: string; path?: string; headers?: Record<string, string>; body?: string }
interface Ctx { lane?: Lane; start?: number; bytes?: number; provider?: string; real?: boolean }
interface Instance { stop(): void; on(event: string, fn: (...args: unknown[]) => void): void }
type Autocannon = (opts: Record<string, unknown>, done: (err: Error | null, result: unknown) => void) => Instance;

export interface HttpEngineOptions extends EngineRun {
  url: string;
  token?: string;
}

export class HttpEngine {
  private readonly o: HttpEngineOptions;
  private instance: Instance | undefined;
  private stopped = false;
  private exhausted = false;
  private responses = 0;
  private errors = 0;
  private lastResponse = 0;
  private watchdog: NodeJS.Timeout | undefined;
  private fail: ((err: Error) => void) | undefined;
  /** Requests handed to autocannon without a response yet, by lane (a request abandoned after a
   * connection error never gets one: at the end it counts as failed with "no-response"). */
  private readonly pending: Record<Lane, number> = { transactional: 0, member: 0, bulk: 0 };
  inFlight = 0;

  constructor(o: HttpEngineOptions) {
    this.o = o;
  }

  private rate(): number | undefined {
    const r = this.o.plan.scenario.rate;
    if (r === 'max') return undefined;
    const total = r.reduce((sum, s) => sum + s.duration, 0);
    if (total === 0) return r.at(-1)!.target;
    return r.reduce((sum, s) => sum + s.target * s.duration, 0) / total;
  }

  run(): Promise<void> {
    const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
    const s = this.o.plan.scenario;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.o.token) headers.authorization = `Bearer ${this.o.token}`;
    return new Promise((resolve, reject) => {
      this.instance = autocannon({
        url: new URL('/api/v1/messages', this.o.url).toString(),
        connections: s.connections,
        pipelining: 1,
        duration: 86_400,
        overallRate: this.rate(),
        timeout: 60,
        requests: [{
          method: 'POST',
          headers,
          setupRequest: (req: Req, ctx: Ctx) => this.setup(req, ctx),
          onResponse: (status: number, body: string, ctx: Ctx) => this.response(status, body, ctx),
        }],
      }, (err) => {
        clearInterval(this.watchdog);
        this.settleLost();
        if (err) reject(new Error(`--target ${this.o.url}: ${err.message}`));
        else resolve();
      });
      this.fail = reject;
      this.instance.on('reqError', (err) => this.onError(err as NodeJS.ErrnoException));
      // Once the plan is exhausted, stop when every request is answered or answers stop coming.
      this.watchdog = setInterval(() => {
        if ((this.exhausted || this.stopped) && (this.inFlight === 0 || this.o.now() - this.lastResponse > 10_000)) this.finish();
      }, 250);
    });
  }

  stop(): void {
    this.stopped = true;
  }

  private finish(): void {
    clearInterval(this.watchdog);
    this.instance?.stop();
  }

  private onError(err: NodeJS.ErrnoException): void {
    this.errors++;
    this.o.metrics.connectError(String(err.code ?? err.message));
    if (this.responses === 0 && this.errors >= 3 * this.o.plan.scenario.connections) {
      this.stopped = true;
      this.fail?.(new Error(`cannot reach ${this.o.url}: ${err.code ?? err.message}`));
      this.finish();
    }
  }

  private settleLost(): void {
    for (const lane of Object.keys(this.pending) as Lane[]) {
      for (; this.pending[lane] > 0; this.pending[lane]--) this.o.metrics.fail(lane, 'http', 'no-response', '', '-', 'request abandoned after a connection error or timeout');
    }
    this.inFlight = 0;
  }

  private setup(req: Req, ctx: Ctx): Req {
    const now = this.o.now();
    const plan = this.o.plan;
    if (this.stopped || plan.peek(now) === Infinity) {
      if (!this.exhausted) this.lastResponse = now;
      // Nothing left: autocannon still wants a request per client; send a harmless one and stop.
      this.exhausted = true;
      ctx.real = false;
      return { ...req, method: 'GET', path: '/api/v1/queue', body: undefined };
    }
    const p = plan.take(now);
    const r = this.o.recipients.next(p.seq);
    if (r.unknown) this.o.metrics.unknownRecipients++;
    const s = plan.scenario;
    const from = p.lane === 'bulk' ? s.bulk.from : (p.lane === 'transactional' ? s.transactional?.from : s.member?.from) ?? s.bulk.from;
    const header = this.o.factory.header({ runId: this.o.runId, seq: p.seq, lane: p.lane, from, to: r.address, campaign: s.bulk.campaign, unsubscribeBase: s.unsubscribeBase }, this.o.epoch + Math.round(now));
    const body = this.o.factory.body(p.lane, p.size, plan.isFixed(p.lane));
    // The template ends with the SMTP end-of-data line; the API takes the bare message.
    const raw = `${header.toString('latin1')}\r\n${body.toString('latin1', 0, body.length - 3)}`;
    this.inFlight++;
    this.pending[p.lane]++;
    Object.assign(ctx, { lane: p.lane, start: now, bytes: raw.length, provider: r.provider, real: true });
    return { ...req, method: 'POST', path: '/api/v1/messages', body: JSON.stringify({ from, to: [r.address], lane: p.lane, raw }) };
  }

  private response(status: number, body: string, ctx: Ctx): void {
    if (!ctx.real) return;
    ctx.real = false;
    this.lastResponse = this.o.now();
    this.responses++;
    this.inFlight--;
    this.pending[ctx.lane!]--;
    const ms = this.lastResponse - ctx.start!;
    if (status === 202 || status === 200) this.o.metrics.ok(ctx.lane!, ms * 1000, ms * 1000, ctx.bytes!);
    else this.o.metrics.fail(ctx.lane!, 'http', String(status), '', ctx.provider!, body.slice(0, 200));
    if ((this.exhausted || this.stopped) && this.inFlight === 0) this.finish();
  }
}

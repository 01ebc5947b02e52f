// Follows one node's event stream (GET /api/v1/events, server-sent events) and keeps what the
// dashboard shows from it, in bounded memory: the latest lines, and per destination domain the
// last outcome, the last error and recent deferrals. Reconnects by itself when the node comes back.
// Under a big drain most events are `delivered`/`received`: those are only matched by regex and
// kept raw; JSON is parsed only for the rarer events that carry an error.
import type { IncomingMessage } from 'node:http';
import { get } from './http.ts';
import type { EventLine } from './types.ts';

const KEEP_LINES = 200;
const KEEP_DOMAINS = 5000;
const DEFERRAL_MINUTES = 5;
const BATCH_MS = 250;

export interface DomainEvents {
  lastOutcome?: 'delivered' | 'deferred' | 'failed' | 'expired';
  lastError?: string;
  lastErrorAt?: number;
  /** Deferrals per minute, newest last, for the last DEFERRAL_MINUTES minutes ending at `minute`. */
  deferrals: number[];
  minute: number;
}

export interface RawEvent {
  event: string;
  line: string;
  /** The panel's rendering of this line, made once when first shown. */
  shown?: EventLine;
}

const EVENT = /"event":"([^"]*)"/;
const DOMAIN = /"domain":"([^"]*)"/;

export class EventFeed {
  readonly base: string;
  /** Bearer token for the stream, when the node asks for one. */
  private readonly token?: string;
  status: 'connected' | 'reconnecting' | 'off' = 'off';
  /** Set while the node refuses the stream (401/403: it has an http.token and we have not the right one). */
  refused?: number;
  /** Latest events, oldest first. */
  readonly lines: RawEvent[] = [];
  readonly domains = new Map<string, DomainEvents>();
  /** Destinations the node paused (key as the relay names it, e.g. "mx:gmail.com"): until, reply. */
  readonly pauses = new Map<string, { until: number; reply: string }>();
  dropped = 0;
  private controller?: AbortController;
  private timer?: NodeJS.Timeout;
  private stopped = true;

  constructor(base: string, token?: string) {
    this.base = base;
    this.token = token;
  }

  start(): void {
    this.stopped = false;
    void this.connect(0);
  }

  stop(): void {
    this.stopped = true;
    this.status = 'off';
    clearTimeout(this.timer);
    this.controller?.abort();
  }

  private async connect(failures: number): Promise<void> {
    if (this.stopped) return;
    this.controller = new AbortController();
    let received = false;
    try {
      const headers: Record<string, string> = this.token ? { accept: 'text/event-stream', authorization: `Bearer ${this.token}` } : { accept: 'text/event-stream' };
      const res = await get(new URL('/api/v1/events', this.base), this.controller.signal, headers);
      this.refused = res.statusCode === 401 || res.statusCode === 403 ? res.statusCode : undefined;
      if (res.statusCode !== 200) {
        res.resume();
        throw new Error(`HTTP ${res.statusCode}`);
      }
      this.status = 'connected';
      received = true;
      await this.read(res);
    } catch {
      // refused, reset or aborted: the node is away; try again below
    }
    if (this.stopped) return;
    this.status = 'reconnecting';
    const next = received ? 0 : failures + 1;
    this.timer = setTimeout(() => void this.connect(next), Math.min(5000, 500 * 2 ** Math.min(next, 4)));
    this.timer.unref?.();
  }

  /**
   * Reads frames until the stream ends, in batches: chunks are only collected as they come and
   * parsed every BATCH_MS, and between batches the socket is not read, so that events pile up in
   * the kernel and one read carries many. At hundreds of events per second, a read and a parse per
   * event cost more CPU than everything else the dashboard does. If a node produces more than a
   * batch's reads take in, it drops events for this client (and says how many): bounded work.
   */
  private read(res: IncomingMessage): Promise<void> {
    return new Promise((resolve) => {
      let chunks: string[] = [];
      let pending = '';
      const socket = res.socket;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => void chunks.push(chunk));
      const flush = () => {
        if (chunks.length === 0) return;
        pending += chunks.join('');
        chunks = [];
        const end = pending.lastIndexOf('\n\n');
        if (end >= 0) {
          const now = Date.now();
          for (const frame of pending.slice(0, end).split('\n\n')) this.frame(frame, now);
          pending = pending.slice(end + 2);
        }
        if (pending.length > 1 << 20) pending = ''; // a frame this big is not ours: drop it
      };
      const batch = setInterval(() => {
        flush();
        // read what arrived since the last batch (the poll phase after this timer), then stop again
        socket.resume();
        setImmediate(() => {
          if (!socket.destroyed) socket.pause();
        });
      }, BATCH_MS);
      const done = () => {
        clearInterval(batch);
        flush();
        resolve();
      };
      res.on('end', done);
      res.on('error', done);
      res.on('close', done);
    });
  }

  private frame(text: string, now: number): void {
    let data = '';
    let type = 'message';
    for (const line of text.split('\n')) {
      if (line.startsWith('data: ')) data += line.slice(6);
      else if (line.startsWith('event: ')) type = line.slice(7);
    }
    if (!data) return;
    if (type === 'dropped') {
      this.dropped += Number(/\d+/.exec(data)?.[0] ?? 0);
      return;
    }
    this.take(data, now);
  }

  /** Records one event line (a JSON object as the relay logs it). */
  take(line: string, now: number): void {
    const event = EVENT.exec(line)?.[1];
    if (!event) return;
    this.lines.push({ event, line });
    if (this.lines.length > KEEP_LINES) this.lines.splice(0, this.lines.length - KEEP_LINES);
    if (event === 'delivered') {
      const domain = DOMAIN.exec(line)?.[1];
      if (domain) this.domain(domain, now).lastOutcome = 'delivered';
      return;
    }
    if (event !== 'deferred' && event !== 'failed' && event !== 'expired' && event !== 'destination-paused') return;
    let fields: Record<string, unknown>;
    try {
      fields = JSON.parse(line);
    } catch {
      return;
    }
    const reply = typeof fields.reply === 'string' ? fields.reply : undefined;
    if (event === 'destination-paused') {
      const until = Date.parse(String(fields.until));
      if (typeof fields.destination === 'string' && !Number.isNaN(until)) this.pauses.set(fields.destination, { until, reply: reply ?? '' });
      for (const [key, pause] of this.pauses) if (pause.until < now) this.pauses.delete(key);
      return;
    }
    if (typeof fields.domain !== 'string') return;
    const entry = this.domain(fields.domain, now);
    entry.lastOutcome = event;
    if (reply) {
      entry.lastError = reply;
      entry.lastErrorAt = now;
    }
    if (event === 'deferred') entry.deferrals[DEFERRAL_MINUTES - 1]++;
  }

  /** Deferrals of a domain within the last DEFERRAL_MINUTES minutes. */
  recentDeferrals(domain: string, now: number): number {
    const entry = this.domains.get(domain);
    if (!entry) return 0;
    shift(entry, now);
    return entry.deferrals.reduce((a, b) => a + b, 0);
  }

  private domain(name: string, now: number): DomainEvents {
    let entry = this.domains.get(name);
    if (entry) {
      this.domains.delete(name); // re-insert: the map's order is least recently seen first
    } else {
      entry = { deferrals: new Array(DEFERRAL_MINUTES).fill(0), minute: Math.floor(now / 60_000) };
      if (this.domains.size >= KEEP_DOMAINS) this.domains.delete(this.domains.keys().next().value!);
    }
    this.domains.set(name, entry);
    shift(entry, now);
    return entry;
  }
}

function shift(entry: DomainEvents, now: number): void {
  const minute = Math.floor(now / 60_000);
  const by = Math.min(DEFERRAL_MINUTES, minute - entry.minute);
  if (by <= 0) return;
  entry.deferrals.splice(0, by);
  for (let i = 0; i < by; i++) entry.deferrals.push(0);
  entry.minute = minute;
}

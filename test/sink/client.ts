// A raw-socket SMTP client for the sink's tests: sends exactly what the test says and returns
// whole replies (multi-line included), so tests see the wire as a real client does.
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';

export interface Reply { code: number; text: string }

export class RawClient {
  readonly socket: Socket;
  private buffer = '';
  private waiting: ((reply: Reply | undefined) => void)[] = [];
  private replies: Reply[] = [];
  ended = false;
  readonly closed: Promise<void>;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buffer += d;
      for (;;) {
        const m = /^((?:\d{3}-[^\r\n]*\r\n)*)(\d{3}) ?[^\r\n]*\r\n/.exec(this.buffer);
        if (!m) break;
        this.buffer = this.buffer.slice(m[0].length);
        this.push({ code: Number(m[2]), text: m[0] });
      }
    });
    this.closed = new Promise((resolve) => socket.on('close', () => {
      this.ended = true;
      for (const w of this.waiting.splice(0)) w(undefined);
      resolve();
    }));
    socket.on('error', () => {});
  }

  private push(reply: Reply): void {
    const w = this.waiting.shift();
    if (w) w(reply);
    else this.replies.push(reply);
  }

  static async open(port: number, options: { localAddress?: string; host?: string } = {}): Promise<RawClient> {
    const socket = connect({ port, host: options.host ?? '127.0.0.1', localAddress: options.localAddress });
    await once(socket, 'connect');
    return new RawClient(socket);
  }

  /** The next reply; undefined when the server closed the connection first. */
  next(timeoutMs = 10_000): Promise<Reply | undefined> {
    const queued = this.replies.shift();
    if (queued) return Promise.resolve(queued);
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no SMTP reply within ${timeoutMs} ms`)), timeoutMs);
      this.waiting.push((r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
  }

  write(text: string): void {
    this.socket.write(text);
  }

  async command(line: string): Promise<Reply | undefined> {
    this.write(`${line}\r\n`);
    return this.next();
  }

  /** EHLO, MAIL, RCPT..., DATA, message; returns the reply to each step (stops at the first refusal). */
  async send(from: string, to: string[], message: string): Promise<Reply[]> {
    const out: Reply[] = [];
    const step = async (line: string, ok: number) => {
      const r = await this.command(line);
      if (r) out.push(r);
      return r?.code === ok;
    };
    if (!(await step(`MAIL FROM:<${from}>`, 250))) return out;
    let accepted = 0;
    for (const rcpt of to) if (await step(`RCPT TO:<${rcpt}>`, 250)) accepted++;
    if (accepted === 0) {
      if (!this.ended) await this.command('RSET');
      return out;
    }
    if (!(await step('DATA', 354))) return out;
    this.write(`${message.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..')}\r\n.\r\n`);
    const r = await this.next();
    if (r) out.push(r);
    return out;
  }

  async quit(): Promise<void> {
    if (!this.ended) this.write('QUIT\r\n');
    await this.closed;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Opens a connection, reads the greeting and says EHLO. */
export async function session(port: number, options: { localAddress?: string; host?: string } = {}): Promise<{ client: RawClient; greeting: Reply | undefined; ehlo: Reply | undefined }> {
  const client = await RawClient.open(port, options);
  const greeting = await client.next();
  const ehlo = greeting?.code === 220 ? await client.command('EHLO client.test') : undefined;
  return { client, greeting, ehlo };
}

export function message(headers: Record<string, string> = {}, body = 'Hello.\n'): string {
  const all = { From: 'sender@example.org', To: 'rcpt@example.com', Subject: 'test', ...headers };
  return `${Object.entries(all).map(([k, v]) => `${k}: ${v}`).join('\n')}\n\n${body}`;
}

export async function getJson(port: number, path: string, method = 'GET'): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method });
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status}`);
  return res.json();
}

/** Polls `check` until it returns a value other than undefined, or fails after `ms`. */
export async function eventually<T>(check: () => T | undefined | Promise<T | undefined>, ms = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

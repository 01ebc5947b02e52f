// A raw SMTP client on a plain socket: sends exactly the bytes a test gives (pipelined commands,
// bare LFs, oversize data) and reads replies line by line, multi-line replies joined.
import { connect, type Socket } from 'node:net';

export class RawSmtp {
  private buffer = '';
  private lines: string[] = [];
  private waiting?: () => void;
  closed = false;
  readonly socket: Socket;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (d) => {
      this.buffer += d.toString('latin1');
      let i: number;
      while ((i = this.buffer.indexOf('\r\n')) !== -1) {
        this.lines.push(this.buffer.slice(0, i));
        this.buffer = this.buffer.slice(i + 2);
      }
      this.waiting?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiting?.();
    });
  }

  static open(port: number, host = '127.0.0.1'): Promise<RawSmtp> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, host, () => resolve(new RawSmtp(socket)));
      socket.once('error', reject);
    });
  }

  /** The next complete reply (all lines of a multi-line reply, joined with \n). */
  async reply(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    const collected: string[] = [];
    for (;;) {
      while (this.lines.length) {
        const line = this.lines.shift()!;
        collected.push(line);
        if (line[3] !== '-') return collected.join('\n');
      }
      if (this.closed) return collected.length ? collected.join('\n') : '(closed)';
      if (Date.now() > deadline) throw new Error(`no SMTP reply within ${timeoutMs} ms (got ${JSON.stringify(collected)})`);
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
        setTimeout(resolve, 100);
      });
      this.waiting = undefined;
    }
  }

  send(text: string | Buffer): void {
    this.socket.write(text);
  }

  async command(line: string): Promise<string> {
    this.send(`${line}\r\n`);
    return this.reply();
  }

  close(): void {
    this.socket.destroy();
  }
}

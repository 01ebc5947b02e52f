// A raw SMTP client on a plain socket: sends exactly the bytes a test gives (pipelined commands,
// bare LFs, oversize data) and reads replies line by line, multi-line replies joined. STARTTLS
// moves it onto TLS (any certificate), for AUTH.
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';

export class RawSmtp {
  private buffer = '';
  private lines: string[] = [];
  private waiting?: () => void;
  closed = false;
  /** The plain socket, or the TLS socket over it after startTls(). */
  socket: Socket;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setNoDelay(true); // each command goes out as written (a benchmark's too)
    this.read(socket);
  }

  private read(socket: Socket): void {
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

  /** `localAddress`: the source address to connect from (any 127.x works on loopback). */
  static open(port: number, host = '127.0.0.1', localAddress?: string): Promise<RawSmtp> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host, localAddress }, () => resolve(new RawSmtp(socket)));
      socket.once('error', reject);
    });
  }

  /** STARTTLS, then the TLS handshake; later commands and replies are encrypted. Returns the reply to STARTTLS. */
  async startTls(): Promise<string> {
    const reply = await this.command('STARTTLS');
    if (!reply.startsWith('220 ')) return reply;
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('close');
    const secure = connectTls({ socket: this.socket, rejectUnauthorized: false });
    await once(secure, 'secureConnect');
    this.socket = secure;
    this.read(secure);
    return reply;
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

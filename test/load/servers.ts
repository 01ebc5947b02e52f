// Servers the load tests send to: Postfix's smtp-sink (a real, fast C receiver) and a tiny raw
// SMTP server that records how commands arrived, to prove the engine's pipelining.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { freePort } from '../helpers/ports.ts';

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

export interface PostfixSink { port: number; child: ChildProcess; messages(): number; waitFor(n: number, timeoutMs?: number): Promise<void>; stop(): Promise<void> }

/** Starts `smtp-sink -c` on a free loopback port; messages() reads its running `mesg=N` counter. */
export async function startPostfixSink(): Promise<PostfixSink> {
  const port = await freePort();
  const args = [...(process.getuid?.() === 0 ? ['-u', 'nobody'] : []), '-c', `127.0.0.1:${port}`, '1000'];
  const child = spawn('/usr/sbin/smtp-sink', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output = (output + d).slice(-4096)));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`smtp-sink exited ${code}: ${output}`))));
  // Wait for the listener: each failed connect is an event, not a sleep.
  const deadline = Date.now() + 10_000;
  while (!(await Promise.race([canConnect(port), exited]))) {
    if (Date.now() > deadline) throw new Error(`smtp-sink did not listen on ${port}: ${output}`);
    await new Promise((r) => setImmediate(r));
  }
  return {
    port,
    child,
    messages: () => Number([...output.matchAll(/mesg=(\d+)/g)].at(-1)?.[1] ?? 0),
    waitFor(n, timeoutMs = 10_000) {
      const count = () => Number([...output.matchAll(/mesg=(\d+)/g)].at(-1)?.[1] ?? 0);
      if (count() >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`smtp-sink counted ${count()} of ${n} messages`)), timeoutMs);
        const check = () => {
          if (count() < n) return;
          clearTimeout(timer);
          child.stdout!.off('data', check);
          resolve();
        };
        child.stdout!.on('data', check);
      });
    },
    stop: async () => {
      exited.catch(() => {});
      child.kill('SIGTERM');
      if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
    },
  };
}

export interface RawServer { port: number; chunks: string[]; messages: number; close(): Promise<void> }

/**
 * A minimal SMTP server that advertises PIPELINING and records every chunk it reads, so a test
 * can see which commands travelled together. Replies are sent only for complete lines.
 */
export async function startRawServer(): Promise<RawServer> {
  const state: RawServer = { port: 0, chunks: [], messages: 0, close: async () => {} };
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let inData = false;
    let pending = '';
    socket.write('220 raw.test ESMTP\r\n');
    socket.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1');
      state.chunks.push(text);
      pending += text;
      let replies = '';
      for (;;) {
        const end = pending.indexOf('\r\n');
        if (end < 0) break;
        const line = pending.slice(0, end);
        pending = pending.slice(end + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            state.messages++;
            replies += '250 2.0.0 queued\r\n';
          }
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') replies += '250-raw.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n';
        else if (verb === 'DATA') { inData = true; replies += '354 go ahead\r\n'; }
        else if (verb === 'QUIT') { replies += '221 bye\r\n'; socket.end(replies); return; }
        else replies += '250 2.1.0 ok\r\n';
      }
      if (replies) socket.write(replies);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  state.close = () => {
    for (const s of sockets) s.destroy();
    return new Promise((resolve) => server.close(() => resolve()));
  };
  return state;
}

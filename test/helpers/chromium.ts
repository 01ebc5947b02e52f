// Debian's headless Chromium driven over the DevTools protocol (one WebSocket, Node's own
// client): open a page, evaluate expressions in it, take a screenshot. For tests of web pages
// that keep running (live tails), where --dump-dom's one snapshot is not enough.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Browser {
  /** Evaluates `expression` in the page; its value (JSON-able). */
  evaluate<T = unknown>(expression: string): Promise<T>;
  /** A PNG of the window. */
  screenshot(): Promise<Buffer>;
  close(): Promise<void>;
}

export async function openPage(url: string, size = { width: 1280, height: 1500 }): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'mailops-chromium-'));
  const child: ChildProcess = spawn('/usr/bin/chromium', ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--hide-scrollbars', `--user-data-dir=${profile}`,
    `--window-size=${size.width},${size.height}`, '--remote-debugging-port=0', 'about:blank'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const wsUrl = await new Promise<string>((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`chromium did not start: ${err.slice(-500)}`)), 30_000);
    child.stderr!.on('data', (d) => {
      err += d;
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`chromium exited ${code}: ${err.slice(-500)}`)));
  });
  const socket = new WebSocket(wsUrl);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = () => reject(new Error('cannot connect to chromium\'s DevTools socket'));
  });
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  socket.onmessage = (message) => {
    const reply = JSON.parse(String(message.data));
    const p = reply.id ? pending.get(reply.id) : undefined;
    if (!p) return;
    pending.delete(reply.id);
    if (reply.error) p.reject(new Error(`${reply.error.message}`));
    else p.resolve(reply.result);
  };
  const send = (method: string, params: object = {}, sessionId?: string): Promise<any> => {
    const id = nextId++;
    socket.send(JSON.stringify({ id, method, params, sessionId }));
    return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
  };
  const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
  await send('Page.enable', {}, sessionId);
  await send('Emulation.setDeviceMetricsOverride', { width: size.width, height: size.height, deviceScaleFactor: 1, mobile: false }, sessionId);
  await send('Page.navigate', { url }, sessionId);
  // loaded (the document of `url`, not about:blank's) before anyone looks
  for (let tries = 0; ; tries++) {
    const { result } = await send('Runtime.evaluate', { expression: 'location.href !== "about:blank" && document.readyState === "complete"', returnByValue: true }, sessionId).catch(() => ({ result: {} }));
    if (result.value === true) break;
    if (tries > 300) throw new Error(`${url} did not load`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    async evaluate(expression) {
      const result = await send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true }, sessionId);
      if (result.exceptionDetails) throw new Error(`in the page: ${result.exceptionDetails.exception?.description ?? result.exceptionDetails.text}`);
      return result.result.value;
    },
    async screenshot() {
      const { data } = await send('Page.captureScreenshot', { format: 'png' }, sessionId);
      return Buffer.from(data, 'base64');
    },
    async close() {
      socket.close();
      await new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      });
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

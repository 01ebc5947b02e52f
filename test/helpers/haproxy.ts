// A real HAProxy (Debian's /usr/sbin/haproxy) running the shipped deploy/haproxy.cfg, filled in
// through its environment variables: its own free loopback ports and admin socket in a temp
// directory; the server states come from the admin socket's `show stat`.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.ts';

export { freePort };

export const HAPROXY = '/usr/sbin/haproxy';
export const HAPROXY_CFG = fileURLToPath(new URL('../../deploy/haproxy.cfg', import.meta.url));

export interface TestHaproxy {
  /** The frontends: SMTP per lane pool, the injection API. */
  transactionalPort: number;
  bulkPort: number;
  apiPort: number;
  /** "backend/server" → HAProxy's status ("UP", "DOWN", "UP 1/2", "NOLB", ...). */
  states(): Promise<Map<string, string>>;
  /** Runs one admin socket command and returns its answer. */
  admin(command: string): Promise<string>;
  output(): string;
  stop(): Promise<void>;
}

/** `nodes`: the MAILOPS_TX1_SMTP, MAILOPS_TX1_HTTP, MAILOPS_BULK1_SMTP ... variables of the template. */
export async function startHaproxy(nodes: Record<string, string>): Promise<TestHaproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'mailops-haproxy-'));
  const socket = join(dir, 'admin.sock');
  const [transactionalPort, bulkPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const env = {
    PATH: process.env.PATH,
    MAILOPS_STATS_SOCKET: socket,
    MAILOPS_TRANSACTIONAL_BIND: `127.0.0.1:${transactionalPort}`,
    MAILOPS_BULK_BIND: `127.0.0.1:${bulkPort}`,
    MAILOPS_API_BIND: `127.0.0.1:${apiPort}`,
    ...nodes,
  };
  const child: ChildProcess = spawn(HAPROXY, ['-f', HAPROXY_CFG, '-db'], { env, cwd: dir });
  let output = '';
  const keep = (d: Buffer) => {
    if (output.length < 1 << 20) output += d;
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const admin = (command: string) => new Promise<string>((resolve, reject) => {
    const conn = connect(socket);
    let answer = '';
    conn.on('data', (d) => (answer += d));
    conn.on('end', () => resolve(answer));
    conn.on('error', reject);
    conn.end(`${command}\n`);
  });
  const states = async () => {
    const [head, ...rows] = (await admin('show stat')).trim().split('\n');
    const columns = head.replace(/^# /, '').split(',');
    const [px, sv, status] = ['pxname', 'svname', 'status'].map((c) => columns.indexOf(c));
    const result = new Map<string, string>();
    for (const row of rows) {
      const cells = row.split(',');
      if (cells[sv] !== 'FRONTEND' && cells[sv] !== 'BACKEND') result.set(`${cells[px]}/${cells[sv]}`, cells[status]);
    }
    return result;
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`haproxy exited with ${child.exitCode}:\n${output}`);
    try {
      await states();
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`haproxy's admin socket did not answer:\n${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    transactionalPort, bulkPort, apiPort, states, admin,
    output: () => output,
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    }),
  };
}

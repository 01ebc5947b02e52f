// A real PostgreSQL (Debian's `postgresql` package) for a test: a cluster made with initdb in a
// temporary directory, on its own loopback port, trust authentication for the user `mailops`. It
// can be stopped (a fast shutdown: its data stays) and started again on the same port and data,
// as a central store that goes away and comes back. PostgreSQL refuses to run as root: when the
// test runs as root, its programs run as the `postgres` user (runuser) in a directory given to it.
// Tests run it with fsync off (they check behaviour, not durability); benchmarks ask for a durable
// one (`durable`) with settings of their own.
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './ports.ts';

const run = promisify(execFile);

export interface TestPostgres {
  port: number;
  url: string;
  /** pg_ctl stop -m fast: connections are cut, data is kept. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  query(sql: string, values?: unknown[]): Promise<Record<string, any>[]>;
  /** Stops it and removes its directory. */
  close(): Promise<void>;
}

/** Debian's newest installed PostgreSQL: /usr/lib/postgresql/<version>/bin. */
export function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return versions.length ? join(root, versions[0], 'bin') : undefined;
}

export async function startPostgres(options: { durable?: boolean; settings?: Record<string, string> } = {}): Promise<TestPostgres> {
  const bin = postgresBin();
  if (!bin) throw new Error('PostgreSQL is not installed (Debian: apt-get install postgresql; .ci/run does it)');
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'mailops-pg-'));
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
    chownSync(dir, uid, gid);
  }
  const data = join(dir, 'data');
  const as = (program: string, args: string[]) => (asRoot ? run('runuser', ['-u', 'postgres', '--', join(bin, program), ...args]) : run(join(bin, program), args));
  await as('initdb', ['-D', data, '-U', 'mailops', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  const port = await freePort();
  const settings = { listen_addresses: '127.0.0.1', max_connections: '50', ...(options.durable ? {} : { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' }), ...options.settings };
  const serverOptions = [`-p ${port}`, `-k ${dir}`, ...Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`)].join(' ');
  const start = async () => {
    await as('pg_ctl', ['-D', data, '-l', join(dir, 'postgres.log'), '-w', '-t', '60', '-o', serverOptions, 'start']);
  };
  const stop = async () => {
    await as('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop']).catch(() => {});
  };
  await start();
  const url = `postgres://mailops@127.0.0.1:${port}/postgres`;
  const query = async (sql: string, values: unknown[] = []) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query(sql, values)).rows;
    } finally {
      await client.end();
    }
  };
  return {
    port, url, stop, start, query,
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

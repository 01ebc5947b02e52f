// A real clamd (Debian's clamav-daemon) for a test: its own clamd.conf, port on loopback and
// database directory holding one signature made for the test, which finds the EICAR test string
// (no signature download is possible, and none is needed). clamd marks signatures from a database
// that is not ClamAV's own as ".UNOFFICIAL": the name it reports is "Eicar-Signature.UNOFFICIAL".
// It can be killed and started again on the same port, as a daemon that restarts.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eicarTestFile } from '../../src/load/inbound/world.ts';
import { freePort } from './ports.ts';

export const CLAMD = '/usr/sbin/clamd';
export const EICAR_SIGNATURE = 'Eicar-Signature';

export interface TestClamd {
  port: number;
  address: string;
  /** clamd's log so far (for failure messages). */
  log(): string;
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: a daemon that hangs (connections are still accepted by the kernel, nothing answers). */
  pause(): void;
  resume(): void;
  /** Starts it again on the same port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Asks clamd PING over a fresh connection; true when it answers PONG. */
function pong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.once('connect', () => socket.write('zPING\0'));
    socket.on('data', (d) => (answer += d));
    socket.once('close', () => resolve(answer === 'PONG\0'));
    socket.once('error', () => resolve(false));
  });
}

export async function startClamd(options: { streamMaxLength?: string } = {}): Promise<TestClamd> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'mailops-clamd-'));
  const db = mkdtempSync(join(dir, 'db-'));
  // an extended signature (.ndb): any file type, any offset, the EICAR bytes in hex
  writeFileSync(join(db, 'test.ndb'), `${EICAR_SIGNATURE}:0:*:${Buffer.from(eicarTestFile()).toString('hex')}\n`);
  const logFile = join(dir, 'clamd.log');
  const conf = join(dir, 'clamd.conf');
  writeFileSync(conf, [
    `TCPSocket ${port}`,
    'TCPAddr 127.0.0.1',
    'Foreground yes',
    `DatabaseDirectory ${db}`,
    `TemporaryDirectory ${dir}`,
    `PidFile ${join(dir, 'clamd.pid')}`,
    `LogFile ${logFile}`,
    'LogTime yes',
    `StreamMaxLength ${options.streamMaxLength ?? '25M'}`,
    'MaxThreads 4',
    '',
  ].join('\n'));
  const log = () => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  let child: ChildProcess | undefined;
  let output = '';
  const start = async () => {
    output = '';
    const c = spawn(CLAMD, ['--config-file', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    c.stdout!.on('data', (d) => (output += d));
    c.stderr!.on('data', (d) => (output += d));
    const deadline = Date.now() + 30_000;
    while (!(await pong(port))) {
      if (c.exitCode !== null) throw new Error(`clamd exited with ${c.exitCode}:\n${output}\n${log()}`);
      if (Date.now() > deadline) throw new Error(`clamd did not answer PING on port ${port}:\n${output}\n${log()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const kill = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  };
  await start();
  return {
    port, address: `127.0.0.1:${port}`, log, kill, restart: start, stop: kill,
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
  };
}

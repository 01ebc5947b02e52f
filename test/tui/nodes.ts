// Test helpers for `mailops top`: relay nodes as child processes (the way an operator runs them),
// mail injection over their HTTP API, and the dashboard inside a private tmux server.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAILOPS, startCli } from '../helpers/cli.ts';

export const TOKEN = 'top-test-token';

export interface RelayChild { child: ChildProcess; url: string; httpPort: number; smtpPort: number; dir: string; config: string }

/** A relay whose deliveries go to a closed port (mail stays queued), or to `smarthost`. */
export async function startRelayChild(options: { dir?: string; httpPort?: number; smarthost?: string } = {}): Promise<RelayChild> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'mailops-top-'));
  const config = join(dir, 'relay.yaml');
  writeFileSync(config, `smtp: { listen: "127.0.0.1:0" }
http: { listen: "127.0.0.1:${options.httpPort ?? 0}", token: ${TOKEN} }
spool: { dir: "${join(dir, 'spool')}" }
delivery: { smarthost: "${options.smarthost ?? '127.0.0.1:9'}" }
`);
  const { child, output } = await startCli(['relay', 'start', '--config', config], /"event":"listening".*\n/);
  const listening = JSON.parse(output().split('\n').find((line) => line.includes('"listening"'))!);
  const httpPort = Number(String(listening.http).split(':').pop());
  return { child, url: `http://127.0.0.1:${httpPort}`, httpPort, smtpPort: Number(String(listening.smtp[0]).split(':').pop()), dir, config };
}

/** Stops the relay and removes its directory (for t.after). */
export async function disposeRelay(relay: RelayChild): Promise<void> {
  await stopRelay(relay);
  rmSync(relay.dir, { recursive: true, force: true });
}

export function stopRelay(relay: RelayChild, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (relay.child.exitCode !== null || relay.child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    relay.child.once('exit', () => resolve());
    relay.child.kill(signal);
  });
}

/** `count` messages on `lane`, each to `to`; resolves after every one was accepted (202). */
export async function inject(relay: RelayChild, lane: string, count: number, to = ['user@gmail.test', 'user@gmx.test']): Promise<void> {
  for (let i = 0; i < count; i++) {
    const res = await fetch(`${relay.url}/api/v1/messages`, {
      method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ from: 'news@sender.test', to, lane, subject: `m${i}`, text: 'hello' }),
    });
    if (res.status !== 202) throw new Error(`inject: HTTP ${res.status}: ${await res.text()}`);
  }
}

/** Polls `check` until it returns a value (not undefined) or the deadline passes. */
export async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000, last?: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `; last seen:\n${last()}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The dashboard in its own tmux server (-L), 160x48, with its exit status written to a file. */
export class TmuxTop {
  readonly socket = `mailops-top-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  readonly statusFile: string;
  private readonly dir: string;
  screen = '';

  constructor(args: string[]) {
    const dir = (this.dir = mkdtempSync(join(tmpdir(), 'mailops-tmux-')));
    this.statusFile = join(dir, 'status');
    const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const command = `env NCURSES_NO_UTF8_ACS=1 TERM=xterm-256color ${quote(process.execPath)} ${quote(MAILOPS)} top ${args.map(quote).join(' ')} 2>${quote(join(dir, 'stderr'))}; echo $? > ${quote(this.statusFile)}`;
    this.tmux('new-session', '-d', '-x', '160', '-y', '48', '-s', 'top', command);
  }

  private tmux(...args: string[]): string {
    const result = spawnSync('tmux', ['-L', this.socket, '-f', '/dev/null', ...args], { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`tmux ${args[0]}: ${result.stderr}`);
    return result.stdout;
  }

  capture(): string {
    this.screen = this.tmux('capture-pane', '-p', '-t', 'top');
    return this.screen;
  }

  /** Waits until `check(screen)` returns a value. */
  until<T>(what: string, check: (screen: string) => T | undefined, timeoutMs = 15_000): Promise<T> {
    return waitFor(what, () => {
      if (existsSync(this.statusFile)) throw new Error(`the dashboard exited (${readFileSync(this.statusFile, 'utf8').trim()}) while waiting for ${what}; screen:\n${this.screen}`);
      return check(this.capture());
    }, timeoutMs, () => this.screen);
  }

  keys(...keys: string[]): void {
    this.tmux('send-keys', '-t', 'top', ...keys);
  }

  /** Resolves with the exit status once the dashboard has exited. */
  exitStatus(timeoutMs = 10_000): Promise<number> {
    return waitFor('the dashboard to exit', () => (existsSync(this.statusFile) && readFileSync(this.statusFile, 'utf8').trim() !== '' ? Number(readFileSync(this.statusFile, 'utf8')) : undefined), timeoutMs);
  }

  kill(): void {
    spawnSync('tmux', ['-L', this.socket, 'kill-server']);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The row of `lane` in the lanes table: its numbers in column order (DEPTH, QUEUED, DEFERRED, ACTIVE, ...). */
export function laneRow(screen: string, lane: string): string[] | undefined {
  const match = new RegExp(`│${lane}\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s`).exec(screen);
  return match ? match.slice(1) : undefined;
}

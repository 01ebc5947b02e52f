// Runs the real `mailops` launcher as a child process, the way a user or a script would.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const MAILOPS = fileURLToPath(new URL('../../bin/mailops', import.meta.url));

export interface CliResult { code: number | null; stdout: string; stderr: string }

export function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAILOPS, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts `mailops ARGS` in the background; resolves once a line of its output matches `ready`. */
export function startCli(args: string[], ready: RegExp, options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<{ child: ChildProcess; output: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAILOPS, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env } });
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`mailops ${args.join(' ')} did not become ready; output:\n${output}`));
    }, options.timeoutMs ?? 20_000);
    let isReady = false;
    const onData = (d: Buffer) => {
      // keep the first 1 MB: a long-running child must not grow the test's memory without bound
      if (output.length < 1 << 20) output += d;
      if (!isReady && ready.test(output)) {
        isReady = true;
        clearTimeout(timer);
        resolve({ child, output: () => output });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (!isReady) reject(new Error(`mailops ${args.join(' ')} exited with ${code} before ready; output:\n${output}`));
    });
  });
}

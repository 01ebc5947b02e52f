// Small helpers shared by command files.
import type { Command } from 'commander';
import { ConfigError } from '../config/errors.ts';

/** Commander collector for repeatable flags (`--route a=b --route c=d`). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function examples(lines: string[]): string {
  return `\nExamples:\n${lines.map((line) => `  $ ${line}`).join('\n')}\n`;
}

export function positiveInt(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new ConfigError(`${flag}: expected a positive integer, got ${JSON.stringify(value)}`);
    return n;
  };
}

/** --node, --spool and --token of the commands that call a relay's API (src/cli/node-client.ts). */
export function withNode(cmd: Command): Command {
  return cmd
    .option('--node <url>', 'relay HTTP API (default: the one recorded in the spool, else http://127.0.0.1:8025)')
    .option('--spool <dir>', 'the relay\'s spool: use its local admin token, as the relay\'s user (default ./var/spool when no --node is given)')
    .option('--token <token>', 'the relay\'s http.token (or MAILOPS_TOKEN): for changes without the local admin token, and for addresses once http.token is set');
}

/** --cluster: the command runs on the nodes of a cluster's registry (src/cli/node-client.ts, onNodes). */
export function withCluster(cmd: Command): Command {
  return cmd.option('--cluster <redis-url>', 'the nodes of a cluster, as its Redis registry lists them (instead of --node)');
}

// `mailops top`: live terminal dashboard of queue depth per priority lane across relay nodes.
import type { Command } from 'commander';
import { collect, examples, positiveInt } from './usage.ts';

export function registerTop(program: Command): void {
  program
    .command('top')
    .description('live dashboard of queue depth, rates, latency, destinations, egress paths and events per lane across relay nodes')
    .option('--node <url>', 'relay HTTP API to watch (repeatable; default: the one recorded in ./var/spool, else http://127.0.0.1:8025)', collect)
    .option('--spool <dir>', 'watch the relay of this spool, with its local admin token, as the relay\'s user (repeatable)', collect)
    .option('--token <token>', 'the relays\' http.token (or MAILOPS_TOKEN), for their event streams once http.token is set')
    .option('--cluster <redis-url>', 'watch every node of a cluster, as its Redis registry lists them (with any --node)')
    .option('--interval <duration>', 'refresh interval', '1s')
    .option('--history <duration>', 'how far back the depth chart reaches', '5m')
    .option('--top <n>', 'busiest destination domains to show', positiveInt('--top'), 10)
    .option('--once', 'print one snapshot (two polls one interval apart) and exit; exit 1 if no node answers')
    .option('--json', 'with --once: print the snapshot as JSON')
    .addHelpText('after', examples([
      'mailops top',
      'mailops top --node http://relay1:8025 --node http://relay2:8025 --node http://relay3:8025',
      'mailops top --cluster redis://10.0.0.5:6379',
      'mailops top --interval 2s --history 15m',
      'mailops top --once',
      'mailops top --once --json --node http://relay1:8025 | jq .lanes',
    ]) + '\nKeys: q quits, n/p switch between the aggregate and each node, d shows destinations by domain, by provider or egress paths, ? shows help.\nSee docs/top.md.\n')
    .action(async (options) => (await import('../tui/run.ts')).runTop(options));
}

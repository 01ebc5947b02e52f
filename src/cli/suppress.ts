// `mailops suppress list|add|remove`: the relay's suppression list, through its HTTP API.
import type { Command } from 'commander';
import { examples, withCluster, withNode } from './usage.ts';
import { onNodes } from './node-client.ts';

export function registerSuppress(program: Command): void {
  const suppress = program.command('suppress').description('addresses the relay never sends to (hard bounces and operator entries)');

  withCluster(withNode(suppress.command('list')))
    .description('list suppressed addresses in address order')
    .option('--after <address>', 'start after this address (paging)')
    .option('--limit <n>', 'at most this many', '1000')
    .option('--json', 'print JSON')
    .addHelpText('after', examples(['mailops suppress list', 'mailops suppress list --after m@example.com --limit 100 --json']))
    .action(async (options) => onNodes(options, 'one', async (o) => (await import('./sending-actions.ts')).suppressList(o)));

  withCluster(withNode(suppress.command('add <address>')))
    .description('suppress an address: mail to it fails at once')
    .option('--reason <text>', 'why (shown in the log and the list)')
    .addHelpText('after', examples(['mailops suppress add old@example.com --reason "asked to be removed" --token $TOKEN']))
    .action(async (address, options) => onNodes(options, 'one', async (o) => (await import('./sending-actions.ts')).suppressChange('add', address, o)));

  withCluster(withNode(suppress.command('remove <address>')))
    .description('take an address off the suppression list')
    .addHelpText('after', examples(['mailops suppress remove fixed@example.com --token $TOKEN']))
    .action(async (address, options) => onNodes(options, 'one', async (o) => (await import('./sending-actions.ts')).suppressChange('remove', address, o)));
}

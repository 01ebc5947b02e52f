// `mailops queue ...`: inspect and change a running relay's queue through its HTTP API; on the
// relay's machine, as its user, without a token (the local admin token, src/cli/node-client.ts).
import type { Command } from 'commander';
import { examples, withCluster, withNode } from './usage.ts';
import { onNodes } from './node-client.ts';

export function registerQueue(program: Command): void {
  const queue = program.command('queue').description('inspect and manage a relay node\'s queue');

  withCluster(withNode(queue.command('summary')))
    .description('messages per lane and destination domain by age, like Postfix qshape')
    .option('--json', 'print JSON')
    .addHelpText('after', examples(['mailops queue summary', 'mailops queue summary --node http://relay2:8025 --json']))
    .action(async (options) => onNodes(options, 'each', async (o) => (await import('./queue-actions.ts')).summary(o)));

  withCluster(withNode(queue.command('list')))
    .description('list queued messages, oldest first')
    .option('--lane <lane>', 'only this lane')
    .option('--domain <domain>', 'only recipients at this domain')
    .option('--limit <n>', 'at most this many', '100')
    .option('--json', 'print JSON')
    .addHelpText('after', examples(['mailops queue list --lane bulk --limit 20', 'mailops queue list --domain gmail.com --json']))
    .action(async (options) => onNodes(options, 'each', async (o) => (await import('./queue-actions.ts')).list(o)));

  withCluster(withNode(queue.command('retry [id]')))
    .description('deliver now: one message by queue id, or everything for --domain')
    .option('--domain <domain>', 'every queued recipient at this domain')
    .addHelpText('after', examples(['mailops queue retry 0000002A', 'mailops queue retry --domain gmx.de --spool /var/spool/mailops', 'mailops queue retry --domain gmx.de --node http://relay2:8025 --token $TOKEN']))
    .action(async (id, options) => onNodes(options, 'each', async (o) => (await import('./queue-actions.ts')).change('retry', id, o)));

  withCluster(withNode(queue.command('delete [id]')))
    .description('remove from the queue without delivery: one message by queue id, or everything for --domain')
    .option('--domain <domain>', 'every queued recipient at this domain')
    .addHelpText('after', examples(['mailops queue delete 0000002A', 'mailops queue delete --domain typo-domain.test']))
    .action(async (id, options) => onNodes(options, 'each', async (o) => (await import('./queue-actions.ts')).change('delete', id, o)));

  // traffic shaping (src/cli/sending-actions.ts, docs/sending.md)
  withCluster(withNode(queue.command('destinations')))
    .description('destination sites: provider profile, connections, backoff state and its cause')
    .option('--json', 'print JSON')
    .addHelpText('after', examples(['mailops queue destinations', 'mailops queue destinations --json']))
    .action(async (options) => onNodes(options, 'each', async (o) => (await import('./sending-actions.ts')).destinations(o)));

  withCluster(withNode(queue.command('suspend')))
    .description('stop delivering to a domain (its mail waits), until resumed or for a while')
    .requiredOption('--domain <domain>', 'recipient domain')
    .option('--for <duration>', 'suspend for this long (30m, 2h); default until resumed')
    .option('--reason <text>', 'why (shown in the log and in queue destinations)')
    .addHelpText('after', examples(['mailops queue suspend --domain yahoo.com --for 2h --token $TOKEN', 'mailops queue suspend --domain gmx.de']))
    .action(async (options) => onNodes(options, 'one', async (o) => (await import('./sending-actions.ts')).suspend(o)));

  withCluster(withNode(queue.command('resume')))
    .description('deliver to a domain again: lifts a suspension or a provider backoff pause, and makes its mail due now')
    .requiredOption('--domain <domain>', 'recipient domain')
    .addHelpText('after', examples(['mailops queue resume --domain yahoo.com --token $TOKEN']))
    .action(async (options) => onNodes(options, 'one', async (o) => (await import('./sending-actions.ts')).resume(o)));
}

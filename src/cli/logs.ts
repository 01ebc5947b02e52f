// `mailops logs`: the delivery logs of relay nodes (src/logs/): search with filters, follow live,
// summarise (pflogsumm-like), and `mailops logs serve` for the web page. Actions in src/logs/cli-run.ts.
import type { Command } from 'commander';
import { collect, examples, withCluster, withNode } from './usage.ts';

export function registerLogs(program: Command): void {
  const logs = program.command('logs').description('delivery logs across nodes: search, follow live, summarise, or serve the web page')
    .addHelpText('after', '\n`mailops logs [filters]` runs `mailops logs search`: its flags are in `mailops logs search --help`. See docs/logs.md.\n');

  withCluster(withNode(logs.command('search', { isDefault: true })))
    .description('records of delivery attempts and outcomes (the default: `mailops logs ...` is `mailops logs search ...`)')
    .option('--tenant <name>', 'only this tenant\'s mail (a tenant\'s token reads its own only)')
    .option('--sender <address>', 'envelope sender')
    .option('--recipient <address>', 'recipient')
    .option('--domain <domain>', 'recipient domain')
    .option('--lane <lane>', 'lane')
    .option('--event <events>', 'received, deferred, delivered, failed, expired, suppressed, bounced (comma-separated)')
    .option('--class <class>', 'reply class: bad-mailbox, mailbox-full, policy-block, throttled, dns-failure, tls-failure, timeout, other')
    .option('--reply <text>', 'text the reply contains (case-insensitive)')
    .option('--id <queue-id>', 'queue id')
    .option('--since <time>', 'from: a duration back (1h, 2d) or a date/time (2026-11-30, 2026-11-30T12:00:00Z)')
    .option('--until <time>', 'until (same forms)')
    .option('--limit <n>', 'the newest N records (default 100; with --follow, 10 before the live ones)')
    .option('--follow', 'then print new records as they happen (every node with --cluster)')
    .option('--summary', 'counts per event and hour, per provider, top deferral and bounce reasons, latency per lane')
    .option('--bucket <duration>', 'with --summary: the time bucket', '1h')
    .option('--json', 'JSON: one record per line (--summary: one document)')
    .addHelpText('after', examples([
      'mailops logs --recipient x@y.example --since 2d',
      'mailops logs --tenant alpha --event deferred,failed --since 1h',
      'mailops logs --follow --domain gmail.com',
      'mailops logs --summary --since 2026-11-29 --until 2026-11-30',
      'mailops logs --cluster redis://10.0.0.5:6379 --follow --event failed',
      'mailops logs --node http://relay1:8025 --token "$TENANT_TOKEN" --json --since 1h',
    ]) + '\nSee docs/logs.md.\n')
    .action(async (options) => (await import('../logs/cli-run.ts')).run(options));

  logs.command('serve')
    .description('serve the delivery logs\' web page (live tail and graphs) for nodes; each browser brings its token (#token=...)')
    .option('--listen <host:port>', 'where to serve it', '127.0.0.1:8090')
    .option('--node <url>', 'a relay node\'s API (repeatable; default http://127.0.0.1:8025)', collect)
    .option('--cluster <redis-url>', 'the nodes of a cluster, as its Redis registry lists them')
    .addHelpText('after', examples([
      'mailops logs serve --node http://relay1:8025 --node http://relay2:8025',
      'mailops logs serve --cluster redis://10.0.0.5:6379 --listen 0.0.0.0:8090',
    ]) + '\nEvery node also serves the page itself at /logs.\n')
    .action(async (options) => (await import('../logs/cli-run.ts')).serve(options));
}

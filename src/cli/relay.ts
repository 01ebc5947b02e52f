// `mailops relay start`: runs a relay node in the foreground until SIGTERM/SIGINT.
import type { Command } from 'commander';
import { collect, examples } from './usage.ts';

export function registerRelay(program: Command): void {
  const relay = program.command('relay').description('run a priority-aware SMTP relay node');
  relay
    .command('start')
    .description('receive mail over SMTP and HTTP, store it durably and deliver it lane by lane')
    .option('--config <file>', 'YAML config file (see config/mailops.example.yaml)')
    .option('--smtp <host:port>', 'SMTP listener (default 127.0.0.1:2525)')
    .option('--http <host:port>', 'HTTP API listener (default 127.0.0.1:8025)')
    .option('--spool <dir>', 'spool directory (default ./var/spool)')
    .option('--smarthost <host:port>', 'deliver all mail to this host instead of looking up MX records')
    .option('--route <domain=host:port>', 'deliver mail for DOMAIN to HOST:PORT (repeatable; wins over --smarthost)', collect)
    .addHelpText('after', examples([
      'mailops relay start',
      'mailops relay start --config /etc/mailops/relay.yaml',
      'mailops relay start --smtp 0.0.0.0:25 --smarthost 127.0.0.1:2526 --spool /var/spool/mailops',
      'mailops relay start --route example.com=10.0.0.5:25 --route example.org=mx.example.org:2525',
    ]))
    .action(async (options) => {
      const { loadRelayConfig } = await import('../config/load.ts');
      const config = loadRelayConfig(options.config, {
        smtp: options.smtp, http: options.http, spool: options.spool, smarthost: options.smarthost, routes: options.route,
      });
      const { startRelay } = await import('../relay/node.ts');
      const node = await startRelay(config);
      let stopping = false;
      const stop = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        node.log.info('stopping', { signal });
        await node.stop();
        process.exit(0);
      };
      process.on('SIGTERM', () => void stop('SIGTERM'));
      process.on('SIGINT', () => void stop('SIGINT'));
    });
}

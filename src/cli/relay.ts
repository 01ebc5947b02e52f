// `mailops relay start`: runs a relay node in the foreground until SIGTERM/SIGINT (or, with
// --drain-on-sigterm, until a SIGTERM drain ends), or until `mailops relay drain` has drained it.
import type { Command } from 'commander';
import { ConfigError } from '../config/errors.ts';
import { parseDuration } from '../util/units.ts';
import { collect, examples, withNode } from './usage.ts';

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
    .option('--drain-on-sigterm <duration>', 'on SIGTERM drain (like relay drain) for up to DURATION, instead of stopping at once')
    .addHelpText('after', examples([
      'mailops relay start',
      'mailops relay start --config /etc/mailops/relay.yaml',
      'mailops relay start --smtp 0.0.0.0:25 --smarthost 127.0.0.1:2526 --spool /var/spool/mailops',
      'mailops relay start --route example.com=10.0.0.5:25 --route example.org=mx.example.org:2525',
      'mailops relay start --config /etc/mailops/relay.yaml --drain-on-sigterm 10m',
    ]))
    .action(async (options) => {
      const sigtermDrain = options.drainOnSigterm === undefined ? undefined : parseDuration(options.drainOnSigterm);
      if (options.drainOnSigterm !== undefined && sigtermDrain === undefined) {
        throw new ConfigError(`--drain-on-sigterm: expected a duration such as 90s or 10m, got ${JSON.stringify(options.drainOnSigterm)}`);
      }
      const { loadRelayConfig } = await import('../config/load.ts');
      const config = loadRelayConfig(options.config, {
        smtp: options.smtp, http: options.http, spool: options.spool, smarthost: options.smarthost, routes: options.route,
      });
      const { startRelay } = await import('../relay/node.ts');
      const node = await startRelay(config);
      // however it ends (a signal, a drain asked for through the API), the process exits 0 after it
      void node.finished.then(() => process.exit(0));
      let stopping = false;
      let draining = false;
      const stop = (signal: string) => {
        if (signal === 'SIGTERM' && sigtermDrain !== undefined && !draining) {
          draining = true;
          node.log.info('draining', { signal });
          node.drain(sigtermDrain);
          return;
        }
        // a second signal while draining: stop now (what is left stays in the spool)
        if (stopping) return;
        stopping = true;
        node.log.info('stopping', { signal });
        void node.stop();
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });

  withNode(relay.command('drain'))
    .description('stop a node taking mail, let it deliver what it holds (up to --timeout), then it exits; what is left stays in its spool')
    .option('--timeout <duration>', 'stop after this long even if mail is left', '5m')
    .option('--no-wait', 'return once the drain has started')
    .addHelpText('after', examples([
      'mailops relay drain',
      'mailops relay drain --node http://10.0.0.11:8025 --token $TOKEN --timeout 10m',
      'mailops relay drain --spool /var/spool/mailops --no-wait',
    ]))
    .action(async (options) => (await import('./relay-actions.ts')).drain(options));
}

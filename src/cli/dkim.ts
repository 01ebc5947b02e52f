// `mailops dkim keygen`: a DKIM key pair for the relay's `dkim:` config and the DNS record to publish.
import type { Command } from 'commander';
import { examples, positiveInt } from './usage.ts';

export function registerDkim(program: Command): void {
  const dkim = program.command('dkim').description('DKIM keys for the relay\'s signing');
  dkim
    .command('keygen')
    .description('write a private key (mode 0600) and print the DNS TXT record, split into 255-byte strings')
    .requiredOption('--domain <domain>', 'signing domain (d=)')
    .requiredOption('--selector <selector>', 'selector (s=)')
    .option('--type <type>', 'rsa or ed25519', 'rsa')
    .option('--bits <n>', 'RSA key size', positiveInt('--bits'), 2048)
    .option('--out <dir>', 'directory for the key file', '.')
    .option('--force', 'overwrite an existing key file')
    .option('--json', 'print {"name", "value", "privateKeyPath"} as JSON')
    .addHelpText('after', examples([
      'mailops dkim keygen --domain example.com --selector s2026 --out /etc/mailops/dkim',
      'mailops dkim keygen --domain example.com --selector ed2026 --type ed25519 --json',
    ]) + '\nThe key file is DIR/SELECTOR._domainkey.DOMAIN.pem; put it in the relay config as\n' +
      '  dkim: [{ domain: DOMAIN, selector: SELECTOR, privateKey: FILE, algorithm: rsa-sha256 | ed25519-sha256 }]\n')
    .action(async (options) => (await import('./dkim-actions.ts')).keygen(options));
}

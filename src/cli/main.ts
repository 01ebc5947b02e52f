// The `mailops` command: one file per command group registers its subcommands here. Command
// files keep their heavy imports inside the action, so `mailops --help` starts fast.
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/errors.ts';
import { registerRelay } from './relay.ts';
import { registerQueue } from './queue.ts';
import { registerSink } from './sink.ts';
import { registerLoad } from './load.ts';
import { registerAudit } from './audit.ts';
import { registerDkim } from './dkim.ts';
import { registerSuppress } from './suppress.ts';
import { registerTop } from './top.ts';

const program = new Command('mailops')
  .description('Priority-aware SMTP relay, newsletter load generator, DKIM/DNS/CSA audit and live dashboards for high-volume mail.')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride();

registerRelay(program);
registerQueue(program);
registerSink(program);
registerLoad(program);
registerAudit(program);
registerDkim(program);
registerSuppress(program);
registerTop(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version end here with code 0; usage errors have already been printed.
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  if (err instanceof ConfigError) {
    process.stderr.write(`mailops: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}

// The `mailops` command: one file per command group registers its subcommands here. Command
// files keep their heavy imports inside the action, so `mailops --help` starts fast. Errors end
// here: usage and config problems exit 2 (each problem on its own line); a closed output pipe
// ends any command quietly.
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
import { registerLogs } from './logs.ts';

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
registerLogs(program);

// A reader that stops early (`mailops queue summary | head`) closes the pipe: whatever the
// command, it has nobody left to tell anything, so it ends quietly rather than with a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version end here with code 0; usage errors have already been printed.
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  if (err instanceof ConfigError) {
    for (const problem of err.problems) process.stderr.write(`mailops: ${problem}\n`);
    process.exit(2);
  }
  throw err;
}

/**
 * A configuration or usage error: the CLI prints each problem on its own line and exits with
 * status 2. A config file with several mistakes gives one error listing them all.
 */
export class ConfigError extends Error {
  override name = 'ConfigError';
  /** Every problem found, one line each; the message is these joined by newlines. */
  readonly problems: string[];

  constructor(problems: string | string[]) {
    const list = typeof problems === 'string' ? [problems] : problems;
    super(list.join('\n'));
    this.problems = list;
  }
}

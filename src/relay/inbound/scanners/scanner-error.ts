// The error a content scanner throws when it could not judge a message: its daemon refused the
// connection, did not answer in time, or answered something this client cannot read. The message
// names the scanner, where its daemon was expected and what went wrong, so that the log line the
// inbound session writes (and the header it adds under inbound.scan.onError: pass) says enough to
// act on. This module touches nothing.

export class ScannerUnavailableError extends Error {
  override name = 'ScannerUnavailableError';
  /** "rspamd", "clamd". */
  readonly scanner: string;
  /** Where its daemon was asked: the URL or HOST:PORT. */
  readonly address: string;

  constructor(scanner: string, address: string, what: string) {
    super(`${scanner} at ${address}: ${what}`);
    this.scanner = scanner;
    this.address = address;
  }
}

/** "ECONNREFUSED", "connect ETIMEDOUT ..." → the short cause in an error message. */
export function causeOf(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e?.code ?? e?.message ?? String(err);
}

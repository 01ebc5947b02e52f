// The contract between the inbound MX session (inbound/session.ts) and the content scanners
// (inbound/scanners/: rspamd, clamd). A scanner sees the whole message once, at end of DATA,
// before the 250: it answers accept (with header fields to add), reject (5xx: the client keeps
// the message, no bounce from us) or tempfail (4xx: the client retries). A scanner that cannot
// answer (daemon down, timeout) throws; what then happens is inbound.scan.onError, decided by
// the caller, not the scanner. This module touches nothing: types and the verdict combination.

/** An SMTP reply: code, enhanced status code, text. */
export type ScanReply = [number, string, string];

export type ScanVerdict =
  /** `headers` are complete header lines without CRLF ("X-Spam-Score: 3.1"), prepended in order. */
  | { action: 'accept'; headers: string[] }
  | { action: 'reject'; reply: ScanReply }
  | { action: 'tempfail'; reply: ScanReply };

export interface ScanMeta {
  /** The client's IP address. */
  client: string;
  /** The EHLO/HELO name, when one was given. */
  helo?: string;
  /**
   * The client's forward-confirmed reverse name, when it has one. rspamd scores a client without
   * one (HFILTER_HOSTNAME_UNKNOWN, 2.5 points by default), so leave it out only when the client
   * has none.
   */
  hostname?: string;
  /** Envelope sender ('' for the null sender). */
  sender: string;
  recipients: string[];
}

export interface ContentScanner {
  /** Names the scanner in headers, logs and replies ("rspamd", "clamd"). */
  name: string;
  /** Throws when the scanner could not judge the message (unreachable, timed out, bad answer). */
  scan(message: Buffer, meta: ScanMeta): Promise<ScanVerdict>;
}

/** What to do when a scanner throws: refuse with 451 so the client retries, or accept with a header saying so. */
export type ScanErrorPolicy = 'tempfail' | 'pass';

/** The combined verdict of every scanner, and the scanners that could not answer. */
export interface ScanOutcome {
  verdict: ScanVerdict;
  unavailable: { scanner: string; error: string }[];
}

/** Header added under onError: pass for each scanner that could not judge the message. */
export const NOT_SCANNED_HEADER = 'X-Mailops-Not-Scanned';

/**
 * Runs every scanner on the message at once and combines their verdicts: the first reject (in
 * the scanners' order) wins, then the first tempfail, else accept with every scanner's headers.
 * A scanner that throws makes the whole verdict a 451 under onError: tempfail, or under pass adds
 * a header naming it and why, and the others decide.
 */
export async function scanMessage(scanners: ContentScanner[], message: Buffer, meta: ScanMeta, onError: ScanErrorPolicy): Promise<ScanOutcome> {
  const settled = await Promise.allSettled(scanners.map((scanner) => scanner.scan(message, meta)));
  const verdicts: ScanVerdict[] = [];
  const unavailable: ScanOutcome['unavailable'] = [];
  settled.forEach((result, i) => {
    if (result.status === 'fulfilled') verdicts.push(result.value);
    else unavailable.push({ scanner: scanners[i].name, error: (result.reason as Error)?.message ?? String(result.reason) });
  });
  const rejected = verdicts.find((v) => v.action === 'reject');
  if (rejected) return { verdict: rejected, unavailable };
  if (unavailable.length && onError === 'tempfail') {
    const names = unavailable.map((u) => u.scanner).join(', ');
    return { verdict: { action: 'tempfail', reply: [451, '4.3.0', `Content scanning (${names}) unavailable, message not accepted; try again later`] }, unavailable };
  }
  const tempfailed = verdicts.find((v) => v.action === 'tempfail');
  if (tempfailed) return { verdict: tempfailed, unavailable };
  const headers = verdicts.flatMap((v) => (v.action === 'accept' ? v.headers : []));
  // one line each, so the mailbox server's filters can match a scanner by name
  for (const u of unavailable) headers.push(`${NOT_SCANNED_HEADER}: ${u.scanner}; ${u.error.replace(/[\r\n]+/g, ' ').slice(0, 200)}`);
  return { verdict: { action: 'accept', headers }, unavailable };
}

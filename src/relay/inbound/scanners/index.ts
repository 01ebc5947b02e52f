// Builds the content scanners that inbound.scan configures, in the order the inbound session
// asks them: clamd first (a virus is refused whatever its spam score), then rspamd. None
// configured: an empty list, and the session skips scanning. May touch: nothing until a scanner
// scans (each then opens connections to its own daemon only).
import type { ScanConfig } from '../../../config/inbound-scan.ts';
import type { ContentScanner } from '../scan.ts';
import { ClamdScanner } from './clamd.ts';
import { RspamdScanner } from './rspamd.ts';

/** A scanner that keeps connections to its daemon: `close` ends them at shutdown. */
export interface KeptScanner extends ContentScanner {
  close(): void;
}

export function buildScanners(scan: ScanConfig): KeptScanner[] {
  const scanners: KeptScanner[] = [];
  if (scan.clamd) scanners.push(new ClamdScanner(scan.clamd));
  if (scan.rspamd) scanners.push(new RspamdScanner(scan.rspamd));
  return scanners;
}

export { ScannerUnavailableError } from './scanner-error.ts';

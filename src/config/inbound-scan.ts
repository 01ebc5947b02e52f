// Reads `inbound.scan`: which content scanners judge inbound mail at end of DATA and what happens
// when one cannot answer.
//
//   inbound:
//     scan:
//       onError: tempfail          # or pass: accept with a header saying the message was not scanned
//       rspamd:                    # absent: no spam scoring
//         url: http://127.0.0.1:11333
//         timeout: 15s
//         rejectScore: 12          # optional: refuse from this score on, whatever rspamd's action
//       clamd:                     # absent: no virus scanning
//         address: 127.0.0.1:3310
//         timeout: 30s
//         maxSize: 25MB            # larger messages are not sent to clamd (keep <= its StreamMaxLength)
//
// Every bad value is named by its key path (inbound.scan.rspamd.url). May touch: nothing but the
// Reader it is given.
import type { ScanErrorPolicy } from '../relay/inbound/scan.ts';
import type { HostPort } from '../util/units.ts';
import type { Reader } from './reader.ts';

export interface RspamdScanConfig {
  /** Base URL of an rspamd normal worker (or proxy); the client posts to `${url}/checkv2`. */
  url: string;
  /** ms for one scan, connection included. */
  timeout: number;
  /** Refuse from this score on even when rspamd's action is milder; undefined: rspamd's action decides. */
  rejectScore?: number;
}

export interface ClamdScanConfig {
  address: HostPort;
  /** ms for one scan, connection included. */
  timeout: number;
  /** Bytes; a larger message is not streamed to clamd (clamd would refuse it past its StreamMaxLength). */
  maxSize: number;
}

export interface ScanConfig {
  onError: ScanErrorPolicy;
  rspamd?: RspamdScanConfig;
  clamd?: ClamdScanConfig;
}

/** The keys of `inbound.scan`, for an `only` list. */
export const SCAN_KEYS = ['onError', 'rspamd', 'clamd'];

const RSPAMD_DEFAULT_TIMEOUT = 15_000;
const CLAMD_DEFAULT_TIMEOUT = 30_000;
/** clamd's own default StreamMaxLength. */
const CLAMD_DEFAULT_MAX_SIZE = 25 * 1024 * 1024;

/** `scan` is the Reader of `inbound.scan` (an absent mapping reads as {}: no scanners). */
export function readScanConfig(scan: Reader): ScanConfig {
  scan.only(SCAN_KEYS);
  const onError = scan.doc.onError ?? 'tempfail';
  if (onError !== 'tempfail' && onError !== 'pass') scan.report('onError', 'tempfail or pass');
  return {
    onError: onError as ScanErrorPolicy,
    rspamd: present(scan, 'rspamd') ? readRspamd(scan.child('rspamd')) : undefined,
    clamd: present(scan, 'clamd') ? readClamd(scan.child('clamd')) : undefined,
  };
}

/** A scanner is configured when its key holds something; `rspamd:` with nothing under it is a mistake, not "off". */
function present(scan: Reader, name: string): boolean {
  const value = scan.doc[name];
  if (value === undefined) return false;
  if (value === null) scan.report(name, 'a mapping (leave the key out to run without it)');
  return value !== null;
}

function readRspamd(rspamd: Reader): RspamdScanConfig {
  rspamd.only(['url', 'timeout', 'rejectScore']);
  const url = rspamd.string('url').replace(/\/+$/, '');
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (url && (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || !parsed.hostname || parsed.search || parsed.hash)) {
    rspamd.report('url', 'the http:// URL of an rspamd worker, such as http://127.0.0.1:11333');
  }
  return {
    url,
    timeout: positiveDuration(rspamd, 'timeout', RSPAMD_DEFAULT_TIMEOUT),
    rejectScore: rspamd.doc.rejectScore === undefined ? undefined : rspamd.number('rejectScore', 0),
  };
}

function readClamd(clamd: Reader): ClamdScanConfig {
  clamd.only(['address', 'timeout', 'maxSize']);
  const address = clamd.hostPort('address', 3310);
  if (address.host === '0.0.0.0') clamd.report('address', 'the HOST:PORT where clamd listens (TCPAddr and TCPSocket in clamd.conf)');
  return {
    address,
    timeout: positiveDuration(clamd, 'timeout', CLAMD_DEFAULT_TIMEOUT),
    maxSize: clamd.doc.maxSize === undefined ? CLAMD_DEFAULT_MAX_SIZE : clamd.size('maxSize'),
  };
}

/** An optional timeout: zero would fail every scan, so it is a mistake rather than "no timeout". */
function positiveDuration(reader: Reader, name: string, fallback: number): number {
  if (reader.doc[name] === undefined) return fallback;
  const ms = reader.duration(name);
  if (ms <= 0) reader.report(name, 'a duration above zero, such as 10s');
  return ms;
}

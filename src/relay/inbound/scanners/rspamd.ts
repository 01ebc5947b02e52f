// Spam scoring by rspamd over its HTTP protocol: POST /checkv2 to a normal worker (or proxy) with
// the message as the body and the SMTP envelope in request headers (IP, Hostname, Helo, From, one
// Rcpt per recipient), so rspamd judges the message as the MTA saw it; the JSON answer's action
// becomes the verdict:
//
//   reject                          → 550 5.7.1 (the client keeps the message; nothing is dropped)
//   soft reject, greylist           → 451 4.7.1 (the client retries)
//   add header, rewrite subject     → accept, marked X-Spam: Yes with the score headers
//   no action                       → accept with the score headers
//
// With inbound.scan.rspamd.rejectScore, a score at or above it refuses whatever the action.
// Requests ask for keep-alive and connections are pooled (a small pool per scanner) where the
// server keeps them: rspamd 3.4's workers answer `Connection: close`, so there each scan opens
// its own loopback connection, while a keep-alive front (a newer rspamd proxy, nginx) gets them
// reused; a request that meets a pooled connection the server had just closed is sent once more
// on a fresh one. The answer is read up to a bound, so a confused server cannot make the relay
// buffer without limit.
// May touch: HTTP connections to the configured rspamd URL, nothing else.
import http from 'node:http';
import https from 'node:https';
import type { RspamdScanConfig } from '../../../config/inbound-scan.ts';
import { plainAddress } from '../../../util/network.ts';
import { formatDuration } from '../../../util/units.ts';
import type { ContentScanner, ScanMeta, ScanVerdict } from '../scan.ts';
import { causeOf, ScannerUnavailableError } from './scanner-error.ts';

/** rspamd's answer to /checkv2, as far as it is read here. */
interface RspamdResult {
  action: string;
  score: number;
  required_score?: number;
  symbols?: Record<string, { name?: string; score?: number }>;
  messages?: { smtp_message?: string };
}

/** An answer larger than this is not rspamd's (its JSON is a few kB, tens with every symbol). */
const MAX_ANSWER_BYTES = 1024 * 1024;
/** Idle connections kept for the next scans; more concurrent scans open more, closed after use. */
const KEPT_CONNECTIONS = 16;
/** X-Spamd-Result stays within one line (RFC 5322 allows 998 characters). */
const RESULT_HEADER_MAX = 900;

export class RspamdScanner implements ContentScanner {
  readonly name = 'rspamd';
  private readonly config: RspamdScanConfig;
  private readonly endpoint: URL;
  private readonly agent: http.Agent;
  private readonly request: typeof http.request;

  constructor(config: RspamdScanConfig) {
    this.config = config;
    this.endpoint = new URL(`${config.url}/checkv2`);
    const secure = this.endpoint.protocol === 'https:';
    this.request = secure ? https.request : http.request;
    this.agent = new (secure ? https.Agent : http.Agent)({ keepAlive: true, maxFreeSockets: KEPT_CONNECTIONS });
  }

  async scan(message: Buffer, meta: ScanMeta): Promise<ScanVerdict> {
    const result = await this.post(message, meta, Date.now() + this.config.timeout, true);
    try {
      return verdictOf(result, this.config.rejectScore);
    } catch (err) {
      throw new ScannerUnavailableError(this.name, this.config.url, (err as Error).message);
    }
  }

  /** Closes the kept connections (at shutdown; a later scan opens new ones). */
  close(): void {
    this.agent.destroy();
  }

  /** One request; `mayResend`: a request lost on a kept connection that rspamd had just closed goes out once more. */
  private post(message: Buffer, meta: ScanMeta, deadline: number, mayResend: boolean): Promise<RspamdResult> {
    const unavailable = (what: string) => new ScannerUnavailableError(this.name, this.config.url, what);
    return new Promise((resolve, reject) => {
      const req = this.request(this.endpoint, {
        method: 'POST',
        agent: this.agent,
        headers: { ...envelopeHeaders(meta), 'Content-Length': message.length },
      });
      let settled = false;
      const settle = (outcome: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        outcome();
      };
      const fail = (err: Error) => settle(() => {
        req.destroy();
        if (err instanceof ScannerUnavailableError) return reject(err);
        // The request was not read (the connection was closed under it), so sending it again cannot scan twice.
        if (mayResend && req.reusedSocket && (err as NodeJS.ErrnoException).code === 'ECONNRESET') {
          return resolve(this.post(message, meta, deadline, false));
        }
        reject(unavailable(`cannot scan (${causeOf(err)})`));
      });
      const timer = setTimeout(() => fail(unavailable(`no answer within ${formatDuration(this.config.timeout)}`)), Math.max(0, deadline - Date.now()));
      req.on('error', fail);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes > MAX_ANSWER_BYTES) fail(unavailable(`answer longer than ${MAX_ANSWER_BYTES} bytes`));
          else chunks.push(chunk);
        });
        res.on('error', fail);
        res.on('end', () => settle(() => {
          try {
            resolve(parseAnswer(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')));
          } catch (err) {
            reject(unavailable((err as Error).message));
          }
        }));
      });
      req.end(message);
    });
  }
}

/**
 * The envelope as rspamd's protocol takes it. Header values go out as bytes (latin1 in Node), so
 * an SMTPUTF8 address is passed as its UTF-8 bytes rather than refused by the HTTP client.
 */
function envelopeHeaders(meta: ScanMeta): Record<string, string | string[]> {
  const bytes = (text: string) => Buffer.from(text, 'utf8').toString('latin1');
  const headers: Record<string, string | string[]> = { IP: plainAddress(meta.client) };
  if (meta.helo) headers.Helo = bytes(meta.helo);
  if (meta.hostname) headers.Hostname = bytes(meta.hostname);
  // the null sender (a bounce) has no address to give: rspamd then reads the message's own
  if (meta.sender) headers.From = bytes(meta.sender);
  if (meta.recipients.length) headers.Rcpt = meta.recipients.map(bytes);
  return headers;
}

function parseAnswer(status: number, body: string): RspamdResult {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new Error(`answered HTTP ${status} with something other than JSON: ${JSON.stringify(body.slice(0, 120))}`);
  }
  const answer = json as Partial<RspamdResult> & { error?: unknown };
  if (status !== 200) throw new Error(`answered HTTP ${status}${answer?.error ? `: ${String(answer.error)}` : ''}`);
  if (typeof answer?.action !== 'string' || typeof answer.score !== 'number') {
    throw new Error(`answered without an action and a score: ${JSON.stringify(body.slice(0, 120))}`);
  }
  return answer as RspamdResult;
}

/** rspamd's answer → the verdict; `rejectScore` is inbound.scan.rspamd.rejectScore. */
export function verdictOf(result: RspamdResult, rejectScore: number | undefined): ScanVerdict {
  const score = result.score.toFixed(2);
  const told = printable(result.messages?.smtp_message ?? '');
  if (result.action === 'reject' || (rejectScore !== undefined && result.score >= rejectScore)) {
    return { action: 'reject', reply: [550, '5.7.1', told || `Message refused as spam (score ${score})`] };
  }
  switch (result.action) {
    case 'soft reject':
    case 'greylist':
      return { action: 'tempfail', reply: [451, '4.7.1', told || 'Message deferred by the spam filter, try again later'] };
    case 'add header':
    case 'rewrite subject':
      return { action: 'accept', headers: ['X-Spam: Yes', ...scoreHeaders(result, true)] };
    case 'no action':
      return { action: 'accept', headers: scoreHeaders(result, false) };
    default:
      throw new Error(`answered an action this relay does not know: ${JSON.stringify(result.action)}`);
  }
}

/** X-Spam-Score, X-Spam-Status and X-Spamd-Result (the symbols that scored, highest first). */
function scoreHeaders(result: RspamdResult, spam: boolean): string[] {
  const score = result.score.toFixed(2);
  const required = result.required_score === undefined ? undefined : result.required_score.toFixed(2);
  const symbols = Object.entries(result.symbols ?? {})
    .map(([name, symbol]) => ({ name: printable(symbol.name ?? name), score: symbol.score ?? 0 }))
    .sort((a, b) => Math.abs(b.score) - Math.abs(a.score) || a.name.localeCompare(b.name));
  let line = `X-Spamd-Result: default: ${spam ? 'True' : 'False'} [${score} / ${required ?? '-'}]`;
  for (const symbol of symbols) {
    const part = `; ${symbol.name}(${symbol.score.toFixed(2)})`;
    if (line.length + part.length > RESULT_HEADER_MAX) break;
    line += part;
  }
  return [
    `X-Spam-Score: ${score}`,
    `X-Spam-Status: ${spam ? 'Yes' : 'No'}, score=${score}${required === undefined ? '' : ` required=${required}`} action=${printable(result.action)}`,
    line,
  ];
}

/** Text from rspamd made safe for an SMTP reply or a header: printable ASCII, one line, bounded. */
function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]+/g, ' ').trim().slice(0, 200);
}

// DKIM signing with mailauth's canonicalisation and header formatting (relaxed/relaxed). The
// relay runs this in worker threads (pool.ts): RSA-2048 plus canonicalisation cost about a
// millisecond of CPU per message, which would otherwise block the event loop. Without a pool the
// private-key operation still leaves the event loop through crypto.sign's callback form.
import { createHash, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { dkimBody } from 'mailauth/lib/dkim/body/index.js';
import { relaxedHeaders } from 'mailauth/lib/dkim/header/relaxed.js';
import { formatSignatureHeaderLine, getSigningHeaderLines, parseHeaders } from 'mailauth/lib/tools.js';
import type { SigningKey } from './keys.ts';

/** Signed when present; From is signed once more than it occurs (over-signing) so that no From can be added. */
export const SIGNED_HEADERS = 'From:To:Cc:Subject:Date:Message-ID:MIME-Version:Content-Type:Reply-To:List-Unsubscribe:List-Unsubscribe-Post:Feedback-ID';

export type RawSigner = (algorithm: string | null, data: Buffer, key: KeyObject) => Promise<Buffer>;

/** On libuv's thread pool. */
export const signAsync: RawSigner = (algorithm, data, key) =>
  new Promise((resolve, reject) => cryptoSign(algorithm, data, key, (err, signature) => (err ? reject(err) : resolve(signature))));

/** On the calling thread (inside a signing worker, where blocking is the point). */
export const signSync: RawSigner = async (algorithm, data, key) => cryptoSign(algorithm, data, key);

const CRLF = Buffer.from('\r\n');

/** True when relaxed canonicalisation (RFC 6376 3.4.4) leaves every line of `body` as it is. */
function relaxedAsIs(body: Buffer): boolean {
  if (body.indexOf(0x09) !== -1 || body.indexOf('  ') !== -1 || body.indexOf(' \r\n') !== -1 || body[body.length - 1] === 0x20) return false;
  // a bare LF becomes CRLF (a lone CR is content and stays)
  for (let lf = body.indexOf(0x0a); lf !== -1; lf = body.indexOf(0x0a, lf + 1)) if (body[lf - 1] !== 0x0d) return false;
  return true;
}

/**
 * The relaxed SHA-256 body hash. Most bodies have no white space to fold: then only the empty
 * lines at the end go, and the bytes are hashed as they are in native code; anything else takes
 * mailauth's line-by-line canonicaliser.
 */
export function relaxedBodyHash(body: Buffer): string {
  if (!relaxedAsIs(body)) {
    const hasher = dkimBody('relaxed', 'sha256', false);
    hasher.update(body);
    return hasher.digest('base64');
  }
  let end = body.length;
  while (end >= 2 && body[end - 2] === 0x0d && body[end - 1] === 0x0a) end -= 2;
  const hash = createHash('sha256');
  if (end > 0) hash.update(body.subarray(0, end)).update(CRLF);
  return hash.digest('base64');
}

/**
 * The DKIM-Signature header fields (each ending in CRLF) for `message`, one per key, in key order.
 * `headerEnd` is the byte length of the header block including its empty line.
 */
export async function dkimSignatures(message: Buffer, headerEnd: number, keys: SigningKey[], now = Date.now(), raw: RawSigner = signAsync): Promise<string> {
  const headers = parseHeaders(message.subarray(0, headerEnd));
  const lines = getSigningHeaderLines(headers.parsed, SIGNED_HEADERS);
  if (!lines.headers.some((h) => h.key === 'from')) throw new Error('no From header field to sign');
  const signing = { keys: `${lines.keys}: From`, headers: lines.headers };
  const bodyHash = relaxedBodyHash(message.subarray(headerEnd));
  const timestamp = Math.floor(now / 1000);
  const signed = await Promise.all(keys.map(async (k) => {
    const { canonicalizedHeader, dkimHeaderOpts } = relaxedHeaders('DKIM', signing, {
      signingDomain: k.domain, selector: k.selector, algorithm: k.algorithm, canonicalization: 'relaxed/relaxed', bodyHash, timestamp,
    });
    const signature = k.algorithm === 'rsa-sha256'
      ? await raw('sha256', canonicalizedHeader, k.key)
      // RFC 8463: Ed25519 signs the SHA-256 hash of the canonicalised header (PureEdDSA over it)
      : await raw(null, createHash('sha256').update(canonicalizedHeader).digest(), k.key);
    return formatSignatureHeaderLine('DKIM', { ...dkimHeaderOpts, b: signature.toString('base64') }, true);
  }));
  return signed.map((line) => `${line}\r\n`).join('');
}
